/**
 * The tree store on disk (rkt's store/treestore, rkt-semantics §4.3): one tree per dependency chain, at
 * cas/tree/<treeStoreId>/ holding manifest, hash, image, rendered and either a rendered rootfs/ (ACIs)
 * or `layers`, the list of an OCI image's layers that stage1 stacks (layer-store.ts).
 *
 * A tree is built in a fresh directory under cas/tmp/ and renamed into place complete, and renamed out
 * again before it is deleted, so a tree directory that exists is whole (rkt writes and deletes in place
 * and relies on the `rendered` marker). Rendering is the `renderTree` effect (effects.ts). Trees are
 * not synced to disk when rendered (durability.ts): `rendered` holds the boot id of the render, and the
 * first use of such a tree after a reboot checks its hash once, then marks it durable by emptying
 * `rendered`.
 * Locking and events are the caller's (store.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PodlogError } from '../errors.js';
import { bootId } from '../engine/liveness.js';
import { beginEffect, effectDone } from './effects.js';
import { treeDir, type StoreLayout } from './layout.js';
import { moveToScratch, scratch } from './scratch.js';

/** rkt's hashToKey: `sha512-` and the first 64 hex digits. */
export const hashToKey = (digestHex: string): string => `sha512-${digestHex.slice(0, 64)}`;

/** rkt's treestore GetID: the tree of an image depends on the keys of its whole chain, upper first. */
export const treeStoreIdOf = (imageIds: readonly string[]): string =>
  `deps-${hashToKey(createHash('sha512').update(imageIds.join(',')).digest('hex'))}`;

export const TREE_STORE_ID = /^deps-sha512-[0-9a-f]{64}$/;

export type TreeState = 'absent' | 'ready' | 'unsynced-since-reboot';

/** Whether the tree (or layer) at `dir` is there, by its `rendered` file; costs one small read. */
export const renderedState = (dir: string): TreeState => {
  let rendered: string;
  try {
    rendered = readFileSync(join(dir, 'rendered'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
  return rendered === '' || rendered === bootId() ? 'ready' : 'unsynced-since-reboot';
};

export const treeState = (l: StoreLayout, treeStoreId: string): TreeState => renderedState(treeDir(l, treeStoreId));

/** Marks a tree (or layer) checked after a reboot as durable: its data was read back from disk. */
export const markDurable = (dir: string): void => {
  writeFileSync(join(dir, 'rendered'), '');
};

/** Marks what was just rendered at `dir`, unsynced, with this boot's id (see the module comment). */
export const markRendered = (dir: string): void => {
  writeFileSync(join(dir, 'rendered'), bootId());
};

/** A tree built in cas/tmp/, not yet in the tree store. */
export interface StagedTree {
  dir: string;
  hash: string;
  /** Bytes of regular-file data. */
  size: number;
  /** Of a stack of layers: their keys, top first. */
  layers?: string[];
}

/**
 * Writes `<dir>/rootfs` into the empty tree directory `dir` and hashes the tree: resolves to its bytes
 * of file data and its tree hash (which skips the files written at install, so it can be computed
 * before the image is known).
 */
export type Fill<T = object> = (dir: string) => Promise<T & { size: number; hash: string }>;

/**
 * Builds a tree in a fresh staging directory with `fill` (along with what else `fill` returns):
 * where the `renderTree` effect begins. Nothing is synced (see the module comment). On failure
 * nothing is left.
 */
export const stageTree = async <T>(l: StoreLayout, fill: Fill<T>): Promise<StagedTree & T> => {
  beginEffect('renderTree');
  const dir = scratch(l, 'tree');
  try {
    mkdirSync(dir, { mode: 0o700 });
    return { dir, ...(await fill(dir)) };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
};

/**
 * Stages the tree of an OCI image: the list of its layers (top first) that stage1 stacks, hashed over
 * the layers' own hashes. Where the `renderTree` effect begins for such a tree.
 */
export const stageStack = (l: StoreLayout, layers: ReadonlyArray<{ key: string; hash: string; size: number }>): StagedTree => {
  beginEffect('renderTree');
  const dir = scratch(l, 'tree');
  mkdirSync(dir, { mode: 0o700 });
  const top = [...layers].reverse();
  writeFileSync(join(dir, 'layers'), top.map((x) => `${x.key}\n`).join(''));
  const hash = hashToKey(createHash('sha512').update(top.map((x) => `${x.key} ${x.hash}\n`).join('')).digest('hex'));
  return { dir, hash, size: layers.reduce((n, x) => n + x.size, 0), layers: top.map((x) => x.key) };
};

/**
 * Writes a staged tree's manifest, hash, image and rendered files and renames it into the tree store:
 * where the `renderTree` effect is done. The caller holds the tree's lock and removed what was there.
 */
export const installTree = (l: StoreLayout, staged: StagedTree, treeStoreId: string, topImageId: string, manifestText: string): void => {
  if (!TREE_STORE_ID.test(treeStoreId)) throw new PodlogError('EINVAL', `${JSON.stringify(treeStoreId)} is not a tree store id`);
  writeFileSync(join(staged.dir, 'manifest'), manifestText);
  writeFileSync(join(staged.dir, 'hash'), staged.hash);
  writeFileSync(join(staged.dir, 'image'), topImageId);
  markRendered(staged.dir);
  mkdirSync(l.trees, { recursive: true, mode: 0o750 });
  // Not synced: a rename lost in a crash leaves the tree absent, and the next render makes it again.
  renameSync(staged.dir, treeDir(l, treeStoreId));
  effectDone('renderTree');
};

export const discardTree = (staged: StagedTree): void => rmSync(staged.dir, { recursive: true, force: true });

/** Removes a tree: gone from the store in one rename, then deleted. */
export const removeTree = (l: StoreLayout, treeStoreId: string): void =>
  rmSync(moveToScratch(l, [treeDir(l, treeStoreId)]), { recursive: true, force: true });
