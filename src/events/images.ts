/**
 * The catalogue of the image store's events. Every change to the store (an image imported or removed,
 * a tree rendered, found damaged or removed) is recorded in the log, one stream per image
 * (`image-<id>`) and one per tree (`tree-<treeStoreId>`), so `podlog events` shows the store's history
 * and the image index is a projection of it (src/images/index-projection.ts).
 */
import { checkEvent, type CatalogueEntry } from './catalogue.js';

export interface ImageLabel {
  name: string;
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
};

export interface ImageEventData {
  ImageImported: ImageImportedData;
  ImageRemoved: { id: string; reason: 'rm' | 'gc' };
  TreeRendered: TreeRenderedData;
  TreeDamaged: { treeStoreId: string; expected: string; actual: string };
  TreeRemoved: { treeStoreId: string; reason: 'gc' };
}

export type ImageEventType = keyof ImageEventData;

export const IMAGE_STREAM_PREFIX = 'image-';
export const TREE_STREAM_PREFIX = 'tree-';
export const imageStream = (id: string): string => `${IMAGE_STREAM_PREFIX}${id}`;
export const treeStream = (treeStoreId: string): string => `${TREE_STREAM_PREFIX}${treeStoreId}`;


export const IMAGE_EVENTS: { readonly [T in ImageEventType]: CatalogueEntry } = {
  ImageImported: {
    // Schema 2 adds storedSize and unpackedSize; a schema-1 event has only `size` (index-projection.ts).
    kind: 'outcome', schema: 2,
    fields: { id: 'string', format: 'string', name: 'string', labels: 'object', size: 'number', compression: 'string', source: 'string' },
    summary: 'an image was checked and stored under its id (rkt: fetch)',
  },
  ImageRemoved: { kind: 'outcome', schema: 1, fields: { id: 'string', reason: 'string' }, summary: 'an image left the store (image rm or gc)' },
  TreeRendered: {
    kind: 'outcome', schema: 1,
    fields: { treeStoreId: 'string', imageId: 'string', images: 'object', hash: 'string', size: 'number', repair: 'boolean' },
    summary: 'an image and its dependencies were rendered into the tree store',
  },
  TreeDamaged: {
    kind: 'observation', schema: 1, fields: { treeStoreId: 'string', expected: 'string', actual: 'string' },
    summary: "a tree's hash no longer matches the one recorded when it was rendered",
  },
  TreeRemoved: { kind: 'outcome', schema: 1, fields: { treeStoreId: 'string', reason: 'string' }, summary: 'a tree left the tree store (image gc)' },
};

export const isImageEventType = (type: string): type is ImageEventType => Object.hasOwn(IMAGE_EVENTS, type);

/** Checks that a recorded image event is one this code knows, at a schema it reads, with its fields. */
export const checkImageEvent = (type: string, schema: number, data: Record<string, unknown>, where: string): ImageEventType =>
  checkEvent(IMAGE_EVENTS, 'image', { type, schema, data }, where);
