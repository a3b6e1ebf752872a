/**
 * The catalogue of the image store's events. Every change to the store (an image imported or removed,
 * a tree rendered, found damaged or removed), and who vouched for each image fetched, is recorded in the log, one stream per image
 * (`image-<id>`) and one per tree (`tree-<treeStoreId>`), so `podlog events` shows the store's history
 * and the image index is a projection of it (src/images/index-projection.ts).
 */
import type { ScopeRules } from '../store/scoped.js';
import { checkEvent, type CatalogueEntry } from './catalogue.js';

/** An image label (appc: name and value, e.g. version=1.36). */
export interface ImageLabel {
  /** The label's name, an AC identifier (`version`, `os`, `arch`, …). */
  name: string;
  /** Its value, any string. */
  value: string;
}

/**
 * What an image import records: the image's id and what the store knows of it. (Event data are type
 * aliases, not interfaces, so that they stay assignable to the store's `Record<string, unknown>`.)
 */
export type ImageImportedData = {
  /** rkt's image key, `sha512-<64 hex>`: the id podlog shows and resolves. */
  id: string;
  /** What the id is a digest of: the uncompressed ACI tar, or the OCI image manifest. */
  format: 'aci' | 'oci';
  name: string;
  labels: ImageLabel[];
  /** Bytes of the uncompressed ACI tar, or of the OCI layers as stored (schema 1's one size). */
  size: number;
  /** Since schema 2: bytes the image takes in cas/ (the ACI as imported, compressed; the OCI layers). */
  storedSize?: number;
  /** Since schema 2: bytes of uncompressed tar (the ACI's, or the OCI layers' together): what the
   * size limits of src/config-file.ts count. */
  unpackedSize?: number;
  /** The ACI's compression ("none", "gzip", …) or, for OCI, "oci". */
  compression: string;
  /** Where it came from: a file path, a directory, or a URL. */
  source: string;
  /** Since schema 3, of an OCI image: its layers, bottom first, each stored and rendered once for
   * every image that has it (src/images/layer-store.ts). Absent: its layers are in cas/oci/<id>/layers/. */
  layers?: ImageLayer[];
};

/** A layer of an OCI image: its blob's digest and the key of its chain (it and every layer below it). */
export type ImageLayer = { digest: string; key: string };

/** What a layer's rendering records. */
export type LayerRenderedData = {
  key: string;
  /** Its blob's digest. */
  digest: string;
  /** The key of the layer it was rendered over (absent for a bottom layer). */
  parent?: string;
  /** rkt's tree hash of the layer's directory. */
  hash: string;
  /** Bytes of regular-file data in it. */
  size: number;
  /** Bytes of uncompressed tar it unpacked from (what the size limits count). */
  unpacked: number;
  /** Rendered again because it was found damaged or missing. */
  repair: boolean;
};

/** What a rendering records: the tree, the images in it and its hash. */
export type TreeRenderedData = {
  treeStoreId: string;
  /** The top image. */
  imageId: string;
  /** The images rendered, upper first (the top image, then its dependencies). */
  images: string[];
  /** rkt's tree hash of the rendered tree. */
  hash: string;
  /** Bytes of regular-file data in the tree. */
  size: number;
  /** Rendered again because the tree was found damaged. */
  repair: boolean;
  /** Since schema 2: the tree is this stack of layers (keys, top first), not a rendered rootfs. */
  layers?: string[];
};

/**
 * Who vouched for an image at a fetch: the trusted key whose signature matched (`prefix` what it is
 * trusted for, '' for every image), or why nothing was checked (src/images/trust/verify.ts).
 */
export type ImageVerdict =
  | { verified: true; kind: 'aci-signature' | 'simple-signing'; fingerprint: string; prefix: string }
  | { verified: false; skipped: 'insecure-options' | 'no-trusted-keys' };

/** `source`: where the image was fetched from, as its ImageImported records it. */
export type ImageVerifiedData = { id: string; source: string } & ImageVerdict;

/**
 * An import that found its image stored already under another name or version (a second tag of one
 * manifest, in a layout or a registry): the image is known by this name too, from `source`. Its
 * labels are the stored image's with this import's version.
 */
export type ImageTaggedData = { id: string; name: string; labels: ImageLabel[]; source: string };

