/**
 * The image verbs beyond import and render: rm, gc, verify (and repair), render and extract to a
 * directory, export. Removals record their event before deleting, so a removal cut short leaves
 * content the log no longer claims, which the next gc sweeps; never a record without its content.
 */
import { copyFile } from 'node:fs/promises';
import { constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { catchUpPodList } from '../engine/pod-list.js';
import { PodlogError } from '../errors.js';
import { imageStream, treeStream } from '../events/images.js';
import { extractImage, extractLayers } from '../native.js';
import type { ImageRecord } from './index-projection.js';
import { blobPath, manifestPath, ociDir, treeLockDir } from './layout.js';
import { withDirLock, withPrepareLock } from './locks.js';
import { clearUnsynced } from './durability.js';
import { forgetImagesExcept } from './file-cache.js';
import { describeName, findById, findByName, guessRef } from './resolve.js';
import { about, layerFiles, type Store } from './store.js';
import { removeTree } from './tree-store.js';

/** rkt image rm's idea of an image reference: an id (prefix) or a name, never a file. */
const lookup = async (store: Store, ref: string): Promise<ImageRecord> => {
  const r = guessRef(ref);
  if (r.kind === 'id') return findById(await store.index(), r.id);
  const name = r.kind === 'name' ? r : { name: ref, labels: [] };
  const found = findByName(await store.index(), name.name, name.labels);
  if (!found) throw new PodlogError('ENOENT', `no image named ${JSON.stringify(describeName(name.name, name.labels))} in the store`);
  return found;
};

const deleteContent = (store: Store, id: string): void => {
  const l = store.layout;
  rmSync(blobPath(l, id), { force: true });
  rmSync(ociDir(l, id), { recursive: true, force: true });
  rmSync(manifestPath(l, id), { force: true });
  clearUnsynced(l, id);
};

const removeImage = async (store: Store, image: ImageRecord, reason: 'rm' | 'gc'): Promise<void> => {
  await store.append(imageStream(image.id), 'ImageRemoved', { id: image.id, reason });
  deleteContent(store, image.id);
};

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
      try {
        const image = await lookup(store, ref);
        await removeImage(store, image, 'rm');
        removed.push(image);
      } catch (e) {
        failures.push(`${ref}: ${(e as Error).message}`);
      }
    }
    if (failures.length > 0) {
      throw new PodlogError('EIMAGE', `${failures.join('\n')}\nrm: ${removed.length} image(s) removed, ${failures.length} failed`);
    }
    return removed;
  }, { exclusive: true });

export interface GcResult {
  trees: string[];
  images: ImageRecord[];
  /** Entries of cas/ that no record claims (left by killed processes), removed. */
  leftovers: string[];
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

const list = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

/**
 * rkt's `image gc`, under the exclusive prepare lock (no preparation can be between choosing a tree
 * and recording its use): removes trees no pod references, images unused for `gracePeriodMs` that no
 * pod references, and leftovers of killed processes.
 */
export const collectGarbage = (store: Store, { gracePeriodMs }: { gracePeriodMs: number }): Promise<GcResult> =>
  withPrepareLock(store.layout.dataDir, async () => {
    const l = store.layout;
    const usedTrees = new Set<string>();
    const usedImages = new Set<string>();
    for (const pod of (await catchUpPodList(store.events)).values()) {
      for (const app of pod.context.apps) {
        if (app.treeStoreId) usedTrees.add(app.treeStoreId);
        if (app.imageId) usedImages.add(app.imageId);
      }
    }
    const index = await store.index();
    const result: GcResult = { trees: [], images: [], leftovers: [] };
    for (const id of new Set([...index.trees.keys(), ...list(l.trees)])) {
      if (usedTrees.has(id)) continue;
      await withDirLock(treeLockDir(l, id), false, async () => {
        if (index.trees.has(id)) await store.append(treeStream(id), 'TreeRemoved', { treeStoreId: id, reason: 'gc' });
        removeTree(l, id);
      });
      result.trees.push(id);
    }
    const now = Date.now();
    for (const image of index.images.values()) {
      if (usedImages.has(image.id) || now - Date.parse(image.lastUsedAt ?? image.importedAt) <= gracePeriodMs) continue;
      await removeImage(store, image, 'gc');
      result.images.push(image);
    }
    const kept = new Set([...index.images.keys()].filter((id) => !result.images.some((i) => i.id === id)));
    for (const dir of [l.blobs, l.oci, l.manifests, join(l.cas, 'unsynced')]) {
      for (const id of list(dir)) {
        if (kept.has(id)) continue;
        rmSync(join(dir, id), { recursive: true, force: true });
        result.leftovers.push(join(dir, id));
      }
    }
    forgetImagesExcept(l, kept);
    for (const name of list(l.tmp)) {
      const pid = /-(\d+)-[0-9a-f]+$/.exec(name);
      if (pid && alive(Number(pid[1]))) continue;
      rmSync(join(l.tmp, name), { recursive: true, force: true });
      result.leftovers.push(join(l.tmp, name));
    }
    return result;
  }, { exclusive: true });

export type VerifyOutcome = 'ok' | 'rendered' | 'repaired';

/** rkt's `image verify`: recomputes the image's tree hash; renders the tree again if it is damaged or missing. */
export const verifyImage = (store: Store, imageId: string): Promise<{ image: ImageRecord; treeStoreId: string; outcome: VerifyOutcome }> =>
  withPrepareLock(store.layout.dataDir, async () => {
    const image = await store.record(imageId);
    const { chain, treeStoreId } = await store.chain(image);
    const outcome = await withDirLock(treeLockDir(store.layout, treeStoreId), false, async () =>
      store.ensureTree(treeStoreId, chain, (await store.index()).trees.get(treeStoreId), true),
    );
    return { image, treeStoreId, outcome };
  });

/** Creates `dir` (which must not exist) for `fill`, and removes it again if filling fails. */
const intoNewDir = async (dir: string, fill: () => Promise<unknown>): Promise<void> => {
  if (existsSync(dir)) throw new PodlogError('EEXIST', `${dir} already exists`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  try {
    await fill();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
};

/** rkt's `image render`: the image with its dependencies, as a tree (manifest and rootfs/) in `dir`. */
export const renderToDir = async (store: Store, imageId: string, dir: string): Promise<ImageRecord> => {
  const image = await store.record(imageId);
  const { chain } = await store.chain(image);
  await intoNewDir(dir, async () => {
    await store.fill(chain)(join(dir, 'rootfs')).catch((e: unknown) => {
      throw about(e, `image ${image.id}`);
    });
    writeFileSync(join(dir, 'manifest'), readFileSync(manifestPath(store.layout, image.id)));
  });
  return image;
};

/** rkt's `image extract --rootfs-only`: the image's own rootfs, without dependencies, as `dir`. */
export const extractToDir = async (store: Store, imageId: string, dir: string): Promise<ImageRecord> => {
  const image = await store.record(imageId);
  const l = store.layout;
  const extract = image.format === 'aci' ? extractImage(blobPath(l, image.id), dir) : extractLayers(layerFiles(ociDir(l, image.id)), dir);
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
