/** One sample of every pod event, as the model-based tests feed them to the machine. */
import { v4 as uuidv4 } from 'uuid';
import type { PodMachineEvent } from '../../machines/pod.js';
import type { PodEngine } from '../../src/engine/engine.js';
import type { PodEventData, PodEventType } from '../../src/events/catalogue.js';

const TIME = '2026-01-01T00:00:00.000Z';
const sample = <T extends PodEventType>(type: T, data: PodEventData[T]): PodMachineEvent =>
  ({ type, data, time: TIME, version: 0 }) as PodMachineEvent;

export const prepareData = (uuid: string): PodEventData['PrepareRequested'] => ({
  uuid,
  apps: [{ name: 'a', image: 'busybox' }],
  mutable: false,
  overlay: true,
  stage1: { rootfs: '/nonexistent', manifest: { acKind: 'ImageManifest', name: 'podlog.dev/stage1-test', annotations: [] } },
});

/** A pod prepared through the engine, every preparation effect asked for as `prepare` does (on `host`, if given). */
export const preparePod = async (engine: PodEngine, uuid: string = uuidv4(), host?: string): Promise<string> => {
  await engine.request(uuid, 'PrepareRequested', { ...prepareData(uuid), ...(host === undefined ? {} : { host }) });
  await engine.request(uuid, 'ImageRenderRequested', { app: 'a', image: 'busybox' });
  await engine.request(uuid, 'OverlayPrepareRequested', {});
  await engine.request(uuid, 'PodManifestWriteRequested', {});
  await engine.record(uuid, [{ type: 'PodPrepared', data: {} }]);
  return uuid;
};

/** A `prepare --no-overlay`'s first event: the model-based fault test walks its paths too. */
export const NO_OVERLAY_PREPARE: PodMachineEvent = sample('PrepareRequested', { ...prepareData('sample'), overlay: false });

/** What `podlog run` asks stage1 for by default. */
export const START: PodEventData['Stage1StartRequested'] = { net: 'none', dns: 'default', hostname: 'podlog-test' };

export const SAMPLE_EVENTS: PodMachineEvent[] = [
  sample('PrepareRequested', prepareData('sample')),
  // `app sandbox`'s pod: mutable, with no app until one is added while it runs.
  sample('PrepareRequested', { ...prepareData('sample'), apps: [], mutable: true }),
  sample('PodCreated', {}),
  sample('ImageRenderRequested', { app: 'a', image: 'busybox' }),
  sample('ImageRendered', { app: 'a', imageId: 'sha512-1', treeStoreId: 'deps-sha512-1' }),
  sample('OverlayPrepareRequested', {}),
  sample('OverlayPrepared', {}),
  sample('AppRootCopyRequested', { app: 'a' }),
  sample('AppRootCopied', { app: 'a', method: 'copy' }),
  sample('PodManifestWriteRequested', {}),
  sample('PodManifestWritten', {}),
  sample('PodPrepared', {}),
  sample('PrepareAborted', { reason: 'the test aborted it' }),
  sample('NetworkAttachRequested', {
    name: 'default', ifName: 'eth0', args: '', pluginDirs: ['/usr/lib/cni'],
    config: { name: 'default', cniVersion: '0.4.0', disableCheck: false, plugins: [{ type: 'ptp' }] },
  }),
  sample('NetworkAttached', {
    name: 'default', result: { cniVersion: '0.4.0' },
    summary: { interfaces: [], ips: [{ address: '172.16.28.2', prefixLength: 24 }], routes: [], dns: { nameservers: [], search: [], options: [] } },
  }),
  sample('NetworkDetachRequested', { name: 'default' }),
  sample('NetworkDetached', { name: 'default' }),
  sample('MetadataRegisterRequested', { socket: '/run/podlog/metadata-svc.sock', addresses: ['172.16.28.2'], host: '172.16.28.1' }),
  sample('MetadataRegistered', { socket: '/run/podlog/metadata-svc.sock', url: 'http://172.16.28.1:18112' }),
  sample('MetadataUnregisterRequested', {}),
  sample('MetadataUnregistered', { answer: 'unregistered' }),
  sample('Stage1StartRequested', START),
  sample('PodStarted', { pid: 4242 }),
  sample('AppHookRan', { app: 'a', hook: 'pre-start', code: 0 }),
  sample('AppExited', { app: 'a', code: 3 }),
  sample('StopRequested', { force: false }),
  sample('StopSignalled', { signal: 'SIGTERM' }),
  sample('PodExited', { code: 3 }),
  sample('PodMarkedGarbage', { reason: 'gc' }),
  sample('GcRequested', {}),
  sample('PodDeleted', {}),
  sample('PodCompacted', { deletedAt: TIME, compactedEvents: 12 }),
  sample('AppAddRequested', { app: 'b', image: 'busybox', imageName: 'podlog.test/busybox', exec: ['/bin/sleep', '1000'] }),
  sample('AppAdded', { app: 'b', image: 'busybox', imageName: 'podlog.test/busybox', exec: ['/bin/sleep', '1000'], treeStoreId: 'deps-sha512-b' }),
  sample('AppStartRequested', { app: 'b' }),
  sample('AppStarted', { app: 'b' }),
  sample('AppStopRequested', { app: 'b', force: false }),
  sample('AppStopped', { app: 'b' }),
  sample('AppExited', { app: 'b', code: 143 }),
  sample('AppRemoveRequested', { app: 'b' }),
  sample('AppRemoved', { app: 'b' }),
  ...(['createPod', 'renderImage', 'prepareOverlay', 'copyAppRoot', 'writeManifest', 'attachNetwork', 'startStage1', 'stopPod', 'detachNetwork', 'deletePod', 'registerMetadata', 'unregisterMetadata', 'addApp', 'startApp', 'stopApp', 'removeApp'] as const).map((effect) =>
    sample('EffectFailed', { effect, code: 'EIO', message: `${effect} failed in a test` }),
  ),
];

/**
 * Pod states that differ only in times and versions are the same state for path generation. A
 * mutable pod is one state per machine state: its paths would double the simple paths' walk, and its
 * app verbs multiply them; fold-table.test.ts walks its transitions, app-verbs.test.ts its pods.
 */
export const abstractState = (s: { value: unknown; context: import('../../machines/pod.js').PodContext }): string =>
  s.context.mutable ? JSON.stringify(['mutable', s.value]) : JSON.stringify([
    s.value,
    s.context.pending?.effect,
    s.context.apps.map((a) => [a.treeStoreId !== undefined, a.exitCode !== undefined]),
    s.context.created,
    // While preparing, --no-overlay takes other steps; after, its pod is like any other.
    s.value === 'preparing' && !s.context.overlay,
    s.context.overlayPrepared,
    s.context.manifestWritten,
    s.context.stopRequested,
    (s.context.networks ?? []).some((n) => n.attached),
  ]);

/** The sample's data for a given pod (PrepareRequested names its pod). */
export const dataFor = (event: PodMachineEvent, uuid: string): Record<string, unknown> =>
  event.type === 'PrepareRequested' ? { ...event.data, uuid } : (event.data as Record<string, unknown>);
