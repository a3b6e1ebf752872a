/**
 * The one door from TypeScript to the Rust addon (crates/podlog-native). It loads the addon lazily,
 * supplies argument defaults, and gives every failure the shape the engine keys on: the addon puts a
 * stable code at the front of its messages ("EHOSTILE_ARCHIVE: entry ..."), which becomes
 * PodlogError.code. No other logic lives here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Addon from '../crates/podlog-native/index.js';
import { PodlogError } from './errors.js';

export type { ChainImage, ExtractOptions, ExtractStats, ImageInfo, ImportedImage, MountEntry, RemovedTree, RenderedImage } from '../crates/podlog-native/index.js';

/**
 * The repository root: the nearest directory upwards holding podlog's package.json. Walking up keeps
 * this right both from src/ (tsx) and from dist/src/ (tsc output).
 */
let root: string | undefined;
const repoRoot = (): string => (root ??= findRepoRoot());
const findRepoRoot = (): string => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'podlog') return dir;
    if (dirname(dir) === dir) throw new PodlogError('ENATIVE', "cannot find podlog's package.json above src/native.ts");
  }
};

/** The addon's path: env PODLOG_NATIVE, or build/podlog-native.node in the repository. */
export const nativePath = (): string => process.env.PODLOG_NATIVE ?? join(repoRoot(), 'build', 'podlog-native.node');

/** The stage1 binary: env PODLOG_STAGE1, or build/podlog-stage1 in the repository. */
export const stage1Path = (): string => process.env.PODLOG_STAGE1 ?? join(repoRoot(), 'build', 'podlog-stage1');

