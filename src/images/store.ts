/**
 * The image store: images content-addressed under cas/ and rendered once into the tree store, every
 * change recorded in the event log (src/events/images.ts), the index a projection of the log
 * (index-projection.ts).
 *
 * Every write goes to cas/tmp/ first and is renamed into place complete, and its event is appended
 * only once it is in place, so a failure or a kill at any point leaves no partial image or tree behind
 * (at most a staging entry in cas/tmp/, which `image gc` removes). Imports and renders are idempotent:
 * two processes importing one image append one ImageImported (the second append finds the stream
 * moved and reads the first one's record); two renders of one tree serialise on the tree's lock.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { isPodlogError, PodlogError } from '../errors.js';
import { imageStream, treeStream, type ImageEventData, type ImageEventType } from '../events/images.js';
import { newMetadata, type CommandContext } from '../events/metadata.js';
import { extractImage, readImage, treeHash } from '../native.js';
import { WrongExpectedVersion, type EventStore, type ExpectedVersion } from '../store/port.js';
import { checkOsArch, parseImageManifest, type ImageManifest } from './aci-manifest.js';
import { markDurableImage, markUnsynced, unsyncedSinceReboot } from './durability.js';
import { cachedImageId, fileIdentity, rememberImageId } from './file-cache.js';
import { catchUpImageIndex, type ImageIndex, type ImageRecord, type TreeRecord } from './index-projection.js';
import { blobPath, manifestPath, storeLayout, treeDir, treeLockDir, type StoreLayout } from './layout.js';
import { withDirLock } from './locks.js';
import { describeName, findById, findByName, guessRef } from './resolve.js';
import { buildTree, markDurable, removeTree, treeState, treeStoreIdOf } from './tree-store.js';

export interface RenderResult {
  treeStoreId: string;
  /** The tree's directory; `<path>/rootfs` is the rootfs. */
  path: string;
}

export interface ImportOptions {
  /** No progress output even on a terminal. */
  quiet?: boolean;
}

export interface ImageStore {
  readonly layout: StoreLayout;
  /** The index, caught up with the log. */
  index(): Promise<ImageIndex>;
  /** Imports an ACI file (any compression); idempotent: the same image is stored once. */
  importFile(path: string, options?: ImportOptions): Promise<ImageRecord>;
  /** A file path (imported first), an image id or id prefix, or `name[:version][,label=value]...`. */
  resolve(ref: string, options?: ImportOptions): Promise<ImageRecord>;
  /** Renders the image (with its dependencies) into the tree store once; later calls cost a lookup. */
  render(imageId: string): Promise<RenderResult>;
  manifest(imageId: string): Promise<ImageManifest>;
}

/** A failure of the addon on a file, restated with the name the user gave it. */
const about = (e: unknown, name: string, internalPath?: string): unknown => {
  if (!isPodlogError(e)) return e;
  const message = internalPath ? e.message.replaceAll(internalPath, name) : e.message;
  return new PodlogError(e.code, `${name}: ${message}`, { cause: e });
};

const scratch = (l: StoreLayout, what: string): string => {
  mkdirSync(l.tmp, { recursive: true, mode: 0o700 });
  return `${l.tmp}/${what}-${process.pid}-${randomBytes(4).toString('hex')}`;
};

class Store implements ImageStore {
  readonly layout: StoreLayout;

  constructor(
    dataDir: string,
    private readonly events: EventStore,
    private readonly ctx: CommandContext,
  ) {
    this.layout = storeLayout(dataDir);
  }

  index(): Promise<ImageIndex> {
    return catchUpImageIndex(this.events);
  }

  private async append<T extends ImageEventType>(stream: string, type: T, data: ImageEventData[T], expected: ExpectedVersion): Promise<void> {
    await this.events.append(stream, [{ type, schema: 1, data: data as unknown as Record<string, unknown>, meta: newMetadata(this.ctx) }], expected);
  }

