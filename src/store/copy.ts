/**
 * `podlog log copy`: a whole event log copied into an empty one (SQLite → PostgreSQL to join a fleet, or
 * back), through the port alone, so that any adapter can be either end.
 *
 * What is kept: every event's stream, version, id, type, schema, data and metadata (its time included), in
 * the source's order. Global positions are the target's own, given in that order: they equal the source's
 * when the target starts empty and the source has no gaps (it was never compacted). Projections are not
 * copied: they are derived, and rebuild from the log on first use.
 *
 * What is changed, and only this:
 * - Adoption, when the target is shared by hosts (src/store/scoped.ts) and the source is not: the source's
 *   image-store streams (`image-…`, `tree-…`, `layer-…`: IMAGE_STORE_SCOPE) are copied under
 *   `host/<hostId>/`, where that host's image store looks for them on a shared log, and every
 *   PrepareRequested without `data.host` (pods from before hosts were recorded) gets `host: hostId`, so
 *   that the moved pods have an owner and other hosts leave them alone (src/engine/hosts.ts).
 * - A compacted stream (`log compact` left only its tombstone, at the version of the event it replaced)
 *   starts at version 1 in the target: the port's appends number a stream's events from 1, and cannot
 *   leave the gap. Its events keep their order, ids and data (the tombstone's `compactedEvents` still says
 *   how many were removed); nothing refers to a finished stream's versions but its own events.
 *
 * Events are read in batches by position and appended with appendMany, so that the target commits a batch
 * in few transactions: one per run of the batch in which no stream is named twice (appendMany takes each
 * stream once, and reordering streams would reorder positions). Each stream's expected version is its
 * version in the target, so a concurrent writer to the same stream fails the copy instead of interleaving.
 *
 * The target must hold no events, unless `merge`. An interrupted copy leaves a prefix of the source in the
 * target (every transaction is whole); `resume` checks that the target is exactly such a prefix, event by
 * event (id, stream and version as the copy would write them), and copies the rest.
 *
 * `merge`: a one-host log appended into a shared log that other hosts already use (the fleet's second
 * host onwards), adopted as above. It adds streams and never extends one: every source stream, as adopted,
 * must be absent from the target, all checked before anything is written (one listStreams per family of
 * names, `pod-` or the host's scope, not a query per stream), and the first batch of each stream expects
 * no_stream, so a writer creating one of them meanwhile fails the merge instead of interleaving with it.
 * Versions are then the source's, as in a copy; positions are the target's, at its head, in the source's
 * order, with other hosts' events between the batches.
 * An interrupted merge leaves a prefix of the source in the target, interleaved with other hosts' events.
 * Those can only be in other streams, so the rule of `resume` is the copy's, applied to the target's
 * events in the source's streams (as adopted): in position order they must be exactly the source's first
 * events (same id, stream and version), with no hole; the rest is copied after them.
 */
import { POD_STREAM_PREFIX, uuidOfStream } from '../engine/streams.js';
import { PodlogError, isPodlogError } from '../errors.js';
import { IMAGE_STORE_SCOPE } from '../events/images.js';
import { readBatches } from '../api/subscribe.js';
import type { EventStore, NewEvent, ReadAllOptions, RecordedEvent, StreamAppend } from './port.js';
import { hostScope, isSharedStore, streamInScope } from './scoped.js';

export interface CopyOptions {
  /** The host whose one-host log this is, adopted on a shared target (see the top of this file). */
  hostId: string;
  /** Go on after an interrupted copy (or merge) instead of refusing a non-empty target (or present streams). */
  resume?: boolean;
  /** Append a one-host log into a shared log that other hosts use (see the top of this file). */
  merge?: boolean;
  /** Events read (and at most appended) at a time. */
  batchSize?: number;
}

export interface CopyReport {
  /** Events appended by this copy, and those found already copied (resume). */
  copied: number;
  resumedAfter: number;
  streams: number;
  transactions: number;
  /** Whether every event has the same global position in the target as in the source. */
  samePositions: boolean;
  /** Merged at the target's head, between other hosts' events (CopyOptions.merge). */
  merged: boolean;
  /** The host adopted for, when adopting: what was moved under its scope and what was given it as owner. */
  adopted?: { hostId: string; streams: number; events: number; prepares: number };
  /** Compacted streams, now starting at version 1, with the version their first event had in the source. */
  compacted: Array<{ stream: string; sourceVersion: number }>;
}

/** A source stream as the copy writes it. */
interface StreamState {
  target: string;
  /** Source version − target version (a compacted stream's first event's version − 1, else 0). */
  offset: number;
  /** The stream's version in the target so far. */
  version: number;
}

const DEFAULT_BATCH = 5000;

