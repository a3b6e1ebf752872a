/**
 * OCI layers, stored and rendered once for every image that has them, as containerd's content store
 * and overlay snapshotter keep them: a layer's blob at cas/layer-blob/<digest>, its rendering at
 * cas/layers/<key>/rootfs in overlayfs's own form (the addon's renderLayer), keyed by its chain (the
 * layer and every layer below it: one blob over different layers renders differently). An image's
 * tree is the list of its layers' keys, which stage1 stacks as the overlay's lower dirs.
 *
 * Each rendering is recorded (LayerRendered), so the image index knows every layer and its hash, and
 * which images and trees use it; `image gc` removes the layers none uses. New layers are rendered in a
 * staging directory of cas/tmp/, into which the layers the store has already are linked as lowers, so
 * a refused import leaves nothing; they are installed under each layer's lock, renamed into place
 * whole and then recorded, like trees (tree-store.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { SizeLimits } from '../config-file.js';
import { PodlogError } from '../errors.js';
import type { LayerRenderedData } from '../events/images.js';
import { renderLayer, treeHash } from '../native.js';
import { beginEffect, effectDone } from './effects.js';
import type { LayerRecord } from './index-projection.js';
import { layerDir, layerLockDir, type StoreLayout } from './layout.js';
import { withDirLock } from './locks.js';
import { moveToScratch } from './scratch.js';
import { markRendered, renderedState } from './tree-store.js';

/**
 * The most layers an image may have: stage1 names each lower in 40 bytes of the overlay's options,
 * which the kernel reads from one 4 KiB page that also holds the pod's upper and work paths.
 */
export const MAX_LAYERS = 80;

/**
 * The key of each layer's chain, bottom first: the sha256 of its blob's digest after its parent's
 * key (containerd's ChainID, over the verified blob digests), cut to 32 hex digits to keep the
 * overlay's options short.
 */
export const chainKeys = (digests: readonly string[]): string[] => {
  let parent: string | undefined;
  return digests.map((d) => (parent = createHash('sha256').update(parent === undefined ? d : `${parent} ${d}`).digest('hex').slice(0, 32)));
};

/** A layer of an image: its blob's digest and file, and its chain's key. */
export interface Layer {
  digest: string;
  key: string;
  blob: string;
}

/** A layer rendered in a staging directory, and what its record will say. */
export type StagedLayer = Omit<LayerRenderedData, 'repair'>;

/** The record of a layer the store holds whole, usable as a lower; undefined for one to render. */
export type Usable = (key: string) => Promise<LayerRecord | undefined>;

export interface StagedLayers {
  /** The layers rendered here, bottom first. */
  fresh: StagedLayer[];
  /** Every layer of the image, bottom first, as rendered here or as the store has it. */
  all: Array<Pick<LayerRecord, 'key' | 'hash' | 'size' | 'unpacked'>>;
}

export const refuseDeepImages = (count: number, shown: string): void => {
  if (count > MAX_LAYERS) {
    throw new PodlogError('ETOO_LARGE', `${shown}: the image has ${count} layers; podlog stacks at most ${MAX_LAYERS} (they must fit in one overlay mount's options)`);
  }
};

/**
 * Renders into `dir` (a fresh directory of cas/tmp/) the layers of `layers` (bottom first) that the
 * store cannot give whole, each over the layers below it; those it can are linked in from the store.
 * The layers' unpacked sizes add up against the image limit.
 */
export const stageLayers = async (l: StoreLayout, dir: string, layers: readonly Layer[], usable: Usable, limits: SizeLimits): Promise<StagedLayers> => {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const staged: StagedLayers = { fresh: [], all: [] };
  let below = 0;
  for (const [i, layer] of layers.entries()) {
    const known = await usable(layer.key);
    if (known) {
      symlinkSync(layerDir(l, layer.key), join(dir, layer.key));
      staged.all.push(known);
      below += known.unpacked;
      continue;
    }
    beginEffect('renderLayer');
    const lowers = layers.slice(0, i).map((x) => x.key).reverse();
    const stats = await renderLayer(layer.blob, dir, layer.key, lowers, below, limits);
    const rendered: StagedLayer = {
      key: layer.key, digest: layer.digest, ...(i > 0 ? { parent: layers[i - 1]!.key } : {}),
      hash: await treeHash(join(dir, layer.key)), size: stats.bytes, unpacked: stats.unpacked,
    };
    staged.fresh.push(rendered);
    staged.all.push(rendered);
    below += stats.unpacked;
  }
  return staged;
};

/**
 * Installs the layers rendered in `dir`, each under its lock: renamed into place (over a damaged or
 * unrecorded copy) unless the store has it whole already, then recorded with `record`. Where the
 * `renderLayer` effect is done.
 */
export const installLayers = async (
  l: StoreLayout,
  dir: string,
  fresh: readonly StagedLayer[],
  known: (key: string) => Promise<LayerRecord | undefined>,
  record: (data: LayerRenderedData) => Promise<void>,
): Promise<void> => {
  for (const layer of fresh) {
    await withDirLock(layerLockDir(l, layer.key), false, async () => {
      const before = await known(layer.key);
      const dest = layerDir(l, layer.key);
      if (before && !before.damaged && renderedState(dest) === 'ready') return;
      rmSync(moveToScratch(l, [dest]), { recursive: true, force: true });
      markRendered(join(dir, layer.key));
      mkdirSync(l.layers, { recursive: true, mode: 0o750 });
      renameSync(join(dir, layer.key), dest);
      effectDone('renderLayer');
      await record({ ...layer, repair: before !== undefined });
    });
  }
};
