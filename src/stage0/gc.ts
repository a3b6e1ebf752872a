/**
 * gc (rkt's `rkt gc`, rkt-semantics §1.8): mark, then sweep. Exited and aborted pods are marked as
 * garbage, prepared pods older than --expire-prepared too; marked pods are deleted once the grace
 * period since their mark has passed (pods that never ran, at once), and a pod whose delete failed
 * before is deleted again. A pod's failure is reported and the pod skipped; a broken pod (an
 * unreadable history, a missing directory) is reported apart. Cost is linear: one pass over the pod
 * list, the mount table read once.
 */
import { RKT_STATE_NAMES } from '../../machines/pod.js';
import { catchUpPodList, type PodRow } from '../engine/pod-list.js';
import { isPodlogError } from '../errors.js';
import { mountsUnder } from '../native.js';
import { reconcilePods, type BrokenPod } from './observe.js';
import { podsDir } from './pod-dir.js';
import { releasePod } from './release.js';
import type { Stage0 } from './session.js';

export interface GcOptions {
  gracePeriodMs: number;
  expirePreparedMs: number;
  markOnly: boolean;
}

export interface GcReport {
  lines: string[];
  /** Pods gc tried to mark or delete and could not. */
  errors: string[];
  /** Pods whose history or directory is broken: skipped, and named. */
  broken: BrokenPod[];
}

const MARKABLE: Partial<Record<PodRow['state'], true>> = { exited: true, abortedPrepare: true };

const human = (ms: number): string => {
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
};

export const gc = async (s: Stage0, options: GcOptions): Promise<GcReport> => {
  const report: GcReport = { lines: [], errors: [], broken: [] };
  const attempt = async (row: PodRow, what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      report.lines.push(`${what} ${row.uuid}`);
    } catch (e) {
      // Another gc or an rm changed the pod since this one listed it (marked it, or is deleting it):
      // it is theirs now, and no error (rkt PR #3515: no spurious errors in a race to deletion).
      if (isPodlogError(e) && e.code === 'EWRONG_STATE' && (await s.engine.load(row.uuid)).state !== row.state) return;
      report.errors.push(`${row.uuid}: ${(e as Error).message}`);
    }
  };

  let listed = await catchUpPodList(s.store);
  const reconciled = await reconcilePods(s.engine, s.effects, s.dataDir, listed.values());
  report.broken = reconciled.broken;
  if (reconciled.changed > 0) listed = await catchUpPodList(s.store);
  const skip = new Set(reconciled.broken.map((b) => b.uuid));
  for (const row of listed.values()) {
    if (skip.has(row.uuid)) continue;
    const expired = row.state === 'prepared' && Date.parse(row.context.preparedAt ?? '') + options.expirePreparedMs <= Date.now();
    if (MARKABLE[row.state] || expired) {
      await attempt(row, `Moving pod to ${row.state === 'exited' ? 'exited garbage' : 'garbage'}:`, () =>
        s.engine.record(row.uuid, [{ type: 'PodMarkedGarbage', data: { reason: expired ? 'expired' : 'gc' } }]),
      );
    }
  }
  if (options.markOnly) return report;

  const rows = (await catchUpPodList(s.store)).values();
  const mounts = mountsUnder(podsDir(s.dataDir));
  for (const row of rows) {
    if (skip.has(row.uuid)) continue;
    // A delete that failed before (closed, so no intent is open) is tried again at once.
    const retry = row.state === 'deleting' && row.context.pending === undefined;
    if (row.state !== 'exitedGarbage' && row.state !== 'garbage' && !retry) continue;
    // Measured now, after this run's own marks: --grace-period=0 sweeps what it just marked.
    const since = Date.now() - Date.parse(row.context.markedGarbageAt ?? '');
    if (row.state === 'exitedGarbage' && since < options.gracePeriodMs) {
      report.lines.push(`Pod ${row.uuid} still within grace period (${human(options.gracePeriodMs)})`);
      continue;
    }
    await attempt(row, `Garbage collecting pod (${RKT_STATE_NAMES[row.state]}):`, async () => {
      await releasePod(s, row.uuid);
      await s.engine.request(row.uuid, 'GcRequested', {}, { mounts });
    });
  }
  return report;
};
