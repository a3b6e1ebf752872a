/**
 * `podlog log`: the event log itself.
 * - `compact`: its retention policy, as KurrentDB's scavenge. It is the one exception to append-only
 *   (src/store/port.ts): the history of a pod deleted long enough ago is removed, and one `PodCompacted`
 *   tombstone stays in place of its `PodDeleted` (same position and version), so the pod still folds to
 *   deleted, and every other event keeps its position.
 * - `migrate`: brings the log's schema to this podlog's version, as the first write would.
 * - `copy`: a whole log into an empty one, or (`--merge`) one host's log into a shared one that other hosts
 *   use (src/store/copy.ts).
 */
import { POD_STREAM_PREFIX, uuidOfStream } from '../../engine/streams.js';
import { ownsPod } from '../../engine/hosts.js';
import { PodlogError } from '../../errors.js';
import { POD_EVENTS, type PodEventData } from '../../events/catalogue.js';
import { catchUpImageIndex } from '../../images/index-projection.js';
import { IMAGE_STORE_SCOPE } from '../../events/images.js';
import { copyLog, type CopyReport } from '../../store/copy.js';
import { openStore, openStoreAt } from '../../store/open.js';
import type { EventStore, StreamCompaction } from '../../store/port.js';
import { scopedToHost } from '../../store/scoped.js';
import { SqliteEventStore } from '../../store/sqlite.js';
import { out, str, type Command, type Invocation } from '../command.js';
import { parseDuration } from '../duration.js';

export interface CompactReport {
  pods: Array<{ uuid: string; deletedAt: string; removed: number }>;
  /** The log's size in bytes before and after (unchanged when nothing was compacted). */
  bytes?: { before: number; after: number };
}

/**
 * Compacts every pod stream of `hostId` whose last event is a PodDeleted recorded at or before `cutoff` (ms
 * since the epoch). On a shared log, other hosts' pods are theirs to compact: their image indexes may not
 * have saved the uses those pods' events are (see below), which only they can catch up.
 */
export const compactDeletedPods = async (store: EventStore, cutoff: number, hostId: string): Promise<CompactReport> => {
  const compactions: StreamCompaction[] = [];
  for (const { stream, version } of await store.listStreams(POD_STREAM_PREFIX)) {
    const [last] = await store.readStream(stream, { from: version });
    if (last?.type !== 'PodDeleted' || Date.parse(last.meta.time) > cutoff) continue;
    const [prepare] = await store.readStream(stream, { to: 1 });
    if (!ownsPod(hostId, { host: prepare?.data['host'] as string | undefined })) continue;
    // Versions count events, and a stream ending in PodDeleted was never compacted: it has them all.
    const data: PodEventData['PodCompacted'] = { deletedAt: last.meta.time, compactedEvents: version };
    compactions.push({ stream, expected: version, tombstone: { type: 'PodCompacted', schema: POD_EVENTS.PodCompacted.schema, data } });
  }
  if (compactions.length === 0) return { pods: [] };
  // An image's last use is a pod's ImageRendered, which the index may not have saved yet (it reads
  // such uses again from the log until then): saved before those events go.
  await catchUpImageIndex(scopedToHost(store, hostId, IMAGE_STORE_SCOPE), { saveUses: true });
  const done = await store.compactStreams(compactions);
  const deletedAt = new Map(compactions.map((c) => [c.stream, String(c.tombstone.data['deletedAt'])]));
  return {
    pods: done.map((d) => ({ uuid: uuidOfStream(d.stream), deletedAt: deletedAt.get(d.stream)!, removed: d.removed })),
    bytes: await store.reclaimSpace(),
  };
};

