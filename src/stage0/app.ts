/**
 * The app verbs of a mutable pod (rkt's `app add`, `app start`, `app stop`, `app rm`, `app list`,
 * `app status`; rkt-semantics §1.9, §2.7–2.9): each checks what rkt checks, with rkt's messages,
 * against the pod as the log says it is once its exits are observed, then asks for its effect
 * (src/stage0/app-effects.ts). `app sandbox` is `run` of a mutable pod with no app.
 */
import { mkdirSync } from 'node:fs';
import type { AppState } from '../../machines/app.js';
import type { PodApp } from '../../machines/pod.js';
import type { PodView } from '../engine/engine.js';
import { reconcilePod } from '../engine/reconciler.js';
import { PodlogError } from '../errors.js';
import { withPrepareLock } from '../images/locks.js';
import { readManifest, type ManifestAddition } from './app-effects.js';
import { checkPrepareConfig, type AppConfig, type PrepareConfig, type RunConfig } from './config.js';
import { observeAppExits, observeExit } from './observe.js';
import { generatePodManifest, nameApps, type Volume } from './pod-manifest.js';
import { podDir } from './pod-dir.js';
import type { PrepareHooks } from './prepare.js';
import { run } from './run.js';
import type { Stage0 } from './session.js';
import type { FetchPolicy } from '../images/policy.js';

/**
 * rkt's app sandbox: `run` of a mutable pod with no app, in the foreground until it is stopped (0).
 * stage1 keeps the tree store's path for the apps added later, so it exists from the start.
 */
export const sandbox = async (s: Stage0, cfg: PrepareConfig & RunConfig, hooks: PrepareHooks = {}): Promise<number> => {
  mkdirSync((await s.images()).layout.trees, { recursive: true, mode: 0o750 });
  return run(s, { ...cfg, mutable: true }, hooks);
};

/** The pod with what the world says recorded first: intents a dead process left, its exit, its apps' exits. */
const observed = async (s: Stage0, uuid: string): Promise<PodView> => {
  await reconcilePod(s.engine, s.effects, uuid);
  await observeExit(s.engine, s.dataDir, uuid);
  return observeAppExits(s.engine, s.dataDir, uuid);
};

const fail = (code: string, message: string): PodlogError => new PodlogError(code, message);

/** rkt's checks before an app verb: the pod runs (rm: or has run), and it is mutable. */
const mutablePod = async (s: Stage0, uuid: string, { exitedToo = false } = {}): Promise<PodView> => {
  const view = await observed(s, uuid);
  if (view.state !== 'running' && !(exitedToo && view.state === 'exited')) throw fail('ENOTRUNNING', 'pod is not running');
  if (!view.context.mutable) throw fail('EIMMUTABLE', 'immutable pod');
  return view;
};

const appNamed = (view: PodView, name: string): PodApp => {
  const app = view.context.apps.find((a) => a.name === name);
  if (app === undefined) throw fail('ENOAPP', `nonexistent app ${JSON.stringify(name)}`);
  return app;
};