export interface ImageEventData {
  ImageImported: ImageImportedData;
  ImageTagged: ImageTaggedData;
  ImageRemoved: { id: string; reason: 'rm' | 'gc' };
  ImageVerified: ImageVerifiedData;
  TreeRendered: TreeRenderedData;
  TreeDamaged: { treeStoreId: string; expected: string; actual: string };
  TreeRemoved: { treeStoreId: string; reason: 'gc' };
  LayerRendered: LayerRenderedData;
  LayerDamaged: { key: string; expected: string; actual: string };
  LayerRemoved: { key: string; reason: 'gc' };
}

export type ImageEventType = keyof ImageEventData;

export const IMAGE_STREAM_PREFIX = 'image-';
export const TREE_STREAM_PREFIX = 'tree-';
export const LAYER_STREAM_PREFIX = 'layer-';
export const imageStream = (id: string): string => `${IMAGE_STREAM_PREFIX}${id}`;
export const treeStream = (treeStoreId: string): string => `${TREE_STREAM_PREFIX}${treeStoreId}`;
export const layerStream = (key: string): string => `${LAYER_STREAM_PREFIX}${key}`;

/** The image index projection (src/images/index-projection.ts). */
export const IMAGE_INDEX = 'images';

/**
 * What of the log is one host's image store: its files are on that host's disk, so on a log shared by
 * hosts its streams and index are kept under the host's scope (src/store/scoped.ts).
 */
export const IMAGE_STORE_SCOPE: ScopeRules = { streamPrefixes: [IMAGE_STREAM_PREFIX, TREE_STREAM_PREFIX, LAYER_STREAM_PREFIX], projections: [IMAGE_INDEX] };


export const IMAGE_EVENTS: { readonly [T in ImageEventType]: CatalogueEntry } = {
  ImageImported: {
    // Schema 2 adds storedSize and unpackedSize; a schema-1 event has only `size` (index-projection.ts).
    // Schema 3 adds an OCI image's shared layers.
    kind: 'outcome', schema: 3,
    fields: { id: 'string', format: 'string', name: 'string', labels: 'object', size: 'number', compression: 'string', source: 'string' },
    summary: 'an image was checked and stored under its id (rkt: fetch)',
  },
  ImageTagged: {
    kind: 'outcome', schema: 1, fields: { id: 'string', name: 'string', labels: 'object', source: 'string' },
    summary: 'a stored image was fetched under another name or version, which now resolves to it too (rkt: fetch)',
  },
  ImageRemoved: { kind: 'outcome', schema: 1, fields: { id: 'string', reason: 'string' }, summary: 'an image left the store (image rm or gc)' },
  ImageVerified: {
    kind: 'observation', schema: 1, fields: { id: 'string', source: 'string', verified: 'boolean' },
    summary: "a fetched image's signature was checked: the trusted key that vouched for it, or why nothing was checked",
  },
  TreeRendered: {
    // Schema 2 adds `layers`, for a tree that is a stack of layers.
    kind: 'outcome', schema: 2,
    fields: { treeStoreId: 'string', imageId: 'string', images: 'object', hash: 'string', size: 'number', repair: 'boolean' },
    summary: 'an image and its dependencies were rendered into the tree store',
  },
  TreeDamaged: {
    kind: 'observation', schema: 1, fields: { treeStoreId: 'string', expected: 'string', actual: 'string' },
    summary: "a tree's hash no longer matches the one recorded when it was rendered",
  },
  TreeRemoved: { kind: 'outcome', schema: 1, fields: { treeStoreId: 'string', reason: 'string' }, summary: 'a tree left the tree store (image gc)' },
  LayerRendered: {
    kind: 'outcome', schema: 1,
    fields: { key: 'string', digest: 'string', hash: 'string', size: 'number', unpacked: 'number', repair: 'boolean' },
    summary: 'an OCI layer was rendered once, over the layers below it, for every image that has it',
  },
  LayerDamaged: {
    kind: 'observation', schema: 1, fields: { key: 'string', expected: 'string', actual: 'string' },
    summary: "a layer's hash no longer matches the one recorded when it was rendered",
  },
  LayerRemoved: { kind: 'outcome', schema: 1, fields: { key: 'string', reason: 'string' }, summary: 'a layer no image or tree uses left the store (image gc)' },
};

export const isImageEventType = (type: string): type is ImageEventType => Object.hasOwn(IMAGE_EVENTS, type);

/** Checks that a recorded image event is one this code knows, at a schema it reads, with its fields. */
export const checkImageEvent = (type: string, schema: number, data: Record<string, unknown>, where: string): ImageEventType =>
  checkEvent(IMAGE_EVENTS, 'image', { type, schema, data }, where);