/** podlog's version: its package.json's. */
export const podlogVersion = (): string => (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;

let addon: typeof Addon | undefined;

const load = (): typeof Addon => {
  if (addon) return addon;
  const path = nativePath();
  if (!existsSync(path)) {
    throw new PodlogError('ENATIVE', `podlog's native addon is not built (run npm ci, or npm run build:native): ${path} is missing`);
  }
  try {
    addon = createRequire(import.meta.url)(path) as typeof Addon;
  } catch (cause) {
    throw new PodlogError('ENATIVE', `podlog's native addon at ${path} does not load: ${String(cause)}`, { cause });
  }
  return addon;
};

const CODED = /^([A-Z][A-Z0-9_]+): /;

/** An addon error as a PodlogError: the message's leading code becomes `code` (EIO when absent). */
const shape = (cause: unknown): PodlogError => {
  if (cause instanceof PodlogError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  const m = CODED.exec(message);
  return new PodlogError(m?.[1] ?? 'EIO', m ? message.slice(m[0].length) : message, { cause });
};

const call = <T>(f: (a: typeof Addon) => T): T => {
  try {
    return f(load());
  } catch (e) {
    throw shape(e);
  }
};

const callAsync = async <T>(f: (a: typeof Addon) => Promise<T>): Promise<T> => {
  try {
    return await f(load());
  } catch (e) {
    throw shape(e);
  }
};

/** What this build of the addon is: its version and the compressions it reads. */
export const nativeVersion = (): Addon.NativeVersion => call((a) => a.version());

export interface LockOptions {
  /** A shared lock instead of an exclusive one. Default false. */
  shared?: boolean;
  /** Wait for a conflicting lock to go away (holding a libuv pool thread meanwhile) instead of failing
   * with ELOCKED at once. Default false. */
  wait?: boolean;
}

/** Checks an ACI (compression by magic bytes, layout, manifest) and computes its image id, within the options' size limits. */
export const readImage = (path: string, options: Addon.ExtractOptions = {}): Promise<Addon.ImageInfo> => callAsync((a) => a.readImage(path, options));

/**
 * Imports an ACI reading it once: readImage's checks and id, its rootfs/ rendered to `<tree>/rootfs`
 * (`tree`: a directory holding nothing else) and the tree hash of `tree`, within the options' size
 * limits; with `copyTo` (a new file), the bytes read are written there too, so that a stored copy is
 * the archive checked. On failure no rootfs is left; a partial copy is the caller's to remove.
 */
export const importImage = (path: string, tree: string, copyTo?: string, options: Addon.ExtractOptions = {}): Promise<Addon.ImportedImage> =>
  callAsync((a) => a.importImage(path, tree, copyTo, options));

/** Extracts an ACI's rootfs/ to `dest` (must not exist) via a staging directory renamed into place. */
export const extractImage = (path: string, dest: string, options: Addon.ExtractOptions = {}): Promise<Addon.RenderedImage> =>
  callAsync((a) => a.extractImage(path, dest, options));

/** Renders an ACI and its dependencies, upper first, honouring pathWhitelist (rkt's acirenderer). */
export const renderImages = (images: Addon.ChainImage[], dest: string, options: Addon.ExtractOptions = {}): Promise<Addon.RenderedImage> =>
  callAsync((a) => a.renderImages(images, dest, options));

/** Applies OCI layer tars, bottom first, with whiteouts, to `dest` (must not exist). */
export const extractLayers = (layers: string[], dest: string, options: Addon.ExtractOptions = {}): Promise<Addon.ExtractStats> =>
  callAsync((a) => a.extractLayers(layers, dest, options));

/**
 * Applies the OCI layer tar `layer` over the layers `lowers` (keys, top first) of the layer directory
 * `dir`, as the new layer `dir/<key>/rootfs` in overlayfs's form; `below` is what the layers below
 * unpacked to (counted against the image limit).
 */
export const renderLayer = (layer: string, dir: string, key: string, lowers: string[], below: number, options: Addon.ExtractOptions = {}): Promise<Addon.ExtractStats> =>
  callAsync((a) => a.renderLayer(layer, dir, key, lowers, below, options));

/** --private-users without idmapped mounts: every owner in the tree `dir` moved to shift + owner; resolves to the entries changed. */
export const shiftOwners = (dir: string, shift: number, count: number): Promise<number> => callAsync((a) => a.shiftOwners(dir, shift, count));

/** rkt's tree hash of a tree directory (the one holding rootfs/): `sha512-<64 hex>`. */
export const treeHash = (dir: string): Promise<string> => callAsync((a) => a.treeHash(dir));

/**
 * Removes each path's tree (or file) completely, several at once (rm -rf): symlinks in a tree are
 * removed, never followed; a mount point in a tree is not entered, and that path's report has code
 * EBUSY; a missing path counts as removed. Resolves to one report per path, in order, with `code` and
 * `error` when that path could not be removed (what was removed of it stays removed); never rejects
 * for a path's failure.
 */
export const removeTrees = (paths: string[]): Promise<Addon.RemovedTree[]> => callAsync((a) => a.removeTrees(paths));

/** Opens `dir` and flocks it; resolves to the fd, which can be passed to a child in `stdio`. */
export const lockDir = (dir: string, { shared = false, wait = false }: LockOptions = {}): Promise<number> =>
  callAsync((a) => a.lockDir(dir, !shared, wait));

/** Locks an fd from lockDir/openDir, or converts the lock it holds between shared and exclusive. */
export const lockFd = (fd: number, { shared = false, wait = false }: LockOptions = {}): Promise<void> =>
  callAsync((a) => a.lockFd(fd, !shared, wait));

/** Opens a directory fd (O_RDONLY|O_DIRECTORY|O_CLOEXEC) without locking it. */
export const openDir = (dir: string): number => call((a) => a.openDir(dir));

export const unlockFd = (fd: number): void => call((a) => a.unlockFd(fd));

/** Closes an fd from this module; a lock fd's lock goes with it unless a child still shares it. */
export const closeFd = (fd: number): void => call((a) => a.closeFd(fd));

/** rkt's liveness probe: true when another open file description holds `dir` exclusively. */
export const isLocked = (dir: string): boolean => call((a) => a.isLocked(dir));

export const pidfdOpen = (pid: number): number => call((a) => a.pidfdOpen(pid));

/**
 * Resolves true once the process exits, false when `timeoutMs` passes first. Each wait holds a libuv
 * pool thread, so prefer bounded timeouts in a loop over one endless wait.
 */
export const waitExit = (target: { pid: number } | { pidfd: number }, timeoutMs: number): Promise<boolean> =>
  callAsync((a) => ('pidfd' in target ? a.waitPidfd(target.pidfd, timeoutMs) : a.waitPid(target.pid, timeoutMs)));

/** Mounts at or below `path` (as written, not resolved), parents before children. */
export const mountsUnder = (path: string): Addon.MountEntry[] => call((a) => a.mountsUnder(path));

/**
 * The entries of an `os/linux/seccomp-retain-set` or `-remove-set` (syscall names and `@` groups)
 * that this machine's architecture does not know, in order: stage1 compiles filters from the same
 * lists and refuses them too.
 */
export const unknownSeccompEntries = (entries: string[]): string[] => call((a) => a.unknownSeccompEntries(entries));

/**
 * The entries of a seccomp remove set that stage1 calls itself after loading the filter, which it
 * does before dropping the app's privileges when os/linux/no-new-privileges is false.
 */
export const seccompEntriesStage1Needs = (entries: string[]): string[] => call((a) => a.seccompEntriesStage1Needs(entries));
