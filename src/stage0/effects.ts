/**
 * The real effect interpreter: every intent of the pod machine done for real, on the host, through
 * the image store, the native addon and stage1. Every effect is idempotent (a crash may leave it
 * half done and the reconciler asks for it again); `reconcile` looks at the world (the pod lock, the
 * files stage1 writes) to finish or compensate an intent whose process died.
 *
 * The only state kept between calls is the stage1 process a `run` started, handed once to the run
 * that waits for it (`takeChild`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { PodlogError } from '../errors.js';
import type { EffectInterpreter, EffectRequest, Outcome } from '../engine/effects.js';
import { procStat } from '../engine/liveness.js';
import type { PodEventData, PrivateUsers } from '../events/catalogue.js';
import { addNetwork, delNetwork, type Attachment } from '../net/cni.js';
import { summarizeResult } from '../net/result.js';
import type { PodContext } from '../../machines/pod.js';
import type { ImageStore } from '../images/store.js';
import { closeFd, isLocked, lockDir, mountsUnder, removeTrees, shiftOwners } from '../native.js';
import { stage1InitArgs } from './config.js';
import { appRan, createPodDir, podDir, podPaths, readPid, readPodCgroups, writeWhole } from './pod-dir.js';
import { loggedManifest, type PodManifest } from './pod-manifest.js';
import { CrossingEntrypoint, entrypoint, exitCodeOf, installStage1 } from './stage1.js';
import { registerMetadata, unregisterMetadata } from './metadata.js';
import { reconcileAddApp, runAppEffect } from './app-effects.js';

export interface Stage0Context {
  dataDir: string;
  images: ImageStore;
  debug: boolean;
  /** Where the tree store keeps rendered images (stage1's --tree-store). */
  treeStore: string;
}

export class Stage0Effects implements EffectInterpreter {
  private readonly children = new Map<string, ChildProcess>();

  constructor(private readonly c: Stage0Context) {}

  /** The stage1 process this interpreter started for a pod, handed to the one caller that waits for it. */
  takeChild(uuid: string): ChildProcess | undefined {
    const child = this.children.get(uuid);
    this.children.delete(uuid);
    return child;
  }

  async run(r: EffectRequest): Promise<Outcome[]> {
    const pod = podDir(this.c.dataDir, r.uuid);
    switch (r.effect) {
      case 'createPod': {
        const dir = createPodDir(this.c.dataDir, r.uuid);
        installStage1(dir, (r.intent.data as PodEventData['PrepareRequested']).stage1);
        return [{ type: 'PodCreated', data: {} }];
      }
      case 'renderImage': {
        const { app, image } = r.intent.data as PodEventData['ImageRenderRequested'];
        return [{ type: 'ImageRendered', data: { app, imageId: image, treeStoreId: await renderAppImage(this.c.images, pod, app, image) } }];
      }
      case 'prepareOverlay': {
        for (const app of r.pod.apps) {
          if (app.treeStoreId === undefined) throw new PodlogError('EWRONG_STATE', `app ${app.name} has no rendered image yet`);
          makeOverlayDirs(pod, app.treeStoreId, app.name, r.pod.privateUsers);
        }
        return [{ type: 'OverlayPrepared', data: {} }];
      }
      case 'copyAppRoot': {
        const { app } = r.intent.data as PodEventData['AppRootCopyRequested'];
        const image = r.pod.apps.find((a) => a.name === app)?.imageId;
        if (image === undefined) throw new PodlogError('EWRONG_STATE', `app ${app} has no rendered image yet`);
        const dest = podPaths(pod).copiedRoot(app);
        // What an attempt cut short left is copied again whole.
        rmSync(dest, { recursive: true, force: true });
        mkdirSync(dirname(dest), { recursive: true, mode: 0o750 });
        const method = await this.c.images.copyRoot(image, dest);
        const users = r.pod.privateUsers;
        if (users?.ownership === 'chown') await shiftOwners(dest, users.shift, users.count);
        return [{ type: 'AppRootCopied', data: { app, method } }];
      }
      case 'writeManifest': {
        if (r.input?.manifest === undefined) throw new PodlogError('EABANDONED', 'the pod manifest is not in the log; only its preparer can write it');
        // 0600: the manifest holds the apps' environment values, which the log never does.
        writeWhole(podPaths(pod).manifest, JSON.stringify(r.input.manifest), 0o600);
        return [{ type: 'PodManifestWritten', data: { manifest: loggedManifest(r.input.manifest as PodManifest) } }];
      }
      case 'attachNetwork':
        return this.attachNetwork(r.uuid, pod, r.pod, r.intent.data as PodEventData['NetworkAttachRequested']);
      case 'detachNetwork':
        return this.detachNetwork(r.uuid, pod, r.pod, (r.intent.data as PodEventData['NetworkDetachRequested']).name);
      case 'registerMetadata':
        return registerMetadata(r.uuid, r.intent.data as PodEventData['MetadataRegisterRequested'], this.c.dataDir);
      case 'unregisterMetadata':
        if (r.pod.metadata === undefined) throw new PodlogError('EWRONG_STATE', `pod ${r.uuid} is not registered with a metadata service`);
        return [{ type: 'MetadataUnregistered', data: await unregisterMetadata(r.uuid, r.pod.metadata.socket, this.c.dataDir) }];
      case 'startStage1':
        return this.startStage1(r.uuid, pod, r.intent.data as PodEventData['Stage1StartRequested'], r.pod);
      case 'stopPod':
        return this.stopPod(pod, (r.intent.data as PodEventData['StopRequested']).force);
      case 'deletePod':
        return this.deletePod(pod, r.input?.mounts);
      case 'addApp':
      case 'startApp':
      case 'stopApp':
      case 'removeApp':
        return runAppEffect(this.c, r);
    }
  }

