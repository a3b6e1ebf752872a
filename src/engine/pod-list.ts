/**
 * The pod list: one row per pod that still exists (state, apps, times, exit codes), kept
 * incrementally from the log with a checkpoint, so that `list` reads rows instead of folding every
 * stream. A row holds the machine's state and context at a stream version, which also makes it the
 * pod's snapshot: loading a pod folds only the events after it. A deleted pod's row is dropped, so
 * the list costs what the live pods cost, however long the history (its stream stays in the log).
 */
import { POD_MACHINE_VERSION, type PodContext, type PodStateName } from '../../machines/pod.js';
import type { EventStore } from '../store/port.js';
import { foldPod, initialPod, restorePod, stateOf, type PodSnapshot } from './fold.js';
import { POD_STREAM_PREFIX, uuidOfStream } from './streams.js';

export interface PodRow {
  uuid: string;
  state: PodStateName;
  version: number;
  /** Global position of the pod's last event. */
  position: number;
  context: PodContext;
  /**
   * Why the pod's history cannot be folded past `version` (an unknown or malformed event, one the
   * machine refuses): the row stays as it was, its later events are skipped, and the pod is reported
   * by its UUID instead of breaking the list for every other pod.
   */
  broken?: string;
}

export const POD_LIST = 'pods';
/** Rows folded by another machine version are not trusted: the projection rebuilds. */
export const POD_LIST_SCHEMA = `pod-machine-v${POD_MACHINE_VERSION}`;
const BATCH = 5000;

export const rowSnapshot = (row: PodRow): PodSnapshot => restorePod(row.state, row.context);

const rowOf = (uuid: string, snapshot: PodSnapshot, version: number, position: number): PodRow => ({
  uuid,
  state: stateOf(snapshot),
  version,
  position,
  context: snapshot.context,
});

/** Brings the pod list up to the head of the log and returns its rows. */
export const catchUpPodList = async (store: EventStore): Promise<Map<string, PodRow>> => {
  for (;;) {
    const saved = await store.loadProjection<PodRow>(POD_LIST);
    const reset = saved.schema !== POD_LIST_SCHEMA;
    const rows = reset ? new Map<string, PodRow>() : saved.rows;
    const snapshots = new Map<string, PodSnapshot>();
    const upserts = new Map<string, PodRow>();
    const deletes = new Set<string>();
    let checkpoint = reset ? 0 : saved.checkpoint;
    for (;;) {
      const events = await store.readAll({ after: checkpoint, limit: BATCH, streamPrefix: POD_STREAM_PREFIX });
      for (const e of events) {
        const uuid = uuidOfStream(e.stream);
        const row = rows.get(uuid);
        if (row?.broken !== undefined) continue;
        const before = snapshots.get(uuid) ?? (row ? rowSnapshot(row) : initialPod(uuid));
        let next: PodSnapshot;
        try {
          next = foldPod(before, [e]);
        } catch (error) {
          const brokenRow: PodRow = { ...(row ?? rowOf(uuid, before, e.version - 1, e.position)), broken: (error as Error).message };
          rows.set(uuid, brokenRow);
          upserts.set(uuid, brokenRow);
          continue;
        }
        snapshots.set(uuid, next);
        const updated = rowOf(uuid, next, e.version, e.position);
        if (updated.state === 'deleted') {
          rows.delete(uuid);
          upserts.delete(uuid);
          deletes.add(uuid);
        } else {
          rows.set(uuid, updated);
          upserts.set(uuid, updated);
        }
      }
      if (events.length > 0) checkpoint = events[events.length - 1]!.position;
      if (events.length < BATCH) break;
    }
    if (upserts.size === 0 && deletes.size === 0 && !reset) return rows;
    const stored = await store.saveProjection({
      name: POD_LIST,
      schema: POD_LIST_SCHEMA,
      expectedCheckpoint: saved.checkpoint,
      checkpoint,
      upserts,
      deletes: [...deletes],
      reset,
    });
    if (stored) return rows;
    // Another process caught up first; its rows are as good as ours: read them again.
  }
};
