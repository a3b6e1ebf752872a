/**
 * The event store port: what podlog needs from a durable log, with KurrentDB's semantics.
 *
 * - A stream is one pod's (or one image's) history. Versions count events: a stream with N events is
 *   at version N, its events are numbered 1..N, and a stream that does not exist is at version 0.
 * - Every append is atomic (all events or none) and checked against an expected version.
 * - `appendMany` appends to several streams in one transaction: all of them or none. KurrentDB has no such
 *   operation (its appends are per stream); podlog's port has it so that a verb acting on many pods (gc)
 *   records them in one commit, and a reader sees all of those events or none of them.
 * - Every event also gets a global position, strictly increasing in commit order across all streams,
 *   so a reader that has seen position P and reads "after P" never misses a later commit. The events
 *   of one append get consecutive positions (appends are serialised).
 * - Projections keep derived rows (the pod list) with a checkpoint; saving them is a compare-and-set on
 *   the checkpoint so that two processes catching up at once cannot interleave. A row may be saved with a
 *   summary, which is what loading all rows returns (a list), while loading one row returns it whole.
 * - The log is append-only, with one exception: `compactStreams` (KurrentDB's scavenge) removes the
 *   events of finished streams (deleted pods, `podlog log compact`) and leaves one tombstone per stream,
 *   in place of its last event. Nothing else is ever changed or removed, so the versions and positions
 *   of every remaining event stay as they were and a catch-up reader goes on; only the history of the
 *   compacted streams is gone (positions then have gaps).
 *
 * @module
 */

/**
 * What an append requires of its stream's version (KurrentDB's): `any` nothing, `no_stream` that it
 * does not exist yet, `stream_exists` that it does, a number exactly that version.
 */
export type ExpectedVersion = 'any' | 'no_stream' | 'stream_exists' | number;

/** Who recorded an event, where, when and why: what the engine stamps on every event it appends. */
export interface EventMetadata {
  /** Unique id of the event (UUID v7: sortable by time). */
  id: string;
  /** ISO 8601 time the event was recorded. */
  time: string;
  /** The recorder's host name (os.hostname()): with pid, bootId and startTicks it names the process. */
  host: string;
  /**
   * The id of the host the event was recorded for (src/config.ts hostId): in a log shared by many hosts,
   * what each host's pods and images are told apart by. Absent from events recorded before podlog stored it.
   */
  hostId?: string;
  /** Pid of the engine process that recorded it. */
  pid: number;
  /**
   * The recorder's boot (/proc/sys/kernel/random/boot_id) and its start time in clock ticks after boot
   * (/proc/PID/stat field 22): with host and pid they name the process exactly (src/engine/liveness.ts).
   * Absent from events recorded before podlog stored them.
   */
  bootId?: string;
  /** See `bootId`. */
  startTicks?: number;
  /** The recorder's user name (`uid:N` for a uid without one). */
  user: string;
  /** The command line that caused it (argv without node and the script). */
  command: string[];
  /** Every event caused by one user command shares its correlation id. */
  correlationId: string;
  /** The id of the event that caused this one (the intent for an outcome), if any. */
  causationId?: string;
  /**
   * On the first event of a commit: how many times its append lost to another writer (a wrong expected
   * version) before it committed. Absent when it never did.
   */
  conflicts?: number;
}

/** An event to append: what happened, in the catalogue's terms, and its metadata. */
export interface NewEvent {
  /** Its type, one of the catalogue's (src/events/catalogue.ts): `PodExited`. */
  type: string;
  /** Version of the event's schema, from the catalogue. */
  schema: number;
  /** Its fields, as the catalogue says for its type and schema (JSON). */
  data: Record<string, unknown>;
  /** Who recorded it, where, when and why. */
  meta: EventMetadata;
}

/** An event as the log holds it: where it is, in its stream and in the whole log. */
export interface RecordedEvent extends NewEvent {
  /** Its stream: `pod-UUID` for a pod's, `image-…`, `tree-…`, `layer-…` for the image store's. */
  stream: string;
  /** Its number in its stream, from 1. */
  version: number;
  /** Its global position in the log, strictly increasing in commit order. */
  position: number;
}

/** One stream's part of an {@link EventStore.appendMany}. */
export interface StreamAppend {
  /** The stream appended to. */
  stream: string;
  /** Appended in this order; none: the stream's version is only checked. */
  events: NewEvent[];
  /** What the stream's version must be, as for {@link EventStore.append}. */
  expected: ExpectedVersion;
}