const targetNotEmpty = (location: string, head: number): PodlogError =>
  new PodlogError(
    'ELOG_NOT_EMPTY',
    `the target log ${location} already holds events (up to position ${head}): podlog log copy only copies into an empty log unless --merge. ` +
      'If an interrupted copy left them, run the same copy again with --resume; if it is a shared log other hosts use and the source is one host\'s, add --merge; ' +
      'otherwise empty the target first (a new PostgreSQL schema, or a new file) and copy again.',
  );

/** Why a merge cannot be done between these logs (undefined: it can). */
const mergeRefusal = (from: EventStore, to: EventStore, head: number): string | undefined => {
  if (!isSharedStore(to)) return `the target ${to.location} is a one-host (${to.kind}) log: only a shared (PostgreSQL) log takes in another host's log`;
  if (isSharedStore(from)) return `the source ${from.location} is a shared (${from.kind}) log, which holds several hosts' pods: --merge moves one host's own log (SQLite) into the fleet`;
  if (head === 0) return `the target ${to.location} holds no events: copy without --merge, which also keeps the source's positions`;
  return undefined;
};

/** The first of the merge's streams that the target already has, as a refusal. */
const mergeClash = (to: EventStore, stream: string, hostId: string): PodlogError => {
  const what = stream.startsWith(hostScope(hostId))
    ? `host ${hostId} already has image records in the target ${to.location} (${stream})`
    : stream.startsWith(POD_STREAM_PREFIX)
      ? `the target ${to.location} already has pod ${uuidOfStream(stream)} (${stream})`
      : `the target ${to.location} already has the stream ${stream}`;
  return new PodlogError(
    'ELOG_MERGE_CLASH',
    `${what}: was this log merged before? If that merge was interrupted, run it again with --resume. ` +
      '--merge only adds streams that the target does not have; nothing was written.',
  );
};

/** A source stream's name in the target: an image-store stream adopted by `adoptFor` goes under its scope. */
const targetStream = (adoptFor: string | undefined, stream: string): string => (adoptFor === undefined ? stream : streamInScope(IMAGE_STORE_SCOPE, adoptFor, stream));

/** Turns source events into the target's, stream by stream, in order; also what `resume` compares with. */
class Plan {
  readonly streams = new Map<string, StreamState>();
  readonly report: CopyReport;

  constructor(
    private readonly adoptFor: string | undefined,
    merged: boolean,
  ) {
    this.report = {
      copied: 0,
      resumedAfter: 0,
      streams: 0,
      transactions: 0,
      samePositions: true,
      merged,
      compacted: [],
      ...(adoptFor === undefined ? {} : { adopted: { hostId: adoptFor, streams: 0, events: 0, prepares: 0 } }),
    };
  }

  private stateOf(e: RecordedEvent): StreamState {
    const known = this.streams.get(e.stream);
    if (known !== undefined) {
      if (e.version - known.offset !== known.version + 1) {
        throw new PodlogError(
          'ELOG_COPY',
          `the source's stream ${e.stream} goes from version ${known.version + known.offset} to ${e.version}: only a compaction leaves a gap, and only before a stream's first remaining event; not copying such a log`,
        );
      }
      return known;
    }
    const state: StreamState = { target: targetStream(this.adoptFor, e.stream), offset: e.version - 1, version: 0 };
    if (state.target !== e.stream) this.report.adopted!.streams++;
    if (state.offset > 0) this.report.compacted.push({ stream: e.stream, sourceVersion: e.version });
    this.streams.set(e.stream, state);
    this.report.streams++;
    return state;
  }

  /** The event as the target gets it, with its stream there and its version before it. */
  next(e: RecordedEvent): { stream: string; before: number; event: NewEvent } {
    const state = this.stateOf(e);
    const before = state.version++;
    let data = e.data;
    if (this.adoptFor !== undefined) {
      if (state.target !== e.stream) this.report.adopted!.events++;
      if (e.type === 'PrepareRequested' && data['host'] === undefined) {
        data = { ...data, host: this.adoptFor };
        this.report.adopted!.prepares++;
      }
    }
    return { stream: state.target, before, event: { type: e.type, schema: e.schema, data, meta: e.meta } };
  }
}

/** Appends one batch in as few appendMany calls (transactions) as keep its order. */
const appendBatch = async (to: EventStore, plan: Plan, batch: RecordedEvent[]): Promise<void> => {
  let appends: StreamAppend[] = [];
  let named = new Set<string>();
  let sources: RecordedEvent[] = [];
  const flush = async (): Promise<void> => {
    if (appends.length === 0) return;
    const results = await to.appendMany(appends);
    const last = results[results.length - 1]!.position;
    const first = last - sources.length + 1;
    if (sources.some((e, i) => e.position !== first + i)) plan.report.samePositions = false;
    plan.report.copied += sources.length;
    plan.report.transactions++;
    appends = [];
    named = new Set();
    sources = [];
  };
  for (const e of batch) {
    const { stream, before, event } = plan.next(e);
    const open = appends[appends.length - 1];
    if (open?.stream === stream) {
      open.events.push(event);
    } else {
      if (named.has(stream)) await flush();
      appends.push({ stream, events: [event], expected: before === 0 ? 'no_stream' : before });
      named.add(stream);
    }
    sources.push(e);
  }
  await flush();
};

