/**
 * The image store: images content-addressed under cas/ and rendered once into the tree store, every
 * change recorded in the event log (src/events/images.ts), the index a projection of the log
 * (index-projection.ts).
 *
 * An import checks the whole image before anything is stored: the archive (layout, manifest, id) or
 * the OCI layout (every blob against its digest), and then its content, by rendering it (rkt renders
 * on fetch). Only then is it renamed into place and recorded, and its tree installed. A failure at any
 * point leaves no image and no tree, only what cas/tmp/ held, which is removed on the way out (or by
 * `image gc` after a kill). Imports and renders are idempotent: two processes importing one image
 * append one ImageImported (the loser's append finds the stream moved and reads the winner's record);
 * trees are installed and rendered under a per-tree lock, so one tree results. An OCI image imported
 * again under another name or version (a second tag) gains that name: ImageTagged (tagStored).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve as resolvePath } from 'node:path';
import { readConfig, type SizeLimits } from '../config-file.js';
import { crashPoint } from '../engine/faults.js';
import { isPodlogError, PodlogError } from '../errors.js';
import {
  IMAGE_EVENTS,
  IMAGE_STORE_SCOPE,
  imageStream,
  layerStream,
  treeStream,
  type ImageEventData,
  type ImageEventType,
} from '../events/images.js';
import { newMetadata, type CommandContext } from '../events/metadata.js';
import { extractLayers, importImage, readImage, renderImages, treeHash, type ChainImage } from '../native.js';
import { WrongExpectedVersion, type EventStore, type ExpectedVersion } from '../store/port.js';
import { scopedToHost } from '../store/scoped.js';
import { checkOsArch, label, parseImageManifest, type ImageManifest } from './aci-manifest.js';
import { dependencyChain, type ChainEntry } from './dependencies.js';
import { clearUnsynced, markUnsynced, unsyncedSinceReboot } from './durability.js';
import { beginEffect, effectDone } from './effects.js';
import { cachedImageId, fileIdentity, rememberImageId } from './file-cache.js';
import { catchUpImageIndex, sameName, type ImageIndex, type ImageRecord, type LayerRecord, type TreeRecord } from './index-projection.js';
import { chainKeys, installLayers, refuseDeepImages, stageLayers, type Layer } from './layer-store.js';
import { blobPath, layerBlobPath, layerDir, manifestPath, ociDir, storeLayout, treeDir, treeLockDir, type StoreLayout } from './layout.js';
import { withDirLock } from './locks.js';
import { archiveKind } from './oci-archive.js';
import { OciReader } from './oci-layout.js';
import { defaultFetchPolicy, type FetchPolicy } from './policy.js';
import { progressFor, readPosition, type Progress } from './progress.js';
import type { VerifyHook } from './registry/pull.js';
import { describeName, findById, findByName, guessRef, KEY_LENGTH } from './resolve.js';
import { scratch } from './scratch.js';
import {
  discardTree, installTree, markDurable, removeTree, renderedState, stageStack, stageTree, treeState, treeStoreIdOf, type Fill, type StagedTree,
} from './tree-store.js';

export interface RenderResult {
  treeStoreId: string;
  /** The tree's directory; `<path>/rootfs` is the rootfs. */
  path: string;
}

export interface ImportOptions {
  /** No progress bar, even on a terminal. */
  quiet?: boolean;
  /** What the event records as the image's source (default: the resolved path). */
  source?: string;
  /** The image id the content must have (`sha512-` and 64 or 128 hex digits), checked before it is stored. */
  expectedId?: string;
  /** Of an OCI layout: the image tagged so (`org.opencontainers.image.ref.name`). */
  tag?: string;
  /** Over the data dir's config.json: what the layers may unpack to (fetch's --max-*-size flags). */
  limits?: Partial<SizeLimits>;
  /** How a registry (`docker://`) may be reached, and with which credentials (default: defaultFetchPolicy()). */
  policy?: FetchPolicy;
  /** Of a registry pull: shown the chosen manifest before any blob is downloaded; refuses by throwing. */
  verify?: VerifyHook;
  /** What the event records as the image's name (default: its manifest's): a pull's HOST[:PORT]/NAME, which no appc name can spell. */
  name?: string;
}