const USAGE = `podlog log compact [--deleted-before=DURATION]
podlog log migrate
podlog log copy --from URL --to URL [--merge] [--resume]

  compact: removes the history of every pod of this host deleted at least DURATION ago (default 0s:
  every deleted pod), keeping one PodCompacted event per pod in place of its PodDeleted. This is the
  one exception to the log being append-only (as KurrentDB's scavenge): the positions of all other
  events stay as they were. The log is then rewritten (VACUUM) so that what was removed cannot be
  read back; other writers wait meanwhile (about 1 s per 50 MB of log).

  migrate: brings the log named by --store to this podlog's schema version, creating it if missing,
  and says which migrations it applied. Any write does the same on first use; this is its explicit form.

  copy: copies the whole log at --from (sqlite:PATH or postgres://…) into the log at --to, which must
  hold no events unless --merge (below): every event keeps its stream, version, id, metadata and
  time, in the same order. Global positions are the target's own, in that order: the same as the
  source's unless the source was compacted. A compacted pod (only its PodCompacted left)
  starts at version 1 in the target. Projections (the pod list, the image index) are not copied: they
  rebuild from the log on first use. Stop the hosts writing to the source first.
  Copying a one-host log (SQLite) into a shared one (PostgreSQL) moves the host into the fleet as
  --host-id: its image-store streams (image-, tree-, layer-) go under host/ID/, where its image store
  looks for them on a shared log, and its pods recorded without a host get host ID. Nothing else
  is changed.
  --merge appends one host's log (SQLite) into a shared log (PostgreSQL) that other hosts already use,
  adopted as above: how the fleet's second host onwards joins it. None of the source's streams (its
  pods, its image-store streams under host/ID/) may be in the target yet: all are checked before
  anything is written, and the first one found is named. Events are appended at the target's head, in
  the source's order, while other hosts go on writing: their positions are the target's, not the
  source's; streams, versions, ids and metadata are kept.
  --resume goes on after an interrupted copy: the target must hold exactly the source's first events
  (with --merge: the target's events in the source's streams must be exactly the source's first ones).`;

/** Each subcommand's own flags: any other given is refused. */
const FLAGS: Record<string, string[]> = { compact: ['deleted-before'], migrate: [], copy: ['from', 'to', 'merge', 'resume'] };
const GLOBAL = new Set(['dir', 'store', 'host-id', 'debug', 'help']);

const compact = async ({ values, dir, store: url, hostId }: Invocation): Promise<number> => {
  const cutoff = Date.now() - parseDuration(str(values, 'deleted-before') ?? '0s', '--deleted-before');
  // A data dir without a log has nothing to compact: like a read, it creates nothing.
  const store = await openStore(dir, { access: 'read', url });
  try {
    const report = await compactDeletedPods(store, cutoff, hostId);
    for (const p of report.pods) out(`compacted pod ${p.uuid} (deleted ${p.deletedAt}): ${p.removed} events removed`);
    const removed = report.pods.reduce((sum, p) => sum + p.removed, 0);
    const bytes = report.bytes === undefined ? '' : `; log ${report.bytes.before} → ${report.bytes.after} bytes`;
    out(`compact: ${report.pods.length} pod(s) compacted, ${removed} events removed${bytes}`);
    return 0;
  } finally {
    await store.close();
  }
};

/** What opening the log for writing migrated, as the adapter recorded it. */
const migrationOf = async (store: EventStore): Promise<{ schemaVersion: number; migrationsApplied: readonly number[] }> => {
  if (store instanceof SqliteEventStore) return store;
  const { PostgresEventStore } = await import('../../store/postgres.js');
  if (store instanceof PostgresEventStore) return store;
  throw new PodlogError('EUSAGE', `log migrate: ${store.location} is a ${store.kind} log, which has no migrations`);
};

const migrate = async ({ store: url }: Invocation): Promise<number> => {
  const store = await openStoreAt(url, 'write');
  try {
    const { schemaVersion, migrationsApplied } = await migrationOf(store);
    out(
      migrationsApplied.length === 0
        ? `${store.location}: already at schema version ${schemaVersion}`
        : `${store.location}: schema at version ${schemaVersion}; applied: ${migrationsApplied.join(', ')}`,
    );
    return 0;
  } finally {
    await store.close();
  }
};