  async reconcile(r: EffectRequest): Promise<Outcome[]> {
    const pod = podDir(this.c.dataDir, r.uuid);
    switch (r.effect) {
      case 'writeManifest':
        // Written whole or not at all: there, it is the preparer's; missing, nobody can write it now.
        return existsSync(podPaths(pod).manifest)
          ? [{ type: 'PodManifestWritten', data: { manifest: loggedManifest(JSON.parse(readFileSync(podPaths(pod).manifest, 'utf8')) as PodManifest) } }]
          : [{ type: 'EffectFailed', data: { effect: 'writeManifest', code: 'EABANDONED', message: 'the process writing the pod manifest died first' } }];
      case 'startStage1': {
        // stage1 said the pod was up (the pid file), or still holds the lock: the pod started.
        // PodStarted names stage1 (the pid file's PID 1 is its child); 0 once nobody can tell.
        const pid1 = readPid(pod);
        if (isLocked(pod) || pid1 !== undefined || appRan(pod)) {
          const cgroups = readPodCgroups(pod);
          return [{ type: 'PodStarted', data: { pid: pid1 === undefined ? 0 : parentOf(pid1), ...(cgroups !== undefined ? { cgroups } : {}) } }];
        }
        return [{ type: 'EffectFailed', data: { effect: 'startStage1', code: 'EABANDONED', message: 'stage1 never started: the process starting it died first' } }];
      }
      case 'attachNetwork': {
        // Whatever the dead attach made is undone (DEL is idempotent); the network counts as not attached.
        const data = r.intent.data as PodEventData['NetworkAttachRequested'];
        await delNetwork(data.config, attachment(r.uuid, pod, data));
        await this.releaseNetns(pod, r.pod);
        return [{ type: 'EffectFailed', data: { effect: 'attachNetwork', code: 'EABANDONED', message: `the process attaching network ${data.name} died first; what it made is undone` } }];
      }
      case 'registerMetadata':
        // The service may hold the registration the dead process asked for: it forgets it again.
        await unregisterMetadata(r.uuid, (r.intent.data as PodEventData['MetadataRegisterRequested']).socket, this.c.dataDir);
        return [{ type: 'EffectFailed', data: { effect: 'registerMetadata', code: 'EABANDONED', message: 'the process registering the pod with the metadata service died first; the registration is undone' } }];
      case 'stopPod':
        // A pod that is no longer running needs no stop; one that is gets the stop again.
        return isLocked(pod) ? this.run(r) : [{ type: 'StopSignalled', data: { signal: 'none' } }];
      case 'addApp':
        return reconcileAddApp(this.c, r);
      default:
        return this.run(r);
    }
  }

