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
 */

export type ExpectedVersion = 'any' | 'no_stream' | 'stream_exists' | number;

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
  startTicks?: number;
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

export interface NewEvent {
  type: string;
  /** Version of the event's schema, from the catalogue. */
  schema: number;
  data: Record<string, unknown>;
  meta: EventMetadata;
}

export interface RecordedEvent extends NewEvent {
  stream: string;
  version: number;
  position: number;
}

/** One stream's part of an {@link EventStore.appendMany}. */
export interface StreamAppend {
  stream: string;
  events: NewEvent[];
  expected: ExpectedVersion;
}

/** An event read with only the time of its metadata (ReadAllOptions.metadata 'time'). */
export type TimedEvent = Omit<RecordedEvent, 'meta'> & { meta: Pick<EventMetadata, 'time'> };

export interface AppendResult {
  /** The stream's version after the append. */
  version: number;
  /** Global position of the last appended event. */
  position: number;
}

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
  /** Only events recorded at or after / before this time (ISO 8601). */
  since?: string;
  until?: string;
  /**
   * 'time': of each event's metadata, read its time alone (a TimedEvent). For a fold over much of the log
   * (a projection's catch-up), which reads nothing else of it: the rest is more than half of what such a
   * read would otherwise carry and parse.
   */
  metadata?: 'all' | 'time';
}

export interface ReadStreamOptions {
  /** First version to read (default 1). */
  from?: number;
  /** Last version to read, inclusive (default: the end). */
  to?: number;
}

export interface StreamInfo {
  stream: string;
  version: number;
  /** Position of the stream's last event. */
  position: number;
}

/** One stream to compact: it must be at `expected`, and its last event becomes `tombstone`. */
export interface StreamCompaction {
  stream: string;
  /** The version the caller judged the stream at (its last event is the one the tombstone replaces). */
  expected: number;
  /** Type, schema and data of the tombstone; it keeps the replaced event's version, position and metadata. */
  tombstone: Pick<NewEvent, 'type' | 'schema' | 'data'>;
}

export interface CompactedStream {
  stream: string;
  /** How many events were removed (the tombstone is not counted). */
  removed: number;
}

export interface ProjectionState<Row> {
  checkpoint: number;
  /** Identifies the code that produced the rows; a different one means "rebuild from scratch". */
  schema: string;
  rows: Map<string, Row>;
}

export interface ProjectionUpdate<Row> {
  name: string;
  schema: string;
  /** The checkpoint the update was computed from; the save fails (returns false) if it moved. */
  expectedCheckpoint: number;
  checkpoint: number;
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

export interface EventStore {
  readonly kind: string;
  /** Where the log lives, for messages (a file path or a connection string without password). */
  readonly location: string;
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
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  readAll(options: ReadAllOptions & { metadata: 'time' }): Promise<TimedEvent[]>;
  readAll(options?: ReadAllOptions & { metadata?: 'all' }): Promise<RecordedEvent[]>;
  /** Streams whose name starts with prefix (all streams without one), sorted by name (byte order). */
  listStreams(prefix?: string): Promise<StreamInfo[]>;
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
  loadProjectionRow<Row>(name: string, key: string): Promise<{ schema: string; row: Row } | undefined>;
  /** The whole rows of these keys that a projection has (one query, for a catch-up that folds many on). */
  loadProjectionRows<Row>(name: string, keys: string[]): Promise<Map<string, Row>>;
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
  reclaimSpace(): Promise<{ before: number; after: number }>;
  close(): Promise<void>;
}

/** An append whose expected version did not match: typed so that callers can re-fold and retry. */
export class WrongExpectedVersion extends Error {
  readonly code = 'EWRONG_EXPECTED_VERSION';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
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