/** What became of the source's global positions in the target. */
const positionsLine = (r: CopyReport): string => {
  if (r.merged) return "copy: global positions were not kept: the events were merged at the target's head, in the source's order, between other hosts' events";
  return r.samePositions
    ? 'copy: every event has the same global position in the target as in the source'
    : "copy: global positions are the target's own, in the source's order (the source's have gaps: it was compacted)";
};

const copy = async ({ values, hostId }: Invocation): Promise<number> => {
  const [fromUrl, toUrl] = [str(values, 'from'), str(values, 'to')];
  if (fromUrl === undefined || toUrl === undefined) throw new PodlogError('EUSAGE', `log copy: give both --from URL and --to URL\nUsage: ${USAGE}`);
  const from = await openStoreAt(fromUrl, 'inspect');
  try {
    if ((await from.headPosition()) === 0) throw new PodlogError('ELOG_EMPTY', `log copy: the source ${from.location} holds no events: nothing to copy`);
    const to = await openStoreAt(toUrl, 'write');
    try {
      const r = await copyLog(from, to, { hostId, resume: values['resume'] === true, merge: values['merge'] === true });
      const resumed = r.resumedAfter === 0 ? '' : ` after the ${r.resumedAfter} already there (checked one by one)`;
      out(`copy: ${r.copied} events copied from ${from.location} to ${to.location}${resumed}, in ${r.transactions} transaction(s); ${r.streams} streams`);
      out(positionsLine(r));
      for (const c of r.compacted) out(`copy: compacted stream ${c.stream} (its first event at version ${c.sourceVersion}) starts at version 1 in the target`);
      if (r.adopted !== undefined) {
        const a = r.adopted;
        out(`copy: adopted for host ${a.hostId}: ${a.streams} image-store streams (${a.events} events) moved under host/${a.hostId}/, ${a.prepares} pod(s) given host ${a.hostId}`);
      }
      out('copy: projections were not copied: they rebuild from the log on first use');
      return 0;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
};

const SUBCOMMANDS = new Map<string, (inv: Invocation) => Promise<number>>([['compact', compact], ['migrate', migrate], ['copy', copy]]);

export const log: Command = {
  usage: USAGE,
  options: {
    'deleted-before': { type: 'string', value: 'DURATION', description: 'compact: only pods deleted at least DURATION ago', shownDefault: '0s' },
    from: { type: 'string', value: 'URL', description: 'copy: the log to copy (sqlite:PATH or postgres://...)' },
    to: { type: 'string', value: 'URL', description: 'copy: the log to copy into' },
    merge: { type: 'boolean', description: "copy: append this host's log to a shared log that holds other hosts'" },
    resume: { type: 'boolean', description: 'copy: go on with a copy that was cut short' },
  },
  examples: ['podlog log compact --deleted-before=720h', 'podlog log migrate --store postgres://podlog@db/podlog', 'podlog log copy --from sqlite:/var/lib/podlog/events.db --to postgres://podlog@db/podlog'],
  subcommands: ['compact', 'migrate', 'copy'],
  async run(inv) {
    const { positionals, values } = inv;
    const sub = positionals.length === 1 ? SUBCOMMANDS.get(positionals[0]!) : undefined;
    if (sub === undefined) {
      throw new PodlogError('EUSAGE', `log: ${positionals.length === 0 ? 'give a subcommand' : `unknown subcommand ${JSON.stringify(positionals.join(' '))}`}\nUsage: ${USAGE}`);
    }
    const stray = Object.keys(values).find((k) => values[k] !== undefined && !GLOBAL.has(k) && !FLAGS[positionals[0]!]!.includes(k));
    if (stray !== undefined) throw new PodlogError('EUSAGE', `log ${positionals[0]!}: --${stray} is not one of its flags\nUsage: ${USAGE}`);
    return sub(inv);
  },
};