  /**
   * Starts stage1 holding the pod lock, as this process's child that dies with it, and returns once
   * stage1 says the pod is up (docs/stage1.md: --ready-fd), so that PodStarted is only recorded for a
   * pod that `stop` and `enter` can reach.
   */
  private async startStage1(uuid: string, pod: string, options: PodEventData['Stage1StartRequested'], { privateUsers: users, mutable }: PodContext): Promise<Outcome[]> {
    const [binary, ...args] = entrypoint(pod, 'run');
    let fd: number;
    try {
      fd = await lockDir(pod);
    } catch (e) {
      if ((e as PodlogError).code === 'ELOCKED') throw new PodlogError('ELOCKED', `pod ${uuid} is locked by another process`);
      throw e;
    }
    let child: ChildProcess;
    try {
      // rkt's contract: the locked pod directory is fd 3 and RKT_LOCK_FD names it; fd 4 is the readiness pipe.
      child = spawn(
        binary!,
        [
          ...args,
          '--tree-store', this.c.treeStore,
          ...stage1InitArgs(options),
          ...(users !== undefined ? ['--private-users', `${users.shift}:${users.count}:${users.ownership}`] : []),
          ...(mutable ? ['--mutable'] : []),
          '--ready-fd', '4',
          '--parent-pid', String(process.pid),
          ...(this.c.debug ? ['--debug'] : []),
        ],
        { cwd: pod, stdio: ['inherit', 'inherit', 'inherit', fd, 'pipe'], env: { ...process.env, RKT_LOCK_FD: '3' } },
      );
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (e) => reject(new PodlogError('ESTAGE1', `cannot start stage1 ${binary}: ${e.message}`)));
      });
    } finally {
      // stage1 holds its own copy of the lock now; the pod runs exactly as long as it does.
      closeFd(fd);
    }
    const pid1 = await readiness(child.stdio[4] as Readable);
    if (pid1 === undefined) {
      const code = await exitOf(child);
      // The reconciler's rule: an app's code recorded means the pod ran (an app, or its pre-start
      // handler, failed before the pod was up), and its exit is observed as any pod's.
      if (!appRan(pod)) throw new PodlogError('ESTAGE1', `stage1 of pod ${uuid} ended (exit ${code}) before the pod was up; see its messages above`);
    }
    this.children.set(uuid, child);
    const cgroups = readPodCgroups(pod);
    return [{ type: 'PodStarted', data: { pid: child.pid!, ...(cgroups !== undefined ? { cgroups } : {}) } }];
  }

  /**
   * CNI ADD into the pod's network namespace, which stage1 makes on the first attach. A failed ADD
   * undoes itself (cni.ts); the namespace goes too when no other network holds it.
   */
  private async attachNetwork(uuid: string, pod: string, context: PodContext, data: PodEventData['NetworkAttachRequested']): Promise<Outcome[]> {
    await this.netns(pod, 'create');
    let result: Awaited<ReturnType<typeof addNetwork>>;
    try {
      result = await addNetwork(data.config, attachment(uuid, pod, data));
    } catch (e) {
      await this.releaseNetns(pod, context);
      throw e;
    }
    return [{ type: 'NetworkAttached', data: { name: data.name, result, summary: summarizeResult(data.name, result) } }];
  }

  /** CNI DEL with the recorded ADD result; after the pod's last network, its namespace goes too. */
  private async detachNetwork(uuid: string, pod: string, context: PodContext, name: string): Promise<Outcome[]> {
    const network = context.networks?.find((n) => n.name === name);
    if (network === undefined) throw new PodlogError('EWRONG_STATE', `pod ${uuid} has no network ${name}`);
    await delNetwork(network.config, attachment(uuid, pod, network), network.result);
    if (!context.networks!.some((n) => n.attached && n.name !== name)) await this.netns(pod, 'remove');
    return [{ type: 'NetworkDetached', data: { name } }];
  }

  /** Removes the pod's network namespace when none of its networks is attached (an attach that failed made it). */
  private async releaseNetns(pod: string, context: PodContext): Promise<void> {
    if (!(context.networks ?? []).some((n) => n.attached)) await this.netns(pod, 'remove');
  }

  /** stage1's netns entrypoint: `create` (idempotent) or `remove` (idempotent) `<pod>/netns`. */
  private async netns(pod: string, action: 'create' | 'remove'): Promise<void> {
    const { code, output } = await new CrossingEntrypoint(pod, 'netns', [action]).run();
    if (code !== 0) throw new PodlogError('ESTAGE1', `stage1 netns ${action} failed (exit ${code}): ${output.trim()}`);
  }

  private async stopPod(pod: string, force: boolean): Promise<Outcome[]> {
    const { code, output } = await new CrossingEntrypoint(pod, 'stop', force ? ['--force'] : []).run();
    if (code !== 0 && isLocked(pod)) throw new PodlogError('ESTOP', `stage1 stop failed (exit ${code}): ${output.trim()}`);
    return [{ type: 'StopSignalled', data: { signal: code === 0 ? (force ? 'SIGKILL' : 'SIGTERM') : 'none' } }];
  }

  private async deletePod(pod: string, mounts: Array<{ mountPoint: string }> = mountsUnder(pod)): Promise<Outcome[]> {
    if (existsSync(pod)) {
      if (isLocked(pod)) throw new PodlogError('ELOCKED', `pod directory ${pod} is locked: something still uses it`);
      // Networks are detached by now (the machine asks it before GcRequested); a namespace still kept
      // goes first, as stage1's gc refuses a pod directory with a mount in it.
      const netns = podPaths(pod).netns;
      if (existsSync(netns)) await this.netns(pod, 'remove');
      await this.collectStage1Leftovers(pod);
      // The kept namespace is stage1's to remove (above, or by the last detach): a mount table read
      // before that still lists it, and only the pod's other mounts are leftovers.
      mountGc(pod, mounts.filter((m) => m.mountPoint !== netns));
      // One walk of the whole tree: a delete interrupted half-way is the log's open intent (or a
      // closed `deleting` pod), which the next gc or rm completes; the directory's state says nothing.
      await removeTree(pod);
    }
    return [{ type: 'PodDeleted', data: {} }];
  }

  /** stage1's gc entrypoint removes cgroups a killed stage1 left; without any, there is nothing to run. */
  private async collectStage1Leftovers(pod: string): Promise<void> {
    const subcgroup = podPaths(pod).subcgroup;
    const cgroups = existsSync(subcgroup) ? readFileSync(subcgroup, 'utf8').split('\n').filter((l) => l !== '') : [];
    if (!cgroups.some((dir) => existsSync(dir))) return;
    const { code, output } = await new CrossingEntrypoint(pod, 'gc').run();
    if (code !== 0) throw new PodlogError('EGC', `stage1 gc of ${pod} failed (exit ${code}): ${output.trim()}`);
  }
}

