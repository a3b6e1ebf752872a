/**
 * The pod list: one row per pod that still exists (state, apps, times, exit codes), kept
 * incrementally from the log with a checkpoint, so that `list` reads rows instead of folding every
 * stream. A row holds the machine's state and context at a stream version, which also makes it the
 * pod's snapshot: loading a pod folds only the events after it. A deleted pod's row is dropped, so
 * the list costs what the live pods cost, however long the history (its stream stays in the log).
 *
 * Each row is saved with its summary (PodListRow: the part of the context that list, gc and the
 * reconciler read), which is all that loading the whole list reads and parses; the whole row is read
 * one pod at a time, by the engine and by a catch-up that folds that pod further.
 */
import { POD_MACHINE_VERSION, type PodApp, type PodContext, type PodStateName } from '../../machines/pod.js';
import type { EventStore, RecordedEvent, TimedEvent } from '../store/port.js';
import { foldPod, initialPod, restorePod, stateOf, type PodSnapshot } from './fold.js';
import { POD_STREAM_PREFIX, uuidOfStream } from './streams.js';

/** What the pod list keeps of a pod's context for listing it, collecting it and reconciling it. */
export type PodListContext = Pick<
  PodContext,
  'mutable' | 'networks' | 'metadata' | 'privateUsers' | 'host' | 'userLabels' | 'userAnnotations' | 'createdAt' | 'preparedAt' | 'startedAt' | 'exitedAt' | 'markedGarbageAt' | 'exitCode' | 'pending'
> & { apps: Omit<PodApp, 'exec'>[] };

/** A pod as the whole list loads it. */
export interface PodListRow {
  uuid: string;
  state: PodStateName;
  version: number;
  /** Global position of the pod's last event. */
  position: number;
  context: PodListContext;
  /**
   * Why the pod's history cannot be folded past `version` (an unknown or malformed event, one the
   * machine refuses): the row stays as it was, its later events are skipped, and the pod is reported
   * by its UUID instead of breaking the list for every other pod.
   */
  broken?: string;
}

/** A pod's whole row, its snapshot (loadProjectionRow). */
export interface PodRow extends PodListRow {
  context: PodContext;
}

export const POD_LIST = 'pods';
/** Rows folded by another machine version, or saved without their summaries, are not trusted: the projection rebuilds. */
export const POD_LIST_SCHEMA = `pod-machine-v${POD_MACHINE_VERSION}+summaries`;
/** Events read per query: a first catch-up of a large log folds in a few round trips. */
const BATCH = 20_000;

export const rowSnapshot = (row: PodRow): PodSnapshot => restorePod(row.state, row.context);

export const listRowOf = ({ context: c, ...row }: PodRow): PodListRow => ({
  ...row,
  context: {
    apps: c.apps.map(({ exec: _exec, ...app }) => app),
    mutable: c.mutable,
    networks: c.networks,
    metadata: c.metadata,
    privateUsers: c.privateUsers,
    host: c.host,
    userLabels: c.userLabels,
    userAnnotations: c.userAnnotations,
    createdAt: c.createdAt,
    preparedAt: c.preparedAt,
    startedAt: c.startedAt,
    exitedAt: c.exitedAt,
    markedGarbageAt: c.markedGarbageAt,
    exitCode: c.exitCode,
    pending: c.pending,
  },
});

/** A pod folded forward in memory: its snapshot at a stream version, and why it cannot go further if it cannot. */
export interface FoldedPod {
  snapshot: PodSnapshot;
  version: number;
  position: number;
  broken?: string;
}

/** Where a pod's fold starts: its whole saved row, else the machine's initial state. */
export const foldingFrom = (uuid: string, row?: PodRow): FoldedPod =>
  row
    ? { snapshot: rowSnapshot(row), version: row.version, position: row.position, ...(row.broken === undefined ? {} : { broken: row.broken }) }
    : { snapshot: initialPod(uuid), version: 0, position: 0 };

/**
 * Folds `e` onto `pod` unless it holds the event already or is broken; returns whether it changed. An
 * event the machine refuses leaves the pod as last known, named broken: its later events are skipped.
 */
