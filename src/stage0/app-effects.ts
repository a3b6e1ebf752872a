/**
 * The effects of a mutable pod's app verbs (docs/stage1.md, "Mutable pods": what stage0 does around
 * stage1's app-add, app-start, app-stop and app-rm). Each is idempotent, so the reconciler finishes
 * a start, a stop or a removal by running it again; an add needs the pod manifest the verb made
 * (its environment values are never in the log), so after a crash it is finished only when that
 * manifest was written, and undone otherwise.
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PodlogError } from '../errors.js';
import type { EffectRequest, Outcome } from '../engine/effects.js';
import type { PodEventData } from '../events/catalogue.js';
import { isLocked } from '../native.js';
import { makeOverlayDirs, renderAppImage, type Stage0Context } from './effects.js';
import { podDir, podPaths, writeWhole } from './pod-dir.js';
import type { PodManifest } from './pod-manifest.js';
import { CrossingEntrypoint, type EntrypointName } from './stage1.js';

/** stage1's app-stop for an app that does not run (docs/stage1.md). */
const NOT_RUNNING = 5;

const stage1App = async (pod: string, name: EntrypointName, app: string, args: string[] = []): Promise<{ code: number; output: string }> => {
  const { code, output } = await new CrossingEntrypoint(pod, name, [...args, '--app', app]).run();
  return { code, output: output.trim() };
};

const stage1Failed = (verb: string, app: string, code: number, output: string): PodlogError =>
  new PodlogError('ESTAGE1', `app ${verb} ${app}: stage1 failed (exit ${code})${output !== '' ? `: ${output}` : ''}`);

/** The pod manifest as it is now: what an app add starts from, and what an app rm takes the app out of. */
export const readManifest = (pod: string): PodManifest => JSON.parse(readFileSync(podPaths(pod).manifest, 'utf8')) as PodManifest;

/** A directory's entries, none if it is not there. */
const entries = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/** The pod manifest stage1 reads, written whole (0600: it holds the apps' environment values). */
const writeManifest = (pod: string, manifest: PodManifest): void => writeWhole(podPaths(pod).manifest, JSON.stringify(manifest), 0o600);

/**
 * Takes an app out of the pod's directory: out of the manifest, and its appsinfo, overlay
 * directories and records gone (stage1's app-rm has detached it by then, or it was never attached).
 */
