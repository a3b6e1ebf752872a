/**
 * The image verbs beyond import and render: rm, gc, verify (and repair), render and extract to a
 * directory, export. Removals record their event before their effect (effects.ts), so a removal cut
 * short leaves content the log no longer claims, which the next gc sweeps; never a record without its
 * content.
 */
import { copyFile } from 'node:fs/promises';
import { constants, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ownsPod } from '../engine/hosts.js';
import { catchUpPodList } from '../engine/pod-list.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { imageStream, layerStream, treeStream } from '../events/images.js';
import { extractImage, extractLayers } from '../native.js';
import { clearUnsynced } from './durability.js';
import { beginEffect, effectDone } from './effects.js';
import { forgetImagesExcept } from './file-cache.js';
import type { ImageIndex, ImageRecord, LayerRecord, TreeRecord } from './index-projection.js';
import { blobPath, layerBlobPath, layerDir, layerLockDir, manifestPath, ociDir, PARTIAL_LOCK, treeDir, treeLockDir, type StoreLayout } from './layout.js';
import { withDirLock, withPrepareLock } from './locks.js';
import { parseDockerRef, pulledName, pulledSource } from './registry/reference.js';
import { describeName, findById, findByName, guessRef } from './resolve.js';
import { moveToScratch, scratchPid } from './scratch.js';
import { about, ociLayerFiles, type Store } from './store.js';

/**
 * rkt image rm's idea of an image reference: an id (prefix) or a name, never a file; a docker://
 * reference names what its pull stored: HOST[:PORT]/NAME, the tag its version, or with a digest, the
 * image pulled from HOST[:PORT]/NAME@DIGEST (a name has no digest: the newest HOST[:PORT]/NAME may be another).
 */
const lookup = async (store: Store, ref: string): Promise<ImageRecord> => {
  const r = guessRef(ref);
  if (r.kind === 'id') return findById(await store.index(), r.id);
  const docker = r.kind === 'docker' ? parseDockerRef(ref) : undefined;
  if (docker?.digest !== undefined) {
    const source = pulledSource(docker, docker.digest);
    const found = [...(await store.index()).images.values()].find((i) => i.names.some((n) => n.source === source));
    if (!found) throw new PodlogError('ENOENT', `no image pulled from ${source} in the store (a digest reference names the image pulled by that digest)`);
    return found;
  }
  const name = r.kind === 'name' ? r : docker ? pulledName(docker) : { name: ref, labels: [] };
  const found = findByName(await store.index(), name.name, name.labels);
  if (!found) throw new PodlogError('ENOENT', `no image named ${JSON.stringify(describeName(name.name, name.labels))} in the store`);
  return found;
};

/** A removal effect: `paths` leave the store each in one rename, then are deleted. */
const removeFromStore = (l: StoreLayout, effect: 'removeImage' | 'removeTree' | 'removeLayer', paths: string[]): void => {
  beginEffect(effect);
  const moved = moveToScratch(l, paths);
  effectDone(effect);
  rmSync(moved, { recursive: true, force: true });
};

/** The code of a removal that was recorded but left the image's files in place: removed all the same. */
const FILES_LEFT = 'EFILESLEFT';

/** The layer blobs of `image` that no other image of the index has. */
const ownBlobs = (l: StoreLayout, image: ImageRecord, index: ImageIndex): string[] => {
  const shared = new Set([...index.images.values()].filter((i) => i.id !== image.id).flatMap((i) => (i.layers ?? []).map((x) => x.digest)));
  return [...new Set((image.layers ?? []).map((x) => x.digest))].filter((d) => !shared.has(d)).map((d) => layerBlobPath(l, d));
};

