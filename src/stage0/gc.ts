/**
 * gc (rkt's `rkt gc`, rkt-semantics §1.8): mark, then sweep. Exited and aborted pods are marked as
 * garbage, prepared pods older than --expire-prepared too; marked pods are deleted once the grace
 * period since their mark has passed (pods that never ran, at once), and a pod whose delete failed
 * before is deleted again. A pod's failure is reported and the pod skipped; a broken pod (an
 * unreadable history, a missing directory) is reported apart; another host's pods are left to it. Cost is linear: one pass over the pod
 * list, the mount table read once, and a few commits per batch of pods (marks in one, deletion
 * intents in one, their outcomes in one), whatever the number of pods in the batch.
 */
import { RKT_STATE_NAMES } from '../../machines/pod.js';
import { ownsPod } from '../engine/hosts.js';
import { catchUpPodList, listRowOf, type PodListRow } from '../engine/pod-list.js';
import { isPodlogError } from '../errors.js';
import { mountsUnder } from '../native.js';
import { reconcilePods, type BrokenPod } from './observe.js';
import { podsDir } from './pod-dir.js';
import { holdsResources, releasePod } from './release.js';
import type { Stage0 } from './session.js';

/** rkt gc's flags, in milliseconds. */
export interface GcOptions {
  /** How long an exited pod stays marked before it is deleted (--grace-period; rkt: 30 min). */
  gracePeriodMs: number;
  /** How old a prepared pod that never ran must be to be collected (--expire-prepared; rkt: 24 h). */
  expirePreparedMs: number;
  /** Mark only; delete nothing (--mark-only). */
  markOnly: boolean;
}

/** What a gc did, as rkt's lines say it, and what it could not do. */
export interface GcReport {
  /** rkt's lines: each pod marked, deleted, or left within its grace period. */
  lines: string[];
  /** Pods gc tried to mark or delete and could not. */
  errors: string[];
  /** Pods whose history or directory is broken: skipped, and named. */
  broken: BrokenPod[];
}

const MARKABLE: Partial<Record<PodListRow['state'], true>> = { exited: true, abortedPrepare: true };

const human = (ms: number): string => {
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
};

/** Pods acted on in one commit: a crash loses at most this many pods' progress (each is reconciled). */
const BATCH = 256;

/**
 * Collects this host's finished pods (see the top of this module). A pod that cannot be marked or
 * deleted is reported in `errors` and gc goes on; it throws only for the store itself.
 */
export const gc = async (s: Stage0, options: GcOptions): Promise<GcReport> => {
  const report: GcReport = { lines: [], errors: [], broken: [] };
  /** Reports what became of each pod of a batch; `results` are in the rows' order. */
  const settle = async (rows: PodListRow[], results: unknown[], what: (row: PodListRow) => string) => {
    for (const [i, row] of rows.entries()) {
      const e = results[i];
      if (!(e instanceof Error)) {
        report.lines.push(`${what(row)} ${row.uuid}`);
        continue;
      }
      // Another gc or an rm changed the pod since this one listed it (marked it, or is deleting it):
      // it is theirs now, and no error (rkt PR #3515: no spurious errors in a race to deletion).
      if (isPodlogError(e) && e.code === 'EWRONG_STATE') {
        const now = await s.engine.load(row.uuid);
        if (now.state !== row.state || now.context.pending !== undefined) continue;
      }
      report.errors.push(`${row.uuid}: ${e.message}`);
    }
  };
  /** A batch whose commit failed as a whole (the store's error): each of its pods is reported, and gc goes on. */
  const inBatch = async <R>(rows: PodListRow[], act: () => Promise<R[]>, what: (row: PodListRow) => string): Promise<R[]> => {
    let results: R[];
    try {
      results = await act();
    } catch (e) {
      await settle(rows, rows.map(() => e), what);
      return [];
    }
    await settle(rows, results, what);
    return results;
  };

  let listed = await catchUpPodList(s.store);
  const reconciled = await reconcilePods(s.engine, s.effects, s.dataDir, listed.values());
  report.broken = reconciled.broken;
  if (reconciled.changed > 0) listed = await catchUpPodList(s.store);
  const skip = new Set(reconciled.broken.map((b) => b.uuid));
  // Broken pods are named, not acted on; another host's pods are that host's to collect.
  const actsOn = (row: PodListRow): boolean => !skip.has(row.uuid) && ownsPod(s.hostId, row.context);
  const marking = [...listed.values()].filter((row) => actsOn(row) && (MARKABLE[row.state] || expired(row, options)));
  for (const rows of batches(marking)) {
    const marked = await inBatch(
      rows,
      () => s.engine.recordMany(rows.map((row) => ({ uuid: row.uuid, events: [{ type: 'PodMarkedGarbage', data: { reason: expired(row, options) ? 'expired' : 'gc' } }] }))),
      (row) => `Moving pod to ${row.state === 'exited' ? 'exited garbage' : 'garbage'}:`,
    );
    // The marks' own results update the list: no second catch-up over what this gc just wrote.
    for (const r of marked) {
      if (r instanceof Error) continue;
      const { view, events } = r;
      if (events.length > 0) listed.set(view.uuid, listRowOf({ uuid: view.uuid, state: view.state, version: view.version, position: events.at(-1)!.position, context: view.context }));
    }
  }
  if (options.markOnly) return report;

  const mounts = mountsUnder(podsDir(s.dataDir));
  const deleting: PodListRow[] = [];
  for (const row of listed.values()) {
    if (!actsOn(row)) continue;
    // A delete that failed before (closed, so no intent is open) is tried again at once.
    const retry = row.state === 'deleting' && row.context.pending === undefined;
    if (row.state !== 'exitedGarbage' && row.state !== 'garbage' && !retry) continue;
    // Measured now, after this run's own marks: --grace-period=0 sweeps what it just marked.
    const since = Date.now() - Date.parse(row.context.markedGarbageAt ?? '');
    if (row.state === 'exitedGarbage' && since < options.gracePeriodMs) {
      report.lines.push(`Pod ${row.uuid} still within grace period (${human(options.gracePeriodMs)})`);
      continue;
    }
    if (holdsResources(row.context)) {
      const released = await releasePod(s, row.uuid).then(() => undefined, (e: unknown) => e);
      if (released !== undefined) {
        await settle([row], [released], () => '');
        continue;
      }
    }
    deleting.push(row);
  }
  for (const rows of batches(deleting)) {
    await inBatch(rows, () => s.engine.requestMany(rows.map((row) => row.uuid), 'GcRequested', {}, { mounts }), (row) => `Garbage collecting pod (${RKT_STATE_NAMES[row.state]}):`);
  }
  return report;
};

const expired = (row: PodListRow, options: GcOptions): boolean =>
  row.state === 'prepared' && Date.parse(row.context.preparedAt ?? '') + options.expirePreparedMs <= Date.now();

const batches = function* <T>(items: T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BATCH) yield items.slice(i, i + BATCH);
};