/** An event read with only the time of its metadata (ReadAllOptions.metadata 'time'). */
export type TimedEvent = Omit<RecordedEvent, 'meta'> & {
  /** Its metadata's time alone. */
  meta: Pick<EventMetadata, 'time'>;
};

/** Where an append left its stream and the log. */
export interface AppendResult {
  /** The stream's version after the append. */
  version: number;
  /** Global position of the last appended event. */
  position: number;
}

/** Which events of the whole log {@link EventStore.readAll} returns, in position order; every filter given applies. */
export interface ReadAllOptions {
  /** Read events with a position strictly greater than this (default 0: from the start). */
  after?: number;
  /** At most this many events (default 1000). */
  limit?: number;
  /** Only these streams. */
  streams?: string[];
  /** Only streams whose name starts with this. */
  streamPrefix?: string;
  /** Only these event types. */
  types?: string[];
  /** Only events recorded at or after this time (ISO 8601). */
  since?: string;
  /** Only events recorded before this time (ISO 8601). */
  until?: string;
  /**
   * 'time': of each event's metadata, read its time alone (a TimedEvent). For a fold over much of the log
   * (a projection's catch-up), which reads nothing else of it: the rest is more than half of what such a
   * read would otherwise carry and parse.
   */
  metadata?: 'all' | 'time';
}

/** Which versions of one stream {@link EventStore.readStream} returns. */
export interface ReadStreamOptions {
  /** First version to read (default 1). */
  from?: number;
  /** Last version to read, inclusive (default: the end). */
  to?: number;
}

/** A stream and how far it has come. */
export interface StreamInfo {
  /** The stream's name. */
  stream: string;
  /** Its version: how many events it has had. */
  version: number;
  /** Position of the stream's last event. */
  position: number;
}

/** One stream to compact: it must be at `expected`, and its last event becomes `tombstone`. */
export interface StreamCompaction {
  /** A finished stream (a deleted pod's). */
  stream: string;
  /** The version the caller judged the stream at (its last event is the one the tombstone replaces). */
  expected: number;
  /** Type, schema and data of the tombstone; it keeps the replaced event's version, position and metadata. */
  tombstone: Pick<NewEvent, 'type' | 'schema' | 'data'>;
}

/** What {@link EventStore.compactStreams} removed from one stream. */
export interface CompactedStream {
  /** The stream compacted. */
  stream: string;
  /** How many events were removed (the tombstone is not counted). */
  removed: number;
}

/**
 * A projection as saved: rows derived from the log, and how far into the log they are (a consumer's
 * checkpoint is a projection with no rows).
 */
export interface ProjectionState<Row> {
  /** The position of the last event the rows include (0: none). */
  checkpoint: number;
  /** Identifies the code that produced the rows; a different one means "rebuild from scratch". */
  schema: string;
  /** The rows by key. */
  rows: Map<string, Row>;
}

/** A compare-and-set of a projection: {@link EventStore.saveProjection}. */
export interface ProjectionUpdate<Row> {
  /** The projection's name (`pod-list`; `consumer:NAME` for a consumer's checkpoint). */
  name: string;
  /** The code that produced the rows (see {@link ProjectionState.schema}). */
  schema: string;
  /** The checkpoint the update was computed from; the save fails (returns false) if it moved. */
  expectedCheckpoint: number;
  /** The checkpoint saved with the rows: the position of the last event they include. */
  checkpoint: number;
  /** Rows to add or replace, by key. */
  upserts: Map<string, Row>;
  /**
   * What `loadProjection` returns of an upserted row, where a listing needs less than the row (a pod's
   * columns, where the row is its whole snapshot): stored beside it, so that loading every row reads and
   * parses only this. `loadProjectionRow` returns the whole row. Without it, `loadProjection` returns
   * whole rows.
   */
  summarise?: (row: Row) => unknown;
  /** Keys whose rows are removed (applied before the upserts; a key in both ends up upserted). */
  deletes?: string[];
  /** Drop every row first (a rebuild). */
  reset?: boolean;
}

/**
 * The event store port: the one interface podlog's SQLite and PostgreSQL adapters implement, with the
 * semantics at the top of this module. Its methods fail with `PodlogError`s: ESTORE_UNAVAILABLE when
 * the store cannot be reached (a PostgreSQL restart: try again), ESTORE_BAD_INPUT for a call that is
 * wrong whatever the log holds (an event without a type, a bad time), ESTORE_BUSY, ESTORE_FULL,
 * ESTORE_IO, ESTORE_READONLY or ESTORE_CORRUPT for what the database reports.
 */
