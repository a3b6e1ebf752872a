/**
 * The image index: the images, trees and layers in the store, folded from the log's image, tree and layer streams
 * into the store's projection facility (projection `images`), kept incrementally with a checkpoint like
 * the pod list. The log is the source of truth for what the store holds; these rows are derived and
 * can be rebuilt from it at any time (a different SCHEMA rebuilds them). The content itself lives in
 * cas/ under content-addressed names (layout.ts).
 *
 * An image's last use is derived too: it is the time of the last pod event `ImageRendered` naming it,
 * so `run` records no extra event to keep it.
 */
import {
  checkImageEvent,
  IMAGE_EVENTS,
  IMAGE_INDEX,
  IMAGE_STREAM_PREFIX,
  LAYER_STREAM_PREFIX,
  TREE_STREAM_PREFIX,
  type ImageEventData,
  type ImageImportedData,
  type ImageLabel,
  type ImageTaggedData,
  type ImageVerdict,
  type ImageVerifiedData,
  type LayerRenderedData,
  type TreeRenderedData,
} from '../events/images.js';
import type { EventStore, RecordedEvent } from '../store/port.js';
import { label } from './aci-manifest.js';

/** A name an image was imported or tagged under, with its labels (a version among them), from `source`. */
export interface ImageName {
  name: string;
  labels: ImageLabel[];
  source: string;
  /** Global position of the import or ImageTagged in the log: the newest of a name wins (rkt's `latest`). */
  position: number;
}

/**
 * An image in the store: what its import recorded, and when; `name`, `labels` and `source` are those
 * of its newest name (the import's until an ImageTagged).
 */
export interface ImageRecord extends ImageImportedData {
  importedAt: string;
  /** Global position of the import in the log. */
  position: number;
  /** Every name it has, oldest first: its import's, then each ImageTagged's (a name tagged again moves last). */
  names: ImageName[];
  lastUsedAt?: string;
  /** Its last fetch's signature check (ImageVerified): who vouched for it, or why nothing was checked. */
  verification?: ImageVerdict;
}

/** A rendered tree: what its last rendering recorded (but whether it was a repair), and when. */
export interface TreeRecord extends Omit<TreeRenderedData, 'repair'> {
  renderedAt: string;
  /** Set by a TreeDamaged event, cleared by the repair's TreeRendered. */
  damaged?: boolean;
}

/** A rendered layer: what its last rendering recorded (but whether it was a repair), and when. */
export interface LayerRecord extends Omit<LayerRenderedData, 'repair'> {
  renderedAt: string;
  /** Set by a LayerDamaged event, cleared by the repair's LayerRendered. */
  damaged?: boolean;
}

type Row = { kind: 'image'; image: ImageRecord } | { kind: 'tree'; tree: TreeRecord } | { kind: 'layer'; layer: LayerRecord };

export interface ImageIndex {
  images: Map<string, ImageRecord>;
  trees: Map<string, TreeRecord>;
  layers: Map<string, LayerRecord>;
}

const SCHEMA = 'images-v4';
const BATCH = 5000;
/** The events the index is made of: the image store's own, and the pod event that is an image's use. */
const INDEXED_TYPES = [...Object.keys(IMAGE_EVENTS), 'ImageRendered'];
/**
 * How far the saved checkpoint may lag the head of the log when the image store's own streams did not
 * change: a save is a commit (an fsync), and most catch-ups (every `run`'s) find only pod events; but
 * each catch-up scans the events after the checkpoint (about 0.5 ms a thousand), so the lag is short.
 */
const MAX_LAG = 1_000;

const imageKey = (id: string): string => `image:${id}`;
const treeKey = (id: string): string => `tree:${id}`;
const layerKey = (key: string): string => `layer:${key}`;

/** One name and version (what `run NAME:VERSION` asks for); the other labels are the image's own. */
export const sameName = (a: { name: string; labels: readonly ImageLabel[] }, b: { name: string; labels: readonly ImageLabel[] }): boolean =>
  a.name === b.name && label(a.labels, 'version') === label(b.labels, 'version');

const isImageStoreEvent = (e: RecordedEvent): boolean => [IMAGE_STREAM_PREFIX, TREE_STREAM_PREFIX, LAYER_STREAM_PREFIX].some((p) => e.stream.startsWith(p));

