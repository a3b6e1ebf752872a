/**
 * `podlog log compact`: the retention policy of the event log, as KurrentDB's scavenge. It is the one
 * exception to append-only (src/store/port.ts): the history of a pod deleted long enough ago is removed,
 * and one `PodCompacted` tombstone stays in place of its `PodDeleted` (same position and version), so the
 * pod still folds to deleted, and every other event keeps its position.
 */
import { POD_STREAM_PREFIX, uuidOfStream } from '../../engine/streams.js';
import { PodlogError } from '../../errors.js';
import { POD_EVENTS, type PodEventData } from '../../events/catalogue.js';
import { catchUpImageIndex } from '../../images/index-projection.js';
import { openStore } from '../../store/open.js';
import type { EventStore, StreamCompaction } from '../../store/port.js';
import { out, str, type Command } from '../command.js';
import { parseDuration } from '../duration.js';

export interface CompactReport {
  pods: Array<{ uuid: string; deletedAt: string; removed: number }>;
  /** The log's size in bytes before and after (unchanged when nothing was compacted). */
  bytes?: { before: number; after: number };
}

/** Compacts every pod stream whose last event is a PodDeleted recorded at or before `cutoff` (ms since the epoch). */
export const compactDeletedPods = async (store: EventStore, cutoff: number): Promise<CompactReport> => {
  const compactions: StreamCompaction[] = [];
  for (const { stream, version } of await store.listStreams(POD_STREAM_PREFIX)) {
    const [last] = await store.readStream(stream, { from: version });
    if (last?.type !== 'PodDeleted' || Date.parse(last.meta.time) > cutoff) continue;
    // Versions count events, and a stream ending in PodDeleted was never compacted: it has them all.
    const data: PodEventData['PodCompacted'] = { deletedAt: last.meta.time, compactedEvents: version };
    compactions.push({ stream, expected: version, tombstone: { type: 'PodCompacted', schema: POD_EVENTS.PodCompacted.schema, data } });
  }
  if (compactions.length === 0) return { pods: [] };
  // An image's last use is a pod's ImageRendered, which the index may not have saved yet (it reads
  // such uses again from the log until then): saved before those events go.
  await catchUpImageIndex(store, { saveUses: true });
  const done = await store.compactStreams(compactions);
  const deletedAt = new Map(compactions.map((c) => [c.stream, String(c.tombstone.data['deletedAt'])]));
  return {
    pods: done.map((d) => ({ uuid: uuidOfStream(d.stream), deletedAt: deletedAt.get(d.stream)!, removed: d.removed })),
    bytes: await store.reclaimSpace(),
  };
};

const USAGE = `podlog log compact [--deleted-before=DURATION]

  Removes the history of every pod deleted at least DURATION ago (default 0s: every deleted pod),
  keeping one PodCompacted event per pod in place of its PodDeleted. This is the one exception to
  the log being append-only (as KurrentDB's scavenge): the positions of all other events stay as
  they were. The log is then rewritten (VACUUM) so that what was removed cannot be read back;
  other writers wait meanwhile (about 1 s per 50 MB of log).`;

export const log: Command = {
  usage: USAGE,
  options: { 'deleted-before': { type: 'string', default: '0s' } },
  async run({ values, positionals, dir }) {
    if (positionals.length !== 1 || positionals[0] !== 'compact') {
      throw new PodlogError('EUSAGE', `log: ${positionals.length === 0 ? 'give a subcommand' : `unknown subcommand ${JSON.stringify(positionals.join(' '))}`}\nUsage: ${USAGE}`);
    }
    const cutoff = Date.now() - parseDuration(str(values, 'deleted-before')!, '--deleted-before');
    // A data dir without a log has nothing to compact: like a read, it creates nothing.
    const store = await openStore(dir, { access: 'read' });
    try {
      const report = await compactDeletedPods(store, cutoff);
      for (const p of report.pods) out(`compacted pod ${p.uuid} (deleted ${p.deletedAt}): ${p.removed} events removed`);
      const removed = report.pods.reduce((sum, p) => sum + p.removed, 0);
      const bytes = report.bytes === undefined ? '' : `; log ${report.bytes.before} → ${report.bytes.after} bytes`;
      out(`compact: ${report.pods.length} pod(s) compacted, ${removed} events removed${bytes}`);
      return 0;
    } finally {
      await store.close();
    }
  },
};
