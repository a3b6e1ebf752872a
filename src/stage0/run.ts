/**
 * run and run-prepared: stage1 started with the pod lock (Stage1StartRequested → PodStarted once it
 * says the pod is up), then waited for; its status is the pod's exit code (the first failing app's,
 * 128+signal for a killed one), recorded with the apps' codes as PodExited. As rkt's `run` is the pod
 * (it execs stage1), the pod is bound to this process: SIGINT, SIGTERM and SIGHUP reach it as a stop,
 * and a SIGKILL of this process kills it (stage1 dies with its parent), its exit then observed by the
 * next verb that looks.
 */
import { PodlogError } from '../errors.js';
import { stage1RunOptions, type PrepareConfig, type RunConfig } from './config.js';
import { debug } from './debug.js';
import { observeExit } from './observe.js';
import { prepare, type PrepareHooks } from './prepare.js';
import type { Stage0 } from './session.js';
import { exitOf } from './effects.js';
import { checkMetadataService, metadataSocket } from '../metadata/client.js';
import { registerWithMetadataService } from './metadata.js';
import { attachNetworks, publishedPorts } from './networks.js';
import { releasePod } from './release.js';

/**
 * Starts a prepared pod and waits for it: its networks attached, its stage1 started, its exit recorded.
 * While it waits, SIGINT and SIGTERM (SIGHUP as SIGTERM) of this process are passed to the pod.
 *
 * @param uuid - The prepared pod's full UUID.
 * @returns The pod's exit code (its app's, for a one-app pod), or 128 + the signal that ended stage1.
 * @throws `PodlogError`: {@link stage1RunOptions}' codes for the config; EWRONG_STATE for a pod that is
 * not prepared; EUSAGE for ports without a pod network or --interactive with several apps; an effect's
 * code when a network cannot be attached or stage1 cannot start (what it held is released first).
 */
export const runPrepared = async (s: Stage0, cfg: RunConfig, uuid: string): Promise<number> => {
  let options = stage1RunOptions(cfg);
  if (options.interactive) oneApp((await s.engine.load(uuid)).context.apps.length);
  if (options.net !== 'netns' && publishedPorts(s, uuid).length > 0) {
    throw new PodlogError('EUSAGE', `pod ${uuid} publishes ports (--port), which need a pod network: not --net=${options.net}`);
  }
  // rkt's CheckMdsAvailability: before the pod holds anything (rkt #1434).
  const mds = cfg.mdsRegister ? metadataSocket() : undefined;
  if (mds !== undefined) await checkMetadataService(mds);
  if (options.net === 'netns') {
    const dns = await attachNetworks(s, uuid, cfg);
    // rkt: the name servers a network gives are the pod's when --dns says nothing.
    if (options.dns === 'default' && dns !== undefined && dns.nameservers.length > 0) {
      options = {
        ...options,
        dns: 'stage0',
        dnsConfig: { servers: dns.nameservers, searches: dns.search, options: dns.options, ...(dns.domain !== undefined ? { domain: dns.domain } : {}) },
      };
    }
  }
  try {
    if (mds !== undefined) await registerWithMetadataService(s, uuid, mds);
    await s.engine.request(uuid, 'Stage1StartRequested', { ...options, hostname: cfg.hostname ?? `podlog-${uuid}` });
  } catch (e) {
    await releasePod(s, uuid);
    throw e;
  }
  const child = (await s.interpreter()).takeChild(uuid);
  if (child === undefined) throw new PodlogError('ESTAGE1', `stage1 of pod ${uuid} was not started by this process`);
  debug(`pod ${uuid}: stage1 running as pid ${child.pid}`);
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal);
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
  for (const [sig, handler] of handlers) process.on(sig, handler);
  try {
    const code = await exitOf(child);
    await observeExit(s.engine, s.dataDir, uuid, code);
    return code;
  } finally {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  }
};

/** rkt's rule: a terminal is for one app. */
const oneApp = (apps: number): void => {
  if (apps > 1) throw new PodlogError('EUSAGE', `interactive option only supports one image (the pod has ${apps} apps)`);
};

/**
 * {@link prepare}, then {@link runPrepared}: rkt run. Flags stage1 could not honour are refused before
 * the pod exists.
 *
 * @param hooks - `created` is called with the UUID as soon as the pod exists (--uuid-file-save).
 * @returns The pod's exit code.
 * @throws `PodlogError`: the codes of {@link prepare} and {@link runPrepared}.
 */
export const run = async (s: Stage0, cfg: PrepareConfig & RunConfig, hooks: PrepareHooks = {}): Promise<number> => {
  // Flags stage1 cannot honour are refused before anything is created.
  const options = stage1RunOptions(cfg);
  if (options.interactive) oneApp(cfg.apps.length);
  if (options.net !== 'netns' && cfg.ports.length > 0) throw new PodlogError('EUSAGE', `--port needs a pod network: not --net=${options.net}`);
  // A service that is not there is found before a pod exists (runPrepared asks again, as it must).
  if (cfg.mdsRegister) await checkMetadataService(metadataSocket());
  const uuid = await prepare(s, cfg, hooks);
  return runPrepared(s, cfg, uuid);
};