/** Applies one event to the rows; returns the keys it changed (undefined row = deleted). */
const apply = (rows: Map<string, Row>, e: RecordedEvent, changed: Map<string, Row | undefined>): void => {
  const set = (key: string, row: Row | undefined): void => {
    if (row) rows.set(key, row);
    else rows.delete(key);
    changed.set(key, row);
  };
  if (!isImageStoreEvent(e)) {
    // A pod rendering an image is that image's use.
    const imageId = e.type === 'ImageRendered' ? e.data.imageId : undefined;
    const row = typeof imageId === 'string' ? rows.get(imageKey(imageId)) : undefined;
    if (row?.kind === 'image') set(imageKey(row.image.id), { kind: 'image', image: { ...row.image, lastUsedAt: e.meta.time } });
    return;
  }
  const type = checkImageEvent(e.type, e.schema, e.data, `${e.stream}@${e.version}`);
  switch (type) {
    case 'ImageImported': {
      const d = e.data as ImageImportedData;
      // Schema 1 recorded one size: an ACI's uncompressed tar, an OCI image's stored layers.
      const sizes = e.schema >= 2 ? {} : d.format === 'aci' ? { unpackedSize: d.size } : { storedSize: d.size };
      const names = [{ name: d.name, labels: d.labels, source: d.source, position: e.position }];
      set(imageKey(d.id), { kind: 'image', image: { ...d, ...sizes, importedAt: e.meta.time, position: e.position, names } });
      return;
    }
    case 'ImageTagged': {
      const { id, ...tag } = e.data as ImageTaggedData;
      const row = rows.get(imageKey(id));
      if (row?.kind !== 'image') return;
      const names = [...row.image.names.filter((n) => !sameName(n, tag)), { ...tag, position: e.position }];
      set(imageKey(id), { kind: 'image', image: { ...row.image, name: tag.name, labels: tag.labels, source: tag.source, names } });
      return;
    }
    case 'ImageVerified': {
      const { id, source: _, ...verification } = e.data as ImageVerifiedData;
      const row = rows.get(imageKey(id));
      if (row?.kind === 'image') set(imageKey(id), { kind: 'image', image: { ...row.image, verification } });
      return;
    }
    case 'ImageRemoved':
      set(imageKey((e.data as ImageEventData['ImageRemoved']).id), undefined);
      return;
    case 'TreeRendered': {
      const d = e.data as TreeRenderedData;
      const { repair: _, ...tree } = d;
      set(treeKey(d.treeStoreId), { kind: 'tree', tree: { ...tree, renderedAt: e.meta.time } });
      return;
    }
    case 'TreeDamaged': {
      const row = rows.get(treeKey((e.data as ImageEventData['TreeDamaged']).treeStoreId));
      if (row?.kind === 'tree') set(treeKey(row.tree.treeStoreId), { kind: 'tree', tree: { ...row.tree, damaged: true } });
      return;
    }
    case 'TreeRemoved':
      set(treeKey((e.data as ImageEventData['TreeRemoved']).treeStoreId), undefined);
      return;
    case 'LayerRendered': {
      const { repair: _, ...layer } = e.data as LayerRenderedData;
      set(layerKey(layer.key), { kind: 'layer', layer: { ...layer, renderedAt: e.meta.time } });
      return;
    }
    case 'LayerDamaged': {
      const row = rows.get(layerKey((e.data as ImageEventData['LayerDamaged']).key));
      if (row?.kind === 'layer') set(layerKey(row.layer.key), { kind: 'layer', layer: { ...row.layer, damaged: true } });
      return;
    }
    case 'LayerRemoved':
      set(layerKey((e.data as ImageEventData['LayerRemoved']).key), undefined);
      return;
  }
};

const toIndex = (rows: Map<string, Row>): ImageIndex => {
  const index: ImageIndex = { images: new Map(), trees: new Map(), layers: new Map() };
  for (const row of rows.values()) {
    if (row.kind === 'image') index.images.set(row.image.id, row.image);
    else if (row.kind === 'tree') index.trees.set(row.tree.treeStoreId, row.tree);
    else index.layers.set(row.layer.key, row.layer);
  }
  return index;
};

/**
 * Brings the image index up to the head of the log and returns it. `saveUses`: save the images' last
 * uses now, whatever the lag (before `log compact` removes the pod events they are read from).
 */
export const catchUpImageIndex = async (store: EventStore, { saveUses = false }: { saveUses?: boolean } = {}): Promise<ImageIndex> => {
  for (;;) {
    const saved = await store.loadProjection<Row>(IMAGE_INDEX);
    const reset = saved.schema !== SCHEMA;
    const rows = reset ? new Map<string, Row>() : saved.rows;
    const changed = new Map<string, Row | undefined>();
    let checkpoint = reset ? 0 : saved.checkpoint;
    // Every event up to the head is committed: what is not read below up to it is not indexed.
    const head = await store.headPosition();
    let imageStoreChanged = false;
    for (;;) {
      const events = await store.readAll({ after: checkpoint, limit: BATCH, types: INDEXED_TYPES });
      for (const e of events) {
        apply(rows, e, changed);
        imageStoreChanged ||= isImageStoreEvent(e);
      }
      if (events.length > 0) checkpoint = events[events.length - 1]!.position;
      if (events.length < BATCH) break;
    }
    checkpoint = Math.max(checkpoint, head);
    // Uses alone (a run's ImageRendered) are not saved until the lag is long: the next catch-up reads
    // them again from the saved checkpoint, and a run commits nothing for the index.
    if (!reset && !imageStoreChanged && (saveUses ? checkpoint === saved.checkpoint : checkpoint - saved.checkpoint < MAX_LAG)) return toIndex(rows);
    const upserts = new Map<string, Row>();
    const deletes: string[] = [];
    for (const [key, row] of changed) {
      if (row) upserts.set(key, row);
      else deletes.push(key);
    }
    const stored = await store.saveProjection({ name: IMAGE_INDEX, schema: SCHEMA, expectedCheckpoint: saved.checkpoint, checkpoint, upserts, deletes, reset });
    if (stored) return toIndex(rows);
    // Another process caught up first; its rows are as good as ours: read them again.
  }
};