/** Removes a tree whole on the addon's thread, never following a symlink nor entering a mount. */
const removeTree = async (path: string): Promise<void> => {
  const [removed] = await removeTrees([path]);
  if (removed?.code !== undefined) throw new PodlogError(removed.code === 'EBUSY' ? 'EBUSY' : 'EDELETE', `cannot remove ${path}: ${removed.error ?? removed.code}`);
};

/** statfs(2)'s f_type of nsfs: what a kept namespace's path is. */
const NSFS_MAGIC = 0x6e736673;

/**
 * The pod's namespace as its plugins are to find it. Where none is kept there (after a reboot, or
 * made in another mount namespace), a path that does not exist: plugins take that for "already
 * gone" on DEL and still release what they hold elsewhere (the lease), where an empty file would
 * be an error ("not a network namespace") that no later DEL could get past.
 */
const netnsPath = (pod: string): string => {
  const kept = podPaths(pod).netns;
  try {
    if (statfsSync(kept).type === NSFS_MAGIC) return kept;
  } catch {
    // not there
  }
  return `${kept}.gone`;
};

/** Who the pod is to its CNI plugins: its UUID, its namespace kept in its directory, its interface. */
const attachment = (uuid: string, pod: string, n: { ifName: string; args: string; pluginDirs: string[]; capabilityArgs?: Record<string, unknown> }): Attachment => ({
  containerId: uuid,
  netns: netnsPath(pod),
  ifName: n.ifName,
  args: n.args,
  pluginDirs: n.pluginDirs,
  ...(n.capabilityArgs ? { capabilityArgs: n.capabilityArgs } : {}),
});