  async importFile(path: string, _options: ImportOptions = {}): Promise<ImageRecord> {
    const abs = resolvePath(path);
    let isDir: boolean;
    try {
      isDir = statSync(abs).isDirectory();
    } catch (e) {
      throw new PodlogError('ENOENT', `${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    if (isDir) throw new PodlogError('EBADLAYOUT', `${path} is a directory, not an image file`);
    const l = this.layout;
    const before = fileIdentity(abs);
    const cached = cachedImageId(l, abs);
    if (cached) {
      const known = (await this.index()).images.get(cached);
      if (known && existsSync(blobPath(l, cached))) return known;
    }
    // Hash and check a private copy, not the user's file, which could change between check and store.
    const tmp = scratch(l, 'import');
    try {
      await copyFile(abs, tmp);
      const info = await readImage(tmp).catch((e: unknown) => {
        throw about(e, path, tmp);
      });
      const manifest = parseImageManifest(info.manifest, path);
      const record = await this.commit(info.key, info.manifest, () => renameSync(tmp, blobPath(l, info.key)), {
        id: info.key,
        format: 'aci',
        name: manifest.name,
        labels: manifest.labels ?? [],
        size: info.size,
        compression: info.compression,
        source: abs,
      });
      rememberImageId(l, abs, record.id, before);
      return record;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Puts a checked image in place (`place` renames its content under its id) and records it, unless
   * it is there already: then the existing record is returned and the new copy dropped.
   */
  private async commit(id: string, manifestText: string, place: () => void, data: ImageEventData['ImageImported']): Promise<ImageRecord> {
    const l = this.layout;
    const stream = imageStream(id);
    for (;;) {
      const existing = (await this.index()).images.get(id);
      if (existing) return existing;
      const expected = await this.events.streamVersion(stream);
      mkdirSync(l.blobs, { recursive: true, mode: 0o750 });
      mkdirSync(l.manifests, { recursive: true, mode: 0o750 });
      place();
      const mtmp = scratch(l, 'manifest');
      writeFileSync(mtmp, manifestText);
      renameSync(mtmp, manifestPath(l, id));
      markUnsynced(l, id);
      try {
        await this.append(stream, 'ImageImported', data, expected);
      } catch (e) {
        // Another process recorded this image (or removed it) meanwhile: read what the log says now.
        if (!(e instanceof WrongExpectedVersion)) throw e;
      }
    }
  }

  async resolve(ref: string, options: ImportOptions = {}): Promise<ImageRecord> {
    const r = guessRef(ref);
    switch (r.kind) {
      case 'id':
        return findById(await this.index(), r.id);
      case 'path':
        return this.importFile(r.path, options);
      case 'url':
        throw new PodlogError('EUSAGE', `${ref}: fetch a URL with podlog fetch first`);
      case 'name': {
        const found = findByName(await this.index(), r.name, r.labels);
        if (!found) throw new PodlogError('ENOENT', `no image named ${JSON.stringify(describeName(r.name, r.labels))} in the store (import it with podlog fetch)`);
        return found;
      }
    }
  }

  private async record(imageId: string): Promise<ImageRecord> {
    return findById(await this.index(), imageId);
  }

  async manifest(imageId: string): Promise<ImageManifest> {
    const image = await this.record(imageId);
    return parseImageManifest(readFileSync(manifestPath(this.layout, image.id), 'utf8'), image.id);
  }

  /** The images a tree is rendered from, upper first: the image, then its dependencies. */
  private async chain(image: ImageRecord, manifest: ImageManifest): Promise<ImageRecord[]> {
    if (manifest.dependencies?.length) {
      throw new PodlogError('ENOTSUP', `image ${image.id}: dependencies are not supported yet`);
    }
    return [image];
  }

  async render(imageId: string): Promise<RenderResult> {
    const image = await this.record(imageId);
    const manifest = await this.manifest(image.id);
    checkOsArch(manifest, `image ${image.name} (${image.id})`);
    const chain = await this.chain(image, manifest);
    const treeStoreId = treeStoreIdOf(chain.map((i) => i.id));
    const result = { treeStoreId, path: treeDir(this.layout, treeStoreId) };
    const known = (await this.index()).trees.get(treeStoreId);
    if (known && !known.damaged && treeState(this.layout, treeStoreId) === 'ready') return result;
    await withDirLock(treeLockDir(this.layout, treeStoreId), false, async () => {
      const tree = (await this.index()).trees.get(treeStoreId);
      await this.ensureTree(treeStoreId, chain, readFileSync(manifestPath(this.layout, image.id), 'utf8'), tree);
    });
    return result;
  }

  /**
   * With the tree's lock held: makes the tree whole and recorded. A tree on disk that the log does not
   * know (its renderer died before recording it) or that is damaged is rendered again.
   */
  private async ensureTree(treeStoreId: string, chain: ImageRecord[], manifestText: string, tree: TreeRecord | undefined): Promise<void> {
    const l = this.layout;
    const stream = treeStream(treeStoreId);
    const state = treeState(l, treeStoreId);
    if (tree && !tree.damaged && state === 'ready') return;
    if (tree && !tree.damaged && state === 'unsynced-since-reboot') {
      const actual = await treeHash(treeDir(l, treeStoreId));
      if (actual === tree.hash) {
        markDurable(l, treeStoreId);
        return;
      }
      await this.append(stream, 'TreeDamaged', { treeStoreId, expected: tree.hash, actual }, 'any');
    }
    removeTree(l, treeStoreId);
    for (const image of chain) await this.checkBlob(image);
    const top = chain[0]!;
    const { hash, size } = await buildTree(l, treeStoreId, top.id, manifestText, async (rootfs) => {
      const { stats } = await extractImage(blobPath(l, top.id), rootfs).catch((e: unknown) => {
        throw about(e, `image ${top.id}`);
      });
      return stats.bytes;
    });
    await this.append(stream, 'TreeRendered', { treeStoreId, imageId: top.id, images: chain.map((i) => i.id), hash, size, repair: tree !== undefined }, 'any');
  }

  /** A blob stored in an earlier boot without a sync is hashed again before it is trusted. */
  private async checkBlob(image: ImageRecord): Promise<void> {
    const l = this.layout;
    if (!existsSync(blobPath(l, image.id))) {
      throw new PodlogError('ENOENT', `image ${image.id}: its content is missing from the store (${blobPath(l, image.id)}); fetch it again`);
    }
    if (!unsyncedSinceReboot(l, image.id)) return;
    const info = await readImage(blobPath(l, image.id)).catch((e: unknown) => {
      throw about(e, `image ${image.id}`);
    });
    if (info.key !== image.id) {
      throw new PodlogError('EDAMAGED', `image ${image.id}: the stored image no longer matches its id (it hashes to ${info.key}); remove it and fetch it again`);
    }
    markDurableImage(l, image.id);
  }
}

export const openImageStore = (dataDir: string, events: EventStore, ctx: CommandContext): ImageStore => new Store(dataDir, events, ctx);