/** Removes an image's content, and the layer blobs no other image has (its rendered layers stay for `image gc`). */
const removeImage = async (store: Store, image: ImageRecord, reason: 'rm' | 'gc'): Promise<void> => {
  const l = store.layout;
  const blobs = ownBlobs(l, image, await store.index());
  await store.append(imageStream(image.id), 'ImageRemoved', { id: image.id, reason });
  try {
    removeFromStore(l, 'removeImage', [blobPath(l, image.id), ociDir(l, image.id), manifestPath(l, image.id), ...blobs]);
    clearUnsynced(l, image.id);
  } catch (e) {
    const message = `image ${image.id} (${image.name}) is removed from the store, but its files are not (podlog image gc deletes them): ${(e as Error).message}`;
    throw new PodlogError(FILES_LEFT, message, { cause: e });
  }
};

/**
 * Removes an image, adding what went wrong to `failures` (after `prefix`); true when the image left
 * the store, which it did also when only deleting its files failed.
 */
const tryRemoveImage = async (store: Store, image: ImageRecord, reason: 'rm' | 'gc', failures: string[], prefix = ''): Promise<boolean> => {
  try {
    await removeImage(store, image, reason);
    return true;
  } catch (e) {
    failures.push(`${prefix}${(e as Error).message}`);
    return isPodlogError(e) && e.code === FILES_LEFT;
  }
};

/** Removes an unused tree, recording it first if the log knows it, under the tree's lock. */
const removeUnusedTree = (store: Store, id: string, recorded: TreeRecord | undefined): Promise<void> =>
  withDirLock(treeLockDir(store.layout, id), false, async () => {
    if (recorded) await store.append(treeStream(id), 'TreeRemoved', { treeStoreId: id, reason: 'gc' });
    try {
      removeFromStore(store.layout, 'removeTree', [treeDir(store.layout, id)]);
    } catch (e) {
      const of = recorded ? ` of image ${recorded.imageId}` : '';
      throw about(e, `tree ${id}${of} is removed from the store, but its files are not (podlog image gc deletes them)`);
    }
  });

/** Removes an unused layer, recording it first if the log knows it, under the layer's lock; `of` names an image that had it. */
const removeUnusedLayer = (store: Store, key: string, recorded: LayerRecord | undefined, of: ImageRecord | undefined): Promise<void> =>
  withDirLock(layerLockDir(store.layout, key), false, async () => {
    if (recorded) await store.append(layerStream(key), 'LayerRemoved', { key, reason: 'gc' });
    try {
      removeFromStore(store.layout, 'removeLayer', [layerDir(store.layout, key)]);
    } catch (e) {
      throw about(e, `layer ${key}${of ? ` of image ${of.id}` : ''} is removed from the store, but its files are not (podlog image gc deletes them)`);
    }
  });

/**
 * rkt's `image rm`: removes each image, under the exclusive prepare lock so that no preparation sees
 * one half removed. Trees stay until `image gc`. Every reference is tried; failures are reported
 * together at the end.
 */
export const removeImages = (store: Store, refs: string[]): Promise<ImageRecord[]> =>
  withPrepareLock(store.layout.dataDir, async () => {
    const removed: ImageRecord[] = [];
    const failures: string[] = [];
    for (const ref of refs) {
      let image: ImageRecord;
      try {
        image = await lookup(store, ref);
      } catch (e) {
        failures.push(`${ref}: ${(e as Error).message}`);
        continue;
      }
      if (await tryRemoveImage(store, image, 'rm', failures, `${ref}: `)) removed.push(image);
    }
    if (failures.length > 0) {
      throw new PodlogError('EIMAGE', `${failures.join('\n')}\nrm: ${removed.length} image(s) removed, ${failures.length} error(s)`);
    }
    return removed;
  }, { exclusive: true });

export interface GcResult {
  trees: string[];
  /** Keys of the rendered layers removed. */
  layers: string[];
  images: ImageRecord[];
  /** Entries of cas/ that no record claims (left by killed processes), removed. */
  leftovers: string[];
  /** What could not be removed, one message each; the rest was collected all the same. */
  failures: string[];
}

/** Whether a process with this pid exists (a leftover's name carries its creator's pid). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** How long a partial registry download waits for a pull to continue it before image gc removes it. */
const PARTIAL_MAX_AGE_MS = 24 * 3600_000;