export interface ImageStore {
  readonly layout: StoreLayout;
  /** The index, caught up with the log. */
  index(): Promise<ImageIndex>;
  /** Imports an ACI (any compression), an OCI layout directory or an OCI layout tar; idempotent. */
  importFile(path: string, options?: ImportOptions): Promise<ImageRecord>;
  /** A file path (imported first), an image id or id prefix, or `name[:version][,label=value]...`. */
  resolve(ref: string, options?: ImportOptions): Promise<ImageRecord>;
  /** Renders the image (with its dependencies) into the tree store once; later calls cost a lookup. */
  render(imageId: string): Promise<RenderResult>;
  manifest(imageId: string): Promise<ImageManifest>;
  /**
   * Writes the image's rootfs, as its pods see it, to `dest` (which must not exist): its tree copied
   * with reflinks where the file system has them, else copied (`cp -a`), or an OCI image's layers
   * applied. Says which.
   */
  copyRoot(imageId: string, dest: string): Promise<RootCopy>;
}

export type RootCopy = 'reflink' | 'copy' | 'layers';

/**
 * A failure on an image (of the addon, or of the file system under the store), restated for the user:
 * prefixed with the name they gave it, and with the store's internal paths (`[path, shown as]`)
 * replaced by what they stand for.
 */
export const about = (e: unknown, name: string, renames: Array<[string, string]> = []): unknown => {
  if (!(e instanceof Error)) return e;
  const code = isPodlogError(e) ? e.code : ((e as NodeJS.ErrnoException).code ?? 'EIO');
  const message = renames.reduce((m, [path, shown]) => m.replaceAll(path, shown), e.message);
  return new PodlogError(code, message.startsWith(`${name}: `) ? message : `${name}: ${message}`, { cause: e });
};

/** An OCI image's layer blobs, bottom first: shared ones, or its own copies (imported before layers were shared). */
export const ociLayerFiles = (l: StoreLayout, image: ImageRecord): string[] =>
  image.layers ? image.layers.map((x) => layerBlobPath(l, x.digest)) : layerFiles(ociDir(l, image.id));

const layerFiles = (dir: string): string[] =>
  readdirSync(join(dir, 'layers'))
    .sort((a, b) => Number(a) - Number(b))
    .map((n) => join(dir, 'layers', n));

/** An image checked and staged in cas/tmp/, with the tree that validated it. */
interface Staged {
  /** How the user named the image, for messages. */
  shown: string;
  data: ImageEventData['ImageImported'];
  manifestText: string;
  /** Renames the image's content to its place in the store. */
  place: () => void;
  /** The tree rendered to check the content; installed when it is the image's real tree. */
  tree: StagedTree;
  treeStoreId: string | undefined;
  /** Removes what `place` did not take. */
  cleanup: () => void;
  /** Done before the image is recorded: an OCI image's new layers installed and recorded. */
  before?: () => Promise<void>;
}

/** Import options with their defaults applied. */
export interface Settled {
  source: string;
  expectedId: string | undefined;
  progress: Progress;
  tag: string | undefined;
  /** Over the data dir's config.json (see `limits`). */
  limits?: Partial<SizeLimits>;
  name?: string;
}

/**
 * An image that is not the one asked for is refused before anything of it is stored (rkt's message);
 * a 128-digit id names an ACI's whole hash, which an OCI image (no `fullId`) never matches.
 */
export const checkExpected = (expected: string | undefined, key: string, fullId: string | undefined, shown: string): void => {
  if (expected === undefined) return;
  const actual = expected.length > KEY_LENGTH ? fullId ?? key : key;
  if (actual !== expected.toLowerCase()) throw new PodlogError('EDIGEST', `${shown}: image hash does not match expected (${actual} != ${expected})`);
};

const execFileAsync = promisify(execFile);

/** A Fill from what writes the rootfs (resolving to its bytes of file data), the tree hashed after. */
const hashed = (write: (rootfs: string) => Promise<number>): Fill => async (dir) => ({ size: await write(join(dir, 'rootfs')), hash: await treeHash(dir) });
const renderFill = (images: ChainImage[], limits?: SizeLimits): Fill => hashed(async (rootfs) => (await renderImages(images, rootfs, limits)).stats.bytes);
const layersFill = (layers: string[]): Fill => hashed(async (rootfs) => (await extractLayers(layers, rootfs)).bytes);