export const foldOnto = (pod: FoldedPod, e: RecordedEvent | TimedEvent): boolean => {
  if (pod.broken !== undefined || e.version <= pod.version) return false;
  try {
    // The fold reads of an event's metadata only its time (toMachineEvent): a TimedEvent is enough.
    pod.snapshot = foldPod(pod.snapshot, [e as RecordedEvent]);
  } catch (error) {
    pod.broken = (error as Error).message;
    if (pod.position === 0) [pod.version, pod.position] = [e.version - 1, e.position];
    return true;
  }
  [pod.version, pod.position] = [e.version, e.position];
  return true;
};

/** A folded pod's row; undefined once it is deleted (a deleted pod has no row). */
export const rowOfFolded = (uuid: string, pod: FoldedPod): PodRow | undefined => {
  const state = stateOf(pod.snapshot);
  if (state === 'deleted' && pod.broken === undefined) return undefined;
  return { uuid, state, version: pod.version, position: pod.position, context: pod.snapshot.context, ...(pod.broken === undefined ? {} : { broken: pod.broken }) };
};

/** A pod being folded forward by a catch-up; `changed`: an event was folded (or refused), so its row is saved. */
type Folding = FoldedPod & { changed: boolean };

/** Where the fold of each pod starts: its whole row when it is listed, else the machine's initial state. */
const startsOf = async (store: EventStore, uuids: string[], listed: (uuid: string) => boolean): Promise<Map<string, Folding>> => {
  const keys = uuids.filter(listed);
  const saved = keys.length === 0 ? new Map<string, PodRow>() : await store.loadProjectionRows<PodRow>(POD_LIST, keys);
  return new Map(uuids.map((uuid) => [uuid, { ...foldingFrom(uuid, saved.get(uuid)), changed: false }]));
};

/** Brings the pod list up to the head of the log and returns its rows. */
export const catchUpPodList = async (store: EventStore): Promise<Map<string, PodListRow>> => {
  for (;;) {
    const saved = await store.loadProjection<PodListRow>(POD_LIST);
    const reset = saved.schema !== POD_LIST_SCHEMA;
    const rows = reset ? new Map<string, PodListRow>() : saved.rows;
    const folding = new Map<string, Folding>();
    let checkpoint = reset ? 0 : saved.checkpoint;
    for (;;) {
      const events = await store.readAll({ after: checkpoint, limit: BATCH, streamPrefix: POD_STREAM_PREFIX, metadata: 'time' });
      const starting = [...new Set(events.map((e) => uuidOfStream(e.stream)).filter((uuid) => !folding.has(uuid) && rows.get(uuid)?.broken === undefined))];
      for (const [uuid, start] of await startsOf(store, starting, (uuid) => rows.has(uuid))) folding.set(uuid, start);
      for (const e of events) {
        const f = folding.get(uuidOfStream(e.stream));
        // A row saved by another catch-up after this one loaded the list may already hold the event.
        if (f !== undefined && foldOnto(f, e)) f.changed = true;
      }
      if (events.length > 0) checkpoint = events[events.length - 1]!.position;
      if (events.length < BATCH) break;
    }
    const upserts = new Map<string, PodRow>();
    const deletes: string[] = [];
    for (const [uuid, f] of folding) {
      if (!f.changed) continue;
      const row = rowOfFolded(uuid, f);
      if (row === undefined) {
        rows.delete(uuid);
        deletes.push(uuid);
        continue;
      }
      upserts.set(uuid, row);
      rows.set(uuid, listRowOf(row));
    }
    if (upserts.size === 0 && deletes.length === 0 && !reset) return rows;
    const stored = await store.saveProjection({
      name: POD_LIST,
      schema: POD_LIST_SCHEMA,
      expectedCheckpoint: saved.checkpoint,
      checkpoint,
      upserts,
      summarise: listRowOf,
      deletes,
      reset,
    });
    if (stored) return rows;
    // Another process caught up first; its rows are as good as ours: read them again.
  }
};
