/**
 * The seed's API (rkt's package stage0) as a typed library: prepare, run, enter, gc, stop, status, rm
 * on a data dir, every step recorded in the event log.
 *
 * @module
 */
export {
  checkPrepareConfig,
  DEFAULT_DNS_CONF_MODE,
  stage1RunOptions,
  type AppConfig,
  type CommonConfig,
  type DnsConfig,
  type DnsConfMode,
  type DnsMode,
  type ExposedPort,
  type HostsEntries,
  type InsecureOptions,
  type PrepareConfig,
  type RunConfig,
  type Stage1RunOptions,
} from './config.js';
export { debug, initDebug } from './debug.js';
export { mountGc } from './effects.js';
export { chooseApp, enter } from './enter.js';
export { gc, type GcOptions, type GcReport } from './gc.js';
export { observeExit, reconcilePods, type BrokenPod } from './observe.js';
export { generatePodManifest, imageNameToAppName, mergeMounts, type Mount, type PodManifest, type ResolvedApp, type RuntimeApp, type Volume } from './pod-manifest.js';
export { prepare, type PrepareHooks } from './prepare.js';
export { removePod } from './rm.js';
export { run, runPrepared } from './run.js';
export { openStage0, type Stage0, type Stage0Options } from './session.js';
export { CrossingEntrypoint, ENTRYPOINTS, stage1Image, type EntrypointName, type EntrypointResult, type Stage1Image, type Stage1Manifest } from './stage1.js';
export { isFinished, podStatus } from './status.js';
export { stopPod, type StopResult } from './stop.js';
export { VALID_OS_ARCH, type ImageApp, type ImageDependency, type ImageManifest } from '../images/aci-manifest.js';
export type { PendingIntent, PodApp, PodContext, PodNetwork, PodStateName } from '../../machines/pod.js';
export type { EffectName, PodCgroups, PodEventType, PrivateUsers } from '../events/catalogue.js';
export type { FetchPolicy } from '../images/policy.js';
export type { PodView } from '../engine/engine.js';
export { commandContext, type CommandContext } from '../events/metadata.js';
export type { ImageLabel } from '../events/images.js';