const dropApp = (pod: string, app: string): void => {
  const paths = podPaths(pod);
  try {
    const manifest = readManifest(pod);
    if (manifest.apps.some((a) => a.name === app)) writeManifest(pod, { ...manifest, apps: manifest.apps.filter((a) => a.name !== app) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const tree of entries(join(pod, 'overlay'))) for (const dir of [paths.overlayUpper(tree, app), paths.overlayWork(tree, app)]) rmSync(dir, { recursive: true, force: true });
  for (const dir of [paths.appInfo(app), join(paths.status, app), paths.appStats(app), join(pod, 'hooks', app)]) rmSync(dir, { recursive: true, force: true });
};

/** Whether stage1 recorded an exit of the app since `time` (an ISO time): a start asked for then has run. */
const exitedSince = (pod: string, app: string, time: string): boolean => {
  try {
    return statSync(join(podPaths(pod).status, app)).mtimeMs >= Date.parse(time);
  } catch {
    return false;
  }
};

/** An added app's entry in the pod manifest, and the implicit volumes its image's mount points need. */
export type ManifestAddition = Pick<PodManifest, 'apps' | 'volumes'>;

/**
 * Renders the app's image, adds the app the verb made to the pod manifest as it is now, makes its
 * overlay directories and has stage1 add it; undone if any of it fails.
 */
const addApp = async (c: Stage0Context, pod: string, r: EffectRequest): Promise<Outcome[]> => {
  const data = r.intent.data as PodEventData['AppAddRequested'];
  const addition = r.input?.manifest as ManifestAddition | undefined;
  if (addition === undefined) throw new PodlogError('EABANDONED', 'the app is not in the log; only the app add that asked for it can add it');
  try {
    const treeStoreId = await renderAppImage(c.images, pod, data.app, data.image);
    const current = readManifest(pod);
    writeManifest(pod, {
      ...current,
      apps: [...current.apps.filter((a) => a.name !== data.app), ...addition.apps],
      volumes: [...current.volumes, ...addition.volumes.filter((v) => !current.volumes.some((c) => c.name === v.name))],
    });
    return await attachApp(c, pod, data, treeStoreId, r.pod.privateUsers);
  } catch (e) {
    dropApp(pod, data.app);
    throw e;
  }
};

/** The overlay directories and stage1's app-add, which finds an app it added already and does nothing. */
const attachApp = async (c: Stage0Context, pod: string, data: PodEventData['AppAddRequested'], treeStoreId: string, users: EffectRequest['pod']['privateUsers']): Promise<Outcome[]> => {
  makeOverlayDirs(pod, treeStoreId, data.app, users);
  const { code, output } = await stage1App(pod, 'appAdd', data.app, ['--tree-store', c.treeStore]);
  if (code !== 0) throw stage1Failed('add', data.app, code, output);
  return [{ type: 'AppAdded', data: { ...data, treeStoreId } }];
};

/**
 * After a crash: an app whose manifest entry and rendered tree are there is added (again: app-add
 * is idempotent); else what the dead add made is undone, and the add is failed.
 */
export const reconcileAddApp = async (c: Stage0Context, r: EffectRequest): Promise<Outcome[]> => {
  const pod = podDir(c.dataDir, r.uuid);
  const data = r.intent.data as PodEventData['AppAddRequested'];
  let treeStoreId: string | undefined;
  try {
    const listed = readManifest(pod).apps.some((a) => a.name === data.app);
    treeStoreId = listed ? readFileSync(join(podPaths(pod).appInfo(data.app), 'treeStoreID'), 'utf8') : undefined;
  } catch {
    treeStoreId = undefined;
  }
  if (treeStoreId !== undefined) {
    try {
      return await attachApp(c, pod, data, treeStoreId, r.pod.privateUsers);
    } catch (e) {
      dropApp(pod, data.app);
      return [{ type: 'EffectFailed', data: { effect: 'addApp', code: 'EABANDONED', message: `the process adding app ${data.app} died first, and its add could not be finished: ${(e as Error).message}; what it made is undone` } }];
    }
  }
  dropApp(pod, data.app);
  return [{ type: 'EffectFailed', data: { effect: 'addApp', code: 'EABANDONED', message: `the process adding app ${data.app} died before the pod manifest listed it; what it made is undone` } }];
};

/**
 * Starts the app, unless it already has been since the start was asked for (it runs: app-start
 * says so; or it has exited since: its status is newer than the intent).
 */
const startApp = async (pod: string, r: EffectRequest): Promise<Outcome[]> => {
  const { app } = r.intent.data as PodEventData['AppStartRequested'];
  if (!exitedSince(pod, app, r.intent.meta.time)) {
    const { code, output } = await stage1App(pod, 'appStart', app);
    // A failing pre-start or exec is the app's exit, recorded by stage1: the app ran, and its code is observed.
    if (code !== 0 && !output.includes('is already running') && !exitedSince(pod, app, r.intent.meta.time)) throw stage1Failed('start', app, code, output);
  }
  return [{ type: 'AppStarted', data: { app } }];
};

/** Stops the app; one that no longer runs (5) needs no stop, its exit is observed. */
const stopApp = async (pod: string, r: EffectRequest): Promise<Outcome[]> => {
  const { app, force } = r.intent.data as PodEventData['AppStopRequested'];
  const { code, output } = await stage1App(pod, 'appStop', app, force ? ['--force'] : []);
  if (code !== 0 && code !== NOT_RUNNING) throw stage1Failed('stop', app, code, output);
  return [{ type: 'AppStopped', data: { app } }];
};

/** rkt's RmApp: in a running pod, app-stop (5 is fine) then app-rm; then the app leaves the pod's directory. */
const removeApp = async (pod: string, r: EffectRequest): Promise<Outcome[]> => {
  const { app } = r.intent.data as PodEventData['AppRemoveRequested'];
  if (isLocked(pod)) {
    const stop = await stage1App(pod, 'appStop', app);
    if (stop.code !== 0 && stop.code !== NOT_RUNNING) throw stage1Failed('rm', app, stop.code, stop.output);
    const rm = await stage1App(pod, 'appRm', app);
    if (rm.code !== 0) throw stage1Failed('rm', app, rm.code, rm.output);
  }
  dropApp(pod, app);
  return [{ type: 'AppRemoved', data: { app } }];
};

/** An app verb's effect; also the reconcile of start, stop and rm, which are idempotent. */
export const runAppEffect = (c: Stage0Context, r: EffectRequest): Promise<Outcome[]> => {
  const pod = podDir(c.dataDir, r.uuid);
  switch (r.effect) {
    case 'addApp':
      return addApp(c, pod, r);
    case 'startApp':
      return startApp(pod, r);
    case 'stopApp':
      return stopApp(pod, r);
    default:
      return removeApp(pod, r);
  }
};