/** A volume as --volume gives it, so that an added app's mounts are checked and resolved as prepare's are. */
const volumeFlag = ({ name, kind, ...fields }: Volume): string =>
  [name, `kind=${kind}`, ...Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${String(v)}`)].join(',');

/**
 * rkt's AddApp: the app, named by --name or its image, new in the pod; its entry in the pod
 * manifest made as prepare makes one (its --mount flags on the pod's volumes; its image's mount
 * points, without a volume of their name, on implicit empty volumes). Its `-- ARGS` follow the
 * image's exec as they do for run (rkt's app add replaced the image's arguments). Added, not started.
 */
export const addApp = async (s: Stage0, uuid: string, config: AppConfig, policy?: FetchPolicy): Promise<string> =>
  // Shared with other prepares, exclusive with `image gc`: the app's tree stays while it is rendered.
  withPrepareLock(s.dataDir, async () => {
    const view = await mutablePod(s, uuid);
    const current = readManifest(podDir(s.dataDir, uuid));
    const cfg: PrepareConfig = checkPrepareConfig({
      mutable: false, apps: [config], inheritEnv: false, explicitEnv: [], envFromFile: [], ports: [],
      volumes: current.volumes.map(volumeFlag), mounts: [], useOverlay: true, privateUsers: false, userAnnotations: {}, userLabels: {},
    });
    const images = await s.images();
    const record = await images.resolve(config.image, { policy });
    const [app] = nameApps([{ config, imageId: record.id, manifest: await images.manifest(record.id) }]);
    if (view.context.apps.some((a) => a.name === app!.name)) throw fail('EBADNAME', `multiple apps with name ${app!.name}`);
    // What the app adds to the pod manifest; the effect adds it to the manifest as it is then (one app intent at a time).
    const { apps, volumes } = generatePodManifest([app!], cfg);
    const addition: ManifestAddition = { apps, volumes: volumes.filter((v) => !current.volumes.some((c) => c.name === v.name)) };
    const exec = apps[0]!.app.exec;
    await s.engine.request(
      uuid,
      'AppAddRequested',
      { app: app!.name, image: record.id, imageName: app!.manifest.name, ...(exec !== undefined ? { exec } : {}) },
      { manifest: addition },
    );
    return app!.name;
  });

/** rkt's StartApp: an added app, or an exited one again; one that runs is refused. */
export const startApp = async (s: Stage0, uuid: string, name: string): Promise<void> => {
  const app = appNamed(await mutablePod(s, uuid), name);
  if (app.state === 'running') throw fail('EWRONG_STATE', `app ${JSON.stringify(name)} is already running`);
  await s.engine.request(uuid, 'AppStartRequested', { app: name });
  // A failing pre-start handler fails the app with its code (recorded as its exit), and its start.
  const code = appNamed(await observeAppExits(s.engine, s.dataDir, uuid), name).hooks?.['pre-start'];
  if (code !== undefined && code !== 0) throw fail('EPRESTART', `app ${JSON.stringify(name)}: pre-start handler exited with ${code}`);
};

/** rkt's StopApp: returns once the app has exited, its code recorded. */
export const stopApp = async (s: Stage0, uuid: string, name: string, force: boolean): Promise<void> => {
  const app = appNamed(await mutablePod(s, uuid), name);
  if (app.state !== 'running') throw fail('EWRONG_STATE', `app ${JSON.stringify(name)} is not running`);
  await s.engine.request(uuid, 'AppStopRequested', { app: name, force });
  await observeAppExits(s.engine, s.dataDir, uuid);
};

/** rkt's RmApp: a running app is stopped first; also in a pod that has exited. */
export const removeApp = async (s: Stage0, uuid: string, name: string): Promise<void> => {
  appNamed(await mutablePod(s, uuid, { exitedToo: true }), name);
  await s.engine.request(uuid, 'AppRemoveRequested', { app: name });
};

/** An app as `app list` and `app status` show it (rkt's columns). */
export interface AppView {
  name: string;
  state: AppState;
  imageId: string;
  imageName?: string;
  createdAt?: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
}

/**
 * rkt's app states (lib/app.go): a mutable pod's apps have their own; in a pod that has run and
 * ended every app has exited; an immutable pod's apps run while it does.
 */
export const appStateOf = (view: PodView, app: PodApp): AppState =>
  view.snapshot.hasTag('afterRun') ? 'exited' : (app.state ?? (app.exitCode !== undefined ? 'exited' : view.state === 'running' ? 'running' : 'created'));

export const appViews = async (s: Stage0, uuid: string): Promise<AppView[]> => {
  const view = await observed(s, uuid);
  return view.context.apps.map((a) => ({
    name: a.name,
    state: appStateOf(view, a),
    imageId: a.imageId ?? a.image,
    ...(a.imageName !== undefined ? { imageName: a.imageName } : {}),
    createdAt: a.createdAt ?? view.context.createdAt,
    startedAt: a.state !== undefined ? a.startedAt : view.context.startedAt,
    finishedAt: a.state !== undefined ? a.finishedAt : view.context.exitedAt,
    ...(a.exitCode !== undefined ? { exitCode: a.exitCode } : {}),
  }));
};

export const appView = async (s: Stage0, uuid: string, name: string): Promise<AppView> => {
  const app = (await appViews(s, uuid)).find((a) => a.name === name);
  if (app === undefined) throw fail('ENOAPP', `nonexistent app ${JSON.stringify(name)}`);
  return app;
};
