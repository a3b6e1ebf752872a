/**
 * Where the image store keeps things under the data dir (rkt's cas/ layout, rkt-semantics §1.1, §4):
 *
 *   cas/blob/<id>               an ACI exactly as imported (any compression): content-addressed, immutable
 *   cas/imageManifest/<id>      its manifest (a copy of the one inside the blob, read without decompressing)
 *   cas/oci/<id>/               an OCI image: manifest.json (and, if imported before layers were shared, layers/)
 *   cas/layer-blob/<alg>-<hex>  an OCI layer blob, stored once for every image that has it
 *   cas/layers/<key>/           a layer rendered once in overlayfs's form (rootfs/, rendered), keyed by its chain
 *   cas/tree/<treeStoreId>/     a rendered tree (rootfs/) or a stack of layers (layers), manifest, hash, image, rendered
 *   cas/tmp/                    staging: everything is written here first, then renamed into place
 *   cas/partial/<alg>-<hex>     a registry blob being downloaded, kept by its digest to be resumed after an interruption
 *   cas/locks/tree-<id>/        one lock directory per tree (render, repair and removal exclude each other)
 *   cas/locks/layer-<key>/      one per layer, likewise
 *   cas/locks/partial-<alg>-<hex>/  one per registry blob being downloaded (removed by image gc once its partial is gone)
 *   cas/files/<sha256(path)>    which image a file path held at a given (dev, inode, size, mtime, ctime)
 *   locks/prepare/              rkt's prepareLock: prepare and fetch take it shared, image gc exclusive
 *
 * Every name derived from user input is an id or a digest checked by a regular expression first.
 */
import { join } from 'node:path';

export interface StoreLayout {
  dataDir: string;
  cas: string;
  blobs: string;
  manifests: string;
  oci: string;
  layerBlobs: string;
  layers: string;
  trees: string;
  tmp: string;
  partial: string;
  locks: string;
  files: string;
  prepareLock: string;
}

export const storeLayout = (dataDir: string): StoreLayout => {
  const cas = join(dataDir, 'cas');
  return {
    dataDir,
    cas,
    blobs: join(cas, 'blob'),
    manifests: join(cas, 'imageManifest'),
    oci: join(cas, 'oci'),
    layerBlobs: join(cas, 'layer-blob'),
    layers: join(cas, 'layers'),
    trees: join(cas, 'tree'),
    tmp: join(cas, 'tmp'),
    partial: join(cas, 'partial'),
    locks: join(cas, 'locks'),
    files: join(cas, 'files'),
    prepareLock: join(dataDir, 'locks', 'prepare'),
  };
};

export const blobPath = (l: StoreLayout, id: string): string => join(l.blobs, id);
export const manifestPath = (l: StoreLayout, id: string): string => join(l.manifests, id);
export const ociDir = (l: StoreLayout, id: string): string => join(l.oci, id);
export const treeDir = (l: StoreLayout, treeStoreId: string): string => join(l.trees, treeStoreId);
export const treeLockDir = (l: StoreLayout, treeStoreId: string): string => join(l.locks, `tree-${treeStoreId}`);
/** A layer blob's file: its OCI digest (`sha256:<hex>`, checked by the reader) with `-` for `:`. */
export const layerBlobPath = (l: StoreLayout, digest: string): string => join(l.layerBlobs, digest.replace(':', '-'));
/** A registry blob's partial download: its digest (checked by the puller) with `-` for `:`. */
export const partialPath = (l: StoreLayout, digest: string): string => join(l.partial, digest.replace(':', '-'));
/** What names a partial download's lock: `partial-` and its file's name. */
export const PARTIAL_LOCK = 'partial-';
export const partialLockDir = (l: StoreLayout, digest: string): string => join(l.locks, `${PARTIAL_LOCK}${digest.replace(':', '-')}`);
export const layerDir = (l: StoreLayout, key: string): string => join(l.layers, key);
export const layerLockDir = (l: StoreLayout, key: string): string => join(l.locks, `layer-${key}`);