/** Events of a log (only `streams`, if given) one at a time, read in batches by position to its head. */
async function* eventsOf(store: EventStore, batchSize: number, streams?: string[]): AsyncGenerator<RecordedEvent> {
  const only: Pick<ReadAllOptions, 'streams'> = streams === undefined ? {} : { streams };
  for await (const batch of readBatches(store, { stopAtHead: true, batchSize, ...only })) yield* batch;
}

/** Every stream of the source as the copy names it in the target. */
const targetStreamsOf = async (from: EventStore, adoptFor: string | undefined): Promise<string[]> =>
  (await from.listStreams()).map((s) => targetStream(adoptFor, s.stream));

/** Refuses the merge if the target has any of `streams`: one listStreams per family (`pod-`, `host/ID/`, …). */
const checkAbsent = async (to: EventStore, streams: string[], hostId: string): Promise<void> => {
  const scope = hostScope(hostId);
  const familyOf = (stream: string): string => (stream.startsWith(scope) ? scope : stream.slice(0, stream.indexOf('-') + 1) || stream);
  const present = new Set<string>();
  for (const family of new Set(streams.map(familyOf))) for (const s of await to.listStreams(family)) present.add(s.stream);
  const clash = streams.find((s) => present.has(s));
  if (clash !== undefined) throw mergeClash(to, clash, hostId);
};

/**
 * Walks the target (only `streams` of it, if given) alongside the source: each target event must be the
 * source's next one as the copy writes it. `source` is left at the first event the target does not have.
 */
const checkPrefix = async (
  from: EventStore,
  to: EventStore,
  plan: Plan,
  source: AsyncGenerator<RecordedEvent>,
  batchSize: number,
  streams?: string[],
): Promise<void> => {
  // A merge's target holds other hosts' events too: only the source's own streams are its prefix.
  const [target, remedy] =
    streams === undefined
      ? [`the target ${to.location}`, 'the same --host-id as the first copy is needed; else empty the target and copy again without --resume']
      : [`the target ${to.location} (its events in the source's streams)`, 'the same --host-id as the first merge is needed'];
  for await (const t of eventsOf(to, batchSize, streams)) {
    const { value: s } = await source.next();
    const copied = s === undefined ? undefined : plan.next(s);
    if (s === undefined || t.meta.id !== s.meta.id || t.stream !== copied!.stream || t.version !== copied!.before + 1) {
      throw new PodlogError(
        'ELOG_NOT_A_PREFIX',
        `cannot resume: ${target} is not a copy of the start of ${from.location} (its event at position ${t.position}, ${t.meta.id} in ${t.stream}, ` +
          `is not the source's next one${s === undefined ? ': the source has no more' : `, ${s.meta.id} in ${copied!.stream}`}); ${remedy}`,
      );
    }
    if (t.position !== s.position) plan.report.samePositions = false;
    plan.report.resumedAfter++;
  }
};

/** Refuses a merge that cannot be done; returns the source's streams as the target names them. */
const startMerge = async (from: EventStore, to: EventStore, head: number, hostId: string, resume: boolean): Promise<string[]> => {
  const refusal = mergeRefusal(from, to, head);
  if (refusal !== undefined) throw new PodlogError('ELOG_MERGE', `log copy --merge: ${refusal}`);
  const streams = await targetStreamsOf(from, hostId);
  if (!resume) await checkAbsent(to, streams, hostId);
  return streams;
};

export const copyLog = async (from: EventStore, to: EventStore, options: CopyOptions): Promise<CopyReport> => {
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const [resume, merge] = [options.resume === true, options.merge === true];
  const head = await to.headPosition();
  if (!merge && head > 0 && !resume) throw targetNotEmpty(to.location, head);
  const streams = merge ? await startMerge(from, to, head, options.hostId, resume) : undefined;
  const plan = new Plan(isSharedStore(to) && !isSharedStore(from) ? options.hostId : undefined, merge);
  const source = eventsOf(from, batchSize);
  if (resume && head > 0) await checkPrefix(from, to, plan, source, batchSize, streams);
  try {
    let batch: RecordedEvent[] = [];
    for await (const e of source) {
      batch.push(e);
      if (batch.length < batchSize) continue;
      await appendBatch(to, plan, batch);
      batch = [];
    }
    await appendBatch(to, plan, batch);
  } catch (e) {
    const copied = plan.report.resumedAfter + plan.report.copied;
    throw new PodlogError(
      isPodlogError(e) ? e.code : 'ELOG_COPY',
      `${(e as Error).message}\nThe copy stopped with the first ${copied} of the source's events in the target (an append in flight may have been recorded too): ` +
        `run the same command again with --resume to go on from there${merge ? '' : ', or empty the target and copy again'}.`,
      { cause: e },
    );
  }
  return plan.report;
};