export interface EventStore {
  /** The adapter: `sqlite` or `postgres`. */
  readonly kind: string;
  /** Where the log lives, for messages (a file path or a connection string without password). */
  readonly location: string;
  /**
   * Appends `events` to `stream` in one transaction, if the stream is at `expected`.
   *
   * @throws {@link WrongExpectedVersion} when it is not; nothing is written.
   */
  append(stream: string, events: NewEvent[], expected: ExpectedVersion): Promise<AppendResult>;
  /**
   * Appends to several streams in one transaction (not in KurrentDB: see the top of this file). Every
   * stream's expected version is checked, exactly as `append` checks it; if one fails, WrongExpectedVersion
   * names that stream and nothing at all is written. The events get consecutive positions in the order
   * given (the first stream's events, then the second's, …), subscribers are woken once, and the results
   * are in the same order. A stream may be named once per call (ESTORE_BAD_INPUT otherwise); a stream
   * with no events is only checked.
   */
  appendMany(appends: StreamAppend[]): Promise<AppendResult[]>;
  /** A stream's events in version order (none for a stream that does not exist). */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** Events of the whole log after a position, in position order, with only their metadata's time. */
  readAll(options: ReadAllOptions & { metadata: 'time' }): Promise<TimedEvent[]>;
  /** Events of the whole log after a position, in position order, at most `limit` (1000) of them. */
  readAll(options?: ReadAllOptions & { metadata?: 'all' }): Promise<RecordedEvent[]>;
  /** Streams whose name starts with prefix (all streams without one), sorted by name (byte order). */
  listStreams(prefix?: string): Promise<StreamInfo[]>;
  /** A stream's version (0 for one that does not exist). */
  streamVersion(stream: string): Promise<number>;
  /** The position of the last committed event (0 for an empty log). */
  headPosition(): Promise<number>;
  /**
   * Resolves once an event with a position greater than `after` may exist (it can wake spuriously),
   * including events committed by other processes, or when the signal aborts.
   */
  waitForChange(after: number, signal: AbortSignal): Promise<void>;
  /** Every row of a projection: its summary where it was saved with one (ProjectionUpdate.summarise). */
  loadProjection<Row>(name: string): Promise<ProjectionState<Row>>;
  /** One whole row of a projection, with the projection's schema (undefined if there is no such row). */
  loadProjectionRow<Row>(name: string, key: string): Promise<{
    /** The projection's schema. */
    schema: string;
    /** The whole row. */
    row: Row;
  } | undefined>;
  /** The whole rows of these keys that a projection has (one query, for a catch-up that folds many on). */
  loadProjectionRows<Row>(name: string, keys: string[]): Promise<Map<string, Row>>;
  /**
   * Saves a projection's rows and checkpoint, if its checkpoint is still `expectedCheckpoint`.
   *
   * @returns false, saving nothing, when another process moved the checkpoint first.
   */
  saveProjection<Row>(update: ProjectionUpdate<Row>): Promise<boolean>;
  /**
   * The one exception to append-only (see the top of this file). In one transaction, for each stream: its
   * last event is replaced in place by the tombstone and every earlier event is removed. Throws
   * WrongExpectedVersion, changing nothing, if a stream is not at its expected version (or does not exist).
   */
  compactStreams(compactions: StreamCompaction[]): Promise<CompactedStream[]>;
  /**
   * After a compaction: rewrites the log so that what was removed is unrecoverable and its space given
   * back (SQLite: VACUUM, about 1 s per 50 MB of log, during which other writers wait). Returns the log's
   * size in bytes before and after.
   */
  reclaimSpace(): Promise<{
    /** The log's size before, in bytes. */
    before: number;
    /** And after. */
    after: number;
  }>;
  /** Closes the store (its file or its connections); it is not to be used after. */
  close(): Promise<void>;
}

/** An append whose expected version did not match: typed so that callers can re-fold and retry. */
export class WrongExpectedVersion extends Error {
  /** Stable, as `PodlogError`'s codes. */
  readonly code = 'EWRONG_EXPECTED_VERSION';
  constructor(
    /** The stream appended to. */
    readonly stream: string,
    /** What the append expected of it. */
    readonly expected: ExpectedVersion,
    /** Its version when the append was tried. */
    readonly actual: number,
  ) {
    super(`append to ${stream} expected version ${String(expected)} but the stream is at version ${actual}`);
    this.name = 'WrongExpectedVersion';
  }
}

/** Whether a stream at version `actual` satisfies `expected`. */
export const versionMatches = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return actual === 0;
    case 'stream_exists':
      return actual > 0;
    default:
      return expected === actual;
  }
};