const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

/** Runs `fn`, and adds its failure's message to `failures` instead of throwing it. */
const attempt = async (failures: string[], fn: () => unknown): Promise<boolean> => {
  try {
    await fn();
    return true;
  } catch (e) {
    failures.push((e as Error).message);
    return false;
  }
};

/**
 * rkt's `image gc`, under the exclusive prepare lock (no preparation can be between choosing a tree
 * and recording its use): removes trees no pod references, images unused for `gracePeriodMs` that no
 * pod references, and leftovers of killed processes. One that cannot be removed does not stop the rest.
 */
export const collectGarbage = (store: Store, { gracePeriodMs }: { gracePeriodMs: number }): Promise<GcResult> =>
  withPrepareLock(store.layout.dataDir, async () => {
    const l = store.layout;
    const usedTrees = new Set<string>();
    const usedImages = new Set<string>();
    for (const pod of (await catchUpPodList(store.events)).values()) {
      // Another host's pods use that host's image store, not this one.
      if (!ownsPod(store.hostId, pod.context)) continue;
      for (const app of pod.context.apps) {
        if (app.treeStoreId) usedTrees.add(app.treeStoreId);
        if (app.imageId) usedImages.add(app.imageId);
      }
    }
    const index = await store.index();
    const result: GcResult = { trees: [], layers: [], images: [], leftovers: [], failures: [] };
    for (const id of new Set([...index.trees.keys(), ...list(l.trees)])) {
      if (usedTrees.has(id)) continue;
      if (await attempt(result.failures, () => removeUnusedTree(store, id, index.trees.get(id)))) result.trees.push(id);
    }
    const now = Date.now();
    for (const image of index.images.values()) {
      if (usedImages.has(image.id) || now - Date.parse(image.lastUsedAt ?? image.importedAt) <= gracePeriodMs) continue;
      if (await tryRemoveImage(store, image, 'gc', result.failures)) result.images.push(image);
    }
    // Layers no image or tree left uses.
    const after = await store.index();
    const usedLayers = new Set([
      ...[...after.images.values()].flatMap((i) => (i.layers ?? []).map((x) => x.key)),
      ...[...after.trees.values()].flatMap((t) => t.layers ?? []),
    ]);
    for (const key of new Set([...after.layers.keys(), ...list(l.layers)])) {
      if (usedLayers.has(key)) continue;
      const of = [...index.images.values()].find((i) => i.layers?.some((x) => x.key === key));
      if (await attempt(result.failures, () => removeUnusedLayer(store, key, after.layers.get(key), of))) result.layers.push(key);
    }
    // What the log claims now: the content of every other image is a leftover.
    const kept = new Set(after.images.keys());
    const keptBlobs = new Set([...after.images.values()].flatMap((i) => (i.layers ?? []).map((x) => layerBlobPath(l, x.digest))));
    const sweep = async (path: string): Promise<void> => {
      if (await attempt(result.failures, () => rmSync(path, { recursive: true, force: true }))) result.leftovers.push(path);
    };
    for (const dir of [l.blobs, l.oci, l.manifests, join(l.cas, 'unsynced')]) {
      for (const id of list(dir)) if (!kept.has(id)) await sweep(join(dir, id));
    }
    for (const name of list(l.layerBlobs)) if (!keptBlobs.has(join(l.layerBlobs, name))) await sweep(join(l.layerBlobs, name));
    forgetImagesExcept(l, kept);
    for (const name of list(l.tmp)) {
      const pid = scratchPid(name);
      if (pid === undefined || !alive(pid)) await sweep(join(l.tmp, name));
    }
    // An interrupted pull's blob is kept to be continued, but not for ever.
    for (const name of list(l.partial)) {
      const path = join(l.partial, name);
      if (now - statSync(path).mtimeMs > PARTIAL_MAX_AGE_MS) await sweep(path);
    }
    // A blob's download lock (blobs.ts) outlives its pull; every pull holds the prepare lock, so none
    // is held now. Not leftovers of a killed process: removed without a word.
    for (const name of list(l.locks)) {
      if (name.startsWith(PARTIAL_LOCK) && !existsSync(join(l.partial, name.slice(PARTIAL_LOCK.length)))) {
        await attempt(result.failures, () => rmSync(join(l.locks, name), { recursive: true, force: true }));
      }
    }
    return result;
  }, { exclusive: true });