/** PID 1's host pid, as stage1 writes it to the readiness pipe once the pod is up; undefined if it closed the pipe first. */
const readiness = (pipe: Readable): Promise<number | undefined> =>
  new Promise((resolve) => {
    let text = '';
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (text += d));
    pipe.once('close', () => {
      const pid = Number(text.trim());
      resolve(text.endsWith('\n') && Number.isInteger(pid) && pid > 0 ? pid : undefined);
    });
  });

/** `image` is the id its verb resolved the user's words to (a path, a name); returns its tree's id. */
export const renderAppImage = async (images: ImageStore, pod: string, app: string, image: string): Promise<string> => {
  const { treeStoreId } = await images.render(image);
  const info = podPaths(pod).appInfo(app);
  mkdirSync(info, { recursive: true });
  writeWhole(join(info, 'manifest'), JSON.stringify(await images.manifest(image)));
  writeWhole(join(info, 'treeStoreID'), treeStoreId);
  return treeStoreId;
};

/** An app's overlay directories, which stage1 mounts: exact modes, whatever the umask; the upper dir's is the app's `/`'s. */
export const makeOverlayDirs = (pod: string, treeStoreId: string, app: string, users?: PrivateUsers): void => {
  const paths = podPaths(pod);
  for (const [dir, mode] of [[paths.overlayUpper(treeStoreId, app), 0o755], [paths.overlayWork(treeStoreId, app), 0o700]] as const) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, mode);
  }
  // The upper dir's owner is the owner of the app's `/`: the pod's root, with its own users.
  if (users !== undefined) chownSync(paths.overlayUpper(treeStoreId, app), users.shift, users.shift);
};

/** A child's exit status, as a shell reports it, whether or not it has exited already. */
export const exitOf = (child: ChildProcess): Promise<number> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(exitCodeOf(child.exitCode, child.signalCode))
    : new Promise((resolve) => child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal))));

/** The parent of a live process (stage1's supervisor for the pod's PID 1), or 0. */
const parentOf = (pid: number): number => Number(procStat(pid)?.[1] ?? 0);

/**
 * rkt's MountGC: a mount a pod left must be cleaned before its directory goes. podlog's stage1 mounts
 * only inside the pod's own mount namespace, so there is never one; finding one is a bug worth
 * stopping for, and podlog never unmounts anything of the host's by itself.
 *
 * @param pod - The pod's directory.
 * @param table - The mounts to look at (default: the host's, under `pod`).
 * @throws `PodlogError` EMOUNTS naming every mount found at or under `pod`.
 */
export const mountGc = (pod: string, table: Array<{ mountPoint: string }> = mountsUnder(pod)): void => {
  const left = table.filter((m) => m.mountPoint === pod || m.mountPoint.startsWith(`${pod}/`));
  if (left.length > 0) {
    throw new PodlogError('EMOUNTS', `pod ${pod} left mounts in the host namespace: ${left.map((m) => m.mountPoint).join(', ')}`);
  }
};