export class Store implements ImageStore {
  readonly layout: StoreLayout;

  /** The log as this host's image store sees it: its own streams and index on a log shared by hosts. */
  readonly events: EventStore;

  /** The host whose image store this is. */
  get hostId(): string {
    return this.ctx.hostId;
  }

  constructor(
    dataDir: string,
    events: EventStore,
    private readonly ctx: CommandContext,
  ) {
    this.layout = storeLayout(dataDir);
    this.events = scopedToHost(events, ctx.hostId, IMAGE_STORE_SCOPE);
  }

  index(): Promise<ImageIndex> {
    return catchUpImageIndex(this.events);
  }

  async append<T extends ImageEventType>(stream: string, type: T, data: ImageEventData[T], expected: ExpectedVersion = 'any'): Promise<void> {
    crashPoint(`before-outcome:${type}`);
    await this.events.append(stream, [{ type, schema: IMAGE_EVENTS[type].schema, data: data as unknown as Record<string, unknown>, meta: newMetadata(this.ctx) }], expected);
  }

  async importFile(path: string, options: ImportOptions = {}): Promise<ImageRecord> {
    const abs = resolvePath(path);
    let isDir: boolean;
    try {
      isDir = statSync(abs).isDirectory();
    } catch (e) {
      throw new PodlogError('ENOENT', `${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
    const l = this.layout;
    if (isDir) return this.importOci(abs, path, this.settle(options, abs));
    const before = fileIdentity(abs);
    // The cache remembers a file's one image: an ACI's (a layout tar holds one per tag).
    const cached = options.tag === undefined ? cachedImageId(l, abs) : undefined;
    const known = cached === undefined ? undefined : await this.stored(cached);
    if (known) {
      checkExpected(options.expectedId, known.id, undefined, path);
      return known;
    }
    // A private copy is checked and stored, never the user's file, which could change in between.
    const tmp = scratch(l, 'import');
    try {
      const record = await this.importArchive(abs, path, this.settle(options, abs), tmp);
      if (record.format === 'aci') rememberImageId(l, abs, record.id, before);
      return record;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private settle(options: ImportOptions, abs: string): Settled {
    return {
      source: options.source ?? abs, expectedId: options.expectedId, progress: progressFor(options.quiet ?? false), tag: options.tag, limits: options.limits, name: options.name,
    };
  }

  /**
   * Imports an OCI layout directory the store made itself (a pull's, in cas/tmp/), named `shown` in
   * messages; the blobs `verified` names were checked against their digests as they were written.
   */
  importLayout(dir: string, shown: string, options: ImportOptions, verified: ReadonlySet<string>): Promise<ImageRecord> {
    return this.importOci(dir, shown, this.settle(options, dir), verified);
  }

  /**
   * Imports an image file: a private copy in cas/tmp/ (a download), or, with `copyTo` (a new path in
   * cas/tmp/), a user's file, of which a private copy is made there and imported: an ACI's as the
   * import reads it, so that the archive is read once and what is stored is what was checked; an OCI
   * layout tar's first.
   */
  async importArchive(file: string, shown: string, options: Settled, copyTo?: string): Promise<ImageRecord> {
    if ((await archiveKind(file, shown)).format === 'oci') {
      if (copyTo === undefined) return this.importOciArchive(file, shown, options);
      await this.copyWithProgress(file, copyTo, options.progress);
      return this.importOciArchive(copyTo, shown, options);
    }
    if (options.tag !== undefined) throw new PodlogError('EUSAGE', `${shown}: an ACI has no tags (${JSON.stringify(options.tag)} chooses an image of an OCI layout)`);
    return this.importAci(file, shown, options, copyTo);
  }

  private async copyWithProgress(from: string, to: string, progress: Progress): Promise<void> {
    progress.start('copying', statSync(from).size);
    progress.poll(() => statSync(to).size);
    try {
      await copyFile(from, to);
    } finally {
      progress.done();
    }
  }

  /**
   * Checks an ACI (at `file`, copied to `copyTo` as it is read when given, see importArchive; `shown`
   * names it in messages) and stores it. One read of the archive checks it, hashes it and renders its
   * content, and the rendered tree is hashed as soon as it is complete (see the addon's importImage).
   * That render is the image's tree when the image needs nothing else (no dependencies, no
   * pathWhitelist); otherwise it only checked the content, and the tree is rendered on first use.
   */
  private async importAci(file: string, shown: string, { source, expectedId, progress, limits }: Settled, copyTo?: string): Promise<ImageRecord> {
    progress.start('checking and rendering', statSync(file).size);
    progress.poll(() => readPosition(file));
    const stored = copyTo ?? file;
    const renames: Array<[string, string]> = copyTo === undefined ? [[file, shown]] : [[file, shown], [copyTo, `the store's copy of ${shown}`]];
    const { image: info, ...tree } = await stageTree(this.layout, async (dir) => {
      const { image, stats, treeHash: hash } = await importImage(file, dir, copyTo, this.limits(limits));
      return { image, size: stats.bytes, hash };
    })
      .catch((e: unknown) => {
        throw about(e, shown, renames);
      })
      .finally(() => progress.done());
    let manifest: ImageManifest;
    try {
      checkExpected(expectedId, info.key, info.id, shown);
      manifest = parseImageManifest(info.manifest, shown);
    } catch (e) {
      discardTree(tree);
      throw e;
    }
    const alone = !manifest.dependencies?.length && !manifest.pathWhitelist?.length;
    return this.importStaged({
      shown,
      data: {
        id: info.key, format: 'aci', name: manifest.name, labels: manifest.labels ?? [], size: info.size, compression: info.compression, source,
        storedSize: statSync(stored).size, unpackedSize: info.size,
      },
      manifestText: info.manifest,
      place: () => renameSync(stored, blobPath(this.layout, info.key)),
      tree,
      treeStoreId: alone ? treeStoreIdOf([info.key]) : undefined,
      cleanup: () => {},
    });
  }

  /** An OCI layout tar: unpacked (safely, by the addon) into cas/tmp/, then imported as a layout. */
  private async importOciArchive(file: string, shown: string, options: Settled): Promise<ImageRecord> {
    const dir = scratch(this.layout, 'oci-archive');
    try {
      // The layout tar itself is bounded like a whole image (a gzipped one could be a bomb too).
      const { maxImageSize, maxRatio, ratioFloor } = this.limits(options.limits);
      await extractLayers([file], dir, { maxLayerSize: maxImageSize, maxRatio, ratioFloor }).catch((e: unknown) => {
        throw about(e, shown, [[file, shown]]);
      });
      return await this.importOci(dir, shown, options);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** An OCI layout: its blobs are read, checked and staged only when its image is not stored yet. */
  /** What layers may unpack to: the data dir's config.json, and over it the caller's `given`. */
  private limits(given: Partial<SizeLimits> = {}): SizeLimits {
    return { ...readConfig(this.layout.dataDir).images, ...given };
  }

  private async importOci(dir: string, shown: string, { source, expectedId, progress, tag, limits, name }: Settled, verified?: ReadonlySet<string>): Promise<ImageRecord> {
    const reader = new OciReader(dir, shown);
    const image = reader.read(tag);
    checkExpected(expectedId, image.id, undefined, shown);
    const known = await this.stored(image.id);
    const l = this.layout;
    const storedBlob = (digest: string): string | undefined => (existsSync(layerBlobPath(l, digest)) ? layerBlobPath(l, digest) : undefined);
    if (known) {
      // The name and version this layout gives it are its staging's: of the config, the layers being the store's.
      const stage = scratch(l, 'oci');
      try {
        const { manifest } = await reader.stage(image, stage, progress, storedBlob);
        return await this.tagStored(known, { name: name ?? manifest.name, version: label(manifest.labels, 'version'), source }, shown);
      } catch (e) {
        throw about(e, shown);
      } finally {
        rmSync(stage, { recursive: true, force: true });
      }
    }
    const stage = scratch(l, 'oci');
    let staged: Staged;
    try {
      const oci = await reader.stage(image, stage, progress, storedBlob, verified);
      refuseDeepImages(oci.layers.length, shown);
      const manifestText = JSON.stringify(oci.manifest);
      parseImageManifest(manifestText, shown);
      const keys = chainKeys(oci.layers.map((x) => x.digest));
      const layers: Layer[] = oci.layers.map((x, i) => ({ digest: x.digest, key: keys[i]!, blob: x.file }));
      progress.start('rendering');
      const { layers: known } = await this.index();
      const rendered = await stageLayers(l, join(stage, 'layers'), layers, (key) => this.usableLayer(key, known.get(key), false), this.limits(limits))
        .catch((e: unknown) => {
          throw about(e, shown, oci.layers.map((x): [string, string] => [x.file, x.digest]));
        })
        .finally(() => progress.done());
      const data: ImageEventData['ImageImported'] = {
        id: image.id, format: 'oci', name: name ?? oci.manifest.name, labels: oci.manifest.labels ?? [], size: oci.size, compression: 'oci', source,
        storedSize: oci.size, unpackedSize: rendered.all.reduce((n, x) => n + x.unpacked, 0), layers: layers.map(({ digest, key }) => ({ digest, key })),
      };
      staged = {
        shown,
        data,
        manifestText,
        before: () => this.installLayers(join(stage, 'layers'), rendered.fresh),
        place: () => {
          mkdirSync(l.layerBlobs, { recursive: true, mode: 0o750 });
          for (const x of oci.layers) {
            // A blob stored meanwhile by another import is the same bytes: ours is dropped.
            if (x.file.startsWith(stage) && !existsSync(layerBlobPath(l, x.digest))) renameSync(x.file, layerBlobPath(l, x.digest));
          }
          try {
            renameSync(join(stage, 'image'), ociDir(l, image.id));
          } catch (e) {
            // Stored meanwhile by another import (or left by one that died before recording it).
            if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
          }
        },
        tree: stageStack(l, rendered.all),
        treeStoreId: treeStoreIdOf([image.id]),
        cleanup: () => rmSync(stage, { recursive: true, force: true }),
      };
    } catch (e) {
      rmSync(stage, { recursive: true, force: true });
      throw about(e, shown);
    }
    return this.importStaged(staged);
  }

  /** Installs and records layers rendered in `dir` (see layer-store.ts). */
  private installLayers(dir: string, fresh: Parameters<typeof installLayers>[2]): Promise<void> {
    return installLayers(this.layout, dir, fresh, async (key) => (await this.index()).layers.get(key), (data) => this.append(layerStream(data.key), 'LayerRendered', data));
  }

  /**
   * The layer's `record` (from an index the caller read once) if the store holds it whole, usable as
   * a lower: present, not found damaged, and
   * (when it survived a reboot unsynced, or `verify` asks) matching its hash; a mismatch is recorded.
   */
  private async usableLayer(key: string, record: LayerRecord | undefined, verify: boolean): Promise<LayerRecord | undefined> {
    const dir = layerDir(this.layout, key);
    const state = renderedState(dir);
    if (!record || record.damaged || state === 'absent') return undefined;
    if (state === 'ready' && !verify) return record;
    const actual = await treeHash(dir);
    if (actual === record.hash) {
      markDurable(dir);
      return record;
    }
    await this.append(layerStream(key), 'LayerDamaged', { key, expected: record.hash, actual });
    return undefined;
  }

  /** Stores and records a staged image, then installs its tree; drops both if the image is there already. */
  private async importStaged(staged: Staged): Promise<ImageRecord> {
    const { id } = staged.data;
    try {
      await staged.before?.();
      const stream = imageStream(id);
      let record: ImageRecord | undefined;
      let ours = false;
      while (!(record = await this.stored(id))) {
        const expected = await this.events.streamVersion(stream);
        this.place(staged);
        try {
          await this.append(stream, 'ImageImported', staged.data, expected);
          ours = true;
        } catch (e) {
          // Another process recorded this image (or removed it) meanwhile: read what the log says now.
          if (!(e instanceof WrongExpectedVersion)) throw e;
        }
      }
      // Another import of the OCI image won, perhaps under another tag: this one's is recorded too.
      if (!ours && staged.data.format === 'oci') {
        record = await this.tagStored(record, { name: staged.data.name, version: label(staged.data.labels, 'version'), source: staged.data.source }, staged.shown);
      }
      if (staged.treeStoreId) await this.installStaged(staged.treeStoreId, staged.tree, record, staged.manifestText);
      return record;
    } catch (e) {
      throw about(e, staged.shown);
    } finally {
      discardTree(staged.tree);
      staged.cleanup();
    }
  }

  /**
   * An OCI import (a layout's, a pull's; `shown` names it) that found its image stored already: the
   * name and version it was fetched as are recorded as the image's (ImageTagged), unless they are its
   * newest name and resolve to it already, so that the name as fetched resolves to this image. The
   * image's other labels (os, arch) are its config's, the same for every name.
   */
  async tagStored(known: ImageRecord, fetched: { name: string; version: string | undefined; source: string }, shown: string): Promise<ImageRecord> {
    const labels = [...(fetched.version === undefined ? [] : [{ name: 'version', value: fetched.version }]), ...known.labels.filter((l) => l.name !== 'version')];
    const asked = { name: fetched.name, labels };
    const versionOnly = labels.filter((l) => l.name === 'version');
    if (sameName(known.names.at(-1)!, asked) && findByName(await this.index(), fetched.name, versionOnly)?.id === known.id) return known;
    await this.append(imageStream(known.id), 'ImageTagged', { id: known.id, ...asked, source: fetched.source });
    const record = await this.stored(known.id);
    if (!record) throw new PodlogError('ENOENT', `${shown}: image ${known.id} was removed while it was being fetched; fetch it again`);
    return record;
  }

  /** The `importImage` effect: the content and its manifest renamed into the store, each whole. */
  private place(staged: Staged): void {
    const l = this.layout;
    beginEffect('importImage');
    for (const dir of [l.blobs, l.manifests, l.oci]) mkdirSync(dir, { recursive: true, mode: 0o750 });
    staged.place();
    const mtmp = scratch(l, 'manifest');
    writeFileSync(mtmp, staged.manifestText);
    renameSync(mtmp, manifestPath(l, staged.data.id));
    markUnsynced(l, staged.data.id);
    effectDone('importImage');
  }

  /** The record of an image whose content is in the store. */
  private async stored(id: string): Promise<ImageRecord | undefined> {
    const record = (await this.index()).images.get(id);
    if (!record) return undefined;
    return existsSync(record.format === 'aci' ? blobPath(this.layout, id) : ociDir(this.layout, id)) ? record : undefined;
  }

  /** Installs the staged tree of an image alone, unless the store has it whole already. */
  private async installStaged(treeStoreId: string, tree: StagedTree, image: ImageRecord, manifestText: string): Promise<void> {
    await withDirLock(treeLockDir(this.layout, treeStoreId), false, async () => {
      const known = (await this.index()).trees.get(treeStoreId);
      if (known && !known.damaged && treeState(this.layout, treeStoreId) === 'ready') return;
      removeTree(this.layout, treeStoreId);
      installTree(this.layout, tree, treeStoreId, image.id, manifestText);
      await this.recordTree(treeStoreId, [image], tree, known !== undefined);
    });
  }

  private recordTree(treeStoreId: string, chain: ImageRecord[], tree: StagedTree, repair: boolean): Promise<void> {
    return this.append(treeStream(treeStoreId), 'TreeRendered', {
      treeStoreId, imageId: chain[0]!.id, images: chain.map((i) => i.id), hash: tree.hash, size: tree.size, repair, ...(tree.layers ? { layers: tree.layers } : {}),
    });
  }

  async resolve(ref: string, options: ImportOptions = {}): Promise<ImageRecord> {
    const r = guessRef(ref);
    switch (r.kind) {
      case 'id':
        return findById(await this.index(), r.id);
      // The modules that fetch and check images build on this one: loaded on demand.
      case 'path':
        return (await import('./trust/import.js')).importVerified(this, options.policy ?? defaultFetchPolicy(), r.path, r.tag === undefined ? options : { ...options, tag: r.tag });
      case 'url':
        return (await import('./fetch.js')).fetchUrl(this, r.url, options);
      case 'docker':
        return (await import('./trust/pull.js')).pullVerified(this, r.ref, options);
      case 'name': {
        const found = findByName(await this.index(), r.name, r.labels);
        if (!found) throw new PodlogError('ENOENT', `no image named ${JSON.stringify(describeName(r.name, r.labels))} in the store (import it with podlog fetch)`);
        return found;
      }
    }
  }

  async record(imageId: string): Promise<ImageRecord> {
    return findById(await this.index(), imageId);
  }

  private storedManifest(image: ImageRecord): ImageManifest {
    return parseImageManifest(readFileSync(manifestPath(this.layout, image.id), 'utf8'), image.id);
  }

  async manifest(imageId: string): Promise<ImageManifest> {
    return this.storedManifest(await this.record(imageId));
  }

  /** The images an image's tree is rendered from, upper first, and the tree's id. */
  async chain(image: ImageRecord): Promise<{ chain: ChainEntry[]; treeStoreId: string }> {
    const chain = dependencyChain(await this.index(), image, (i) => this.storedManifest(i));
    return { chain, treeStoreId: treeStoreIdOf(chain.map((c) => c.image.id)) };
  }

  async copyRoot(imageId: string, dest: string): Promise<RootCopy> {
    const image = await this.record(imageId);
    const { path } = await this.render(imageId);
    if (image.layers) {
      await extractLayers(ociLayerFiles(this.layout, image), dest).catch((e: unknown) => {
        throw about(e, `image ${image.id}`);
      });
      return 'layers';
    }
    const cp = (...flags: string[]) => execFileAsync('cp', ['-a', ...flags, '--no-target-directory', '--', join(path, 'rootfs'), dest]);
    try {
      await cp('--reflink=always');
      return 'reflink';
    } catch {
      // No reflinks on this file system: a plain copy.
      rmSync(dest, { recursive: true, force: true });
    }
    try {
      await cp();
    } catch (e) {
      rmSync(dest, { recursive: true, force: true });
      throw new PodlogError('EIO', `image ${image.id}: copying its tree to ${dest} failed: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
    }
    return 'copy';
  }

  /** Writes a chain's rootfs from the store: an OCI image's layers (imported before they were shared), or ACIs with their whitelists. */
  fill(chain: ChainEntry[]): Fill {
    const top = chain[0]!.image;
    if (top.format === 'oci') return layersFill(ociLayerFiles(this.layout, top));
    return renderFill(chain.map((c) => ({ path: blobPath(this.layout, c.image.id), pathWhitelist: c.manifest.pathWhitelist ?? [], level: c.level })));
  }

  async render(imageId: string): Promise<RenderResult> {
    const image = await this.record(imageId);
    const { chain, treeStoreId } = await this.chain(image);
    checkOsArch(chain[0]!.manifest, `image ${image.name} (${image.id})`);
    const result = { treeStoreId, path: treeDir(this.layout, treeStoreId) };
    const known = (await this.index()).trees.get(treeStoreId);
    if (known && !known.damaged && treeState(this.layout, treeStoreId) === 'ready') return result;
    await withDirLock(treeLockDir(this.layout, treeStoreId), false, async () => {
      await this.ensureTree(treeStoreId, chain, (await this.index()).trees.get(treeStoreId), false);
    });
    return result;
  }

  /**
   * With the tree's lock held: makes the tree whole and recorded. A tree the log does not know (its
   * renderer died before recording it), a damaged one, or one that survived a reboot unsynced and no
   * longer matches its hash is rendered again; `verify` checks the hash even of a ready tree.
   * Returns what it found.
   */
  async ensureTree(treeStoreId: string, chain: ChainEntry[], tree: TreeRecord | undefined, verify: boolean): Promise<'ok' | 'rendered' | 'repaired'> {
    const l = this.layout;
    if (chain[0]!.image.layers) return this.ensureStack(treeStoreId, chain[0]!.image, tree, verify);
    const state = treeState(l, treeStoreId);
    if (tree && !tree.damaged && state !== 'absent') {
      if (state === 'ready' && !verify) return 'ok';
      const actual = await treeHash(treeDir(l, treeStoreId));
      if (actual === tree.hash) {
        markDurable(treeDir(l, treeStoreId));
        return 'ok';
      }
      await this.append(treeStream(treeStoreId), 'TreeDamaged', { treeStoreId, expected: tree.hash, actual });
    }
    for (const c of chain) await this.checkContent(c.image);
    const top = chain[0]!;
    const staged = await stageTree(l, this.fill(chain)).catch((e: unknown) => {
      throw about(e, `image ${top.image.id}`);
    });
    try {
      removeTree(l, treeStoreId);
      installTree(l, staged, treeStoreId, top.image.id, readFileSync(manifestPath(l, top.image.id), 'utf8'));
    } finally {
      discardTree(staged);
    }
    await this.recordTree(treeStoreId, chain.map((c) => c.image), staged, tree !== undefined);
    return tree !== undefined ? 'repaired' : 'rendered';
  }

  /**
   * ensureTree for an OCI image whose layers are shared: each layer usable (hashed when `verify` asks),
   * those that are not rendered again over the others, and the tree (the list of the layers) written
   * again if it is missing, damaged or lists other layers.
   */
  private async ensureStack(treeStoreId: string, image: ImageRecord, tree: TreeRecord | undefined, verify: boolean): Promise<'ok' | 'rendered' | 'repaired'> {
    const l = this.layout;
    const layers: Layer[] = image.layers!.map((x) => ({ ...x, blob: layerBlobPath(l, x.digest) }));
    const usable = new Map<string, LayerRecord>();
    const { layers: known } = await this.index();
    for (const x of layers) {
      const record = await this.usableLayer(x.key, known.get(x.key), verify);
      if (record) usable.set(x.key, record);
    }
    const listed = layers.map((x) => `${x.key}\n`).reverse().join('');
    const state = treeState(l, treeStoreId);
    if (tree && !tree.damaged && state !== 'absent' && usable.size === layers.length) {
      if (state === 'ready' && !verify) return 'ok';
      const actual = readFileSync(join(treeDir(l, treeStoreId), 'layers'), 'utf8');
      if (actual === listed) {
        markDurable(treeDir(l, treeStoreId));
        return 'ok';
      }
      await this.append(treeStream(treeStoreId), 'TreeDamaged', { treeStoreId, expected: tree.hash, actual: `layers ${JSON.stringify(actual)}` });
    }
    await this.checkContent(image);
    const dir = scratch(l, 'layers');
    try {
      const staged = await stageLayers(l, dir, layers, async (key) => usable.get(key), this.limits());
      await this.installLayers(dir, staged.fresh);
      const stack = stageStack(l, staged.all);
      try {
        removeTree(l, treeStoreId);
        installTree(l, stack, treeStoreId, image.id, readFileSync(manifestPath(l, image.id), 'utf8'));
      } finally {
        discardTree(stack);
      }
      await this.recordTree(treeStoreId, [image], stack, tree !== undefined);
    } catch (e) {
      throw about(e, `image ${image.id}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return tree !== undefined ? 'repaired' : 'rendered';
  }

  /** An ACI stored in an earlier boot without a sync is hashed again before it is trusted. */
  private async checkContent(image: ImageRecord): Promise<void> {
    const l = this.layout;
    const where = image.format === 'aci' ? blobPath(l, image.id) : ociDir(l, image.id);
    const missing = [where, ...(image.layers ?? []).map((x) => layerBlobPath(l, x.digest))].find((p) => !existsSync(p));
    if (missing !== undefined) {
      throw new PodlogError('ENOENT', `image ${image.id}: its content is missing from the store (${missing}); fetch it again`);
    }
    if (image.format !== 'aci' || !unsyncedSinceReboot(l, image.id)) return;
    const info = await readImage(where).catch((e: unknown) => {
      throw about(e, `image ${image.id}`);
    });
    if (info.key !== image.id) {
      throw new PodlogError('EDAMAGED', `image ${image.id}: the stored image no longer matches its id (it hashes to ${info.key}); remove it and fetch it again`);
    }
    clearUnsynced(l, image.id);
  }
}

export const openImageStore = (dataDir: string, events: EventStore, ctx: CommandContext): ImageStore => new Store(dataDir, events, ctx);