export type VerifyOutcome = 'ok' | 'rendered' | 'repaired';

export interface Verified {
  image: ImageRecord;
  treeStoreId: string;
  outcome: VerifyOutcome;
}

/**
 * rkt's treestore Check, then Render with rebuild on a mismatch: the image's tree hashed (rendered
 * again if it is damaged or missing), then `use`d with the tree's lock still held, so that nothing
 * replaces it meanwhile. The caller holds the prepare lock.
 */
const withVerifiedTree = async <T>(store: Store, imageId: string, use: (v: Verified) => Promise<T>): Promise<T> => {
  const image = await store.record(imageId);
  const { chain, treeStoreId } = await store.chain(image);
  return withDirLock(treeLockDir(store.layout, treeStoreId), false, async () => {
    const outcome = await store.ensureTree(treeStoreId, chain, (await store.index()).trees.get(treeStoreId), true);
    return use({ image, treeStoreId, outcome });
  });
};

/** rkt's `image verify`: recomputes the image's tree hash; renders the tree again if it is damaged or missing. */
export const verifyImage = (store: Store, imageId: string): Promise<Verified> =>
  withPrepareLock(store.layout.dataDir, () => withVerifiedTree(store, imageId, async (v) => v));

const refuseExisting = (dir: string): void => {
  if (existsSync(dir)) throw new PodlogError('EEXIST', `${dir} already exists`);
};

/** Creates `dir` (which must not exist) for `fill`, and removes it again if filling fails. */
const intoNewDir = async (dir: string, fill: () => Promise<unknown>): Promise<void> => {
  refuseExisting(dir);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    await fill();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
};


/**
 * rkt's `image render`: the image's tree in the tree store, checked (and rendered again if damaged or
 * missing), copied as it is (owners, modes, links, xattrs: `Store.copyRoot`) to `dir` as manifest and rootfs/.
 * The caller holds the prepare lock.
 */
export const renderToDir = async (store: Store, imageId: string, dir: string): Promise<ImageRecord> => {
  // Refused before anything is rendered; created only once the tree is whole.
  refuseExisting(dir);
  return withVerifiedTree(store, imageId, async ({ image, treeStoreId }) => {
    await intoNewDir(dir, async () => {
      await store.copyRoot(image.id, join(dir, 'rootfs'));
      await copyFile(join(treeDir(store.layout, treeStoreId), 'manifest'), join(dir, 'manifest'));
    });
    return image;
  });
};

/** rkt's `image extract --rootfs-only`: the image's own rootfs, without dependencies, as `dir`. */
export const extractToDir = async (store: Store, imageId: string, dir: string): Promise<ImageRecord> => {
  const image = await store.record(imageId);
  const l = store.layout;
  const extract = image.format === 'aci' ? extractImage(blobPath(l, image.id), dir) : extractLayers(ociLayerFiles(l, image), dir);
  await extract.catch((e: unknown) => {
    throw about(e, `image ${image.id}`);
  });
  return image;
};

/** rkt's `image export`: the ACI as it was imported, so it has the same id. */
export const exportImage = async (store: Store, imageId: string, file: string, { overwrite = false }: { overwrite?: boolean } = {}): Promise<ImageRecord> => {
  const image = await store.record(imageId);
  if (image.format !== 'aci') throw new PodlogError('ENOTSUP', `image ${image.id} is an OCI image; image export writes ACIs as they were imported`);
  try {
    await copyFile(blobPath(store.layout, image.id), file, overwrite ? 0 : constants.COPYFILE_EXCL);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PodlogError('EEXIST', `${file} already exists (use --overwrite)`);
    throw e;
  }
  return image;
};
