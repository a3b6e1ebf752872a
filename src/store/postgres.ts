/**
 * The event store on PostgreSQL (pg 8, node-postgres): one log shared by many hosts.
 *
 * - A pool of connections serves appends, reads and projections; one more connection LISTENs for appends
 *   (postgres-wake.ts). Appends and projection saves are one statement each: stored functions installed by
 *   the schema's migrations (postgres-schema.ts), which run them in one transaction and one round trip.
 * - Positions come from one counter row locked by each append until it commits, so they are gapless and in
 *   commit order; postgres-schema.ts says why this and not transaction ids with snapshot checkpoints.
 * - The schema is created and migrated by the first open, under an advisory lock; a schema that is not a
 *   podlog log, or is a newer podlog's, is refused untouched. A read-only open creates and migrates nothing.
 * - The URL is libpq's (`postgres://user:password@host:port/db`; a unix socket's directory as a percent-encoded
 *   host, or `postgres:///db?host=/run/postgresql&user=U`), plus `?schema=NAME` (default `podlog`) to keep
 *   several logs in one database.
 * - Every connection runs READ COMMITTED whatever the server's default (a startup option added to the URL's
 *   own): the append's counter lock relies on re-reading the row another append committed while it waited,
 *   which REPEATABLE READ and SERIALIZABLE refuse.
 */
import pg from 'pg';
import { PodlogError } from '../errors.js';
import {
  WrongExpectedVersion,
  versionMatches,
  type AppendResult,
  type CompactedStream,
  type EventMetadata,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type ProjectionState,
  type ProjectionUpdate,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StreamAppend,
  type StreamCompaction,
  type StreamInfo,
  type TimedEvent,
} from './port.js';
import { PG_SCHEMA_VERSION, WRONG_VERSION, appendManyQuery, appendQuery, channelOf, checkMigrated, checkSchemaName, migrate, type ExpectedParam } from './postgres-schema.js';
import { ChangeListener } from './postgres-wake.js';
import {
  badInput,
  checkAppends,
  checkCompactions,
  checkUsable,
  duplicateEvent,
  parseTime,
  prefixUpperBound,
  serialiseEvents,
  serialiseRows,
  type SerialisedAppend,
  type SerialisedEvent,
} from './validate.js';

export interface PostgresStoreOptions {
  /**
   * Open an existing log for inspection only: nothing is created or migrated, appends and projection saves
   * throw ESTORE_READONLY, and the server runs every transaction read-only as well.
   */
  readonly?: boolean;
  /** The schema holding the log (default: the URL's `schema` parameter, else `podlog`). */
  schema?: string;
  /** Connections in the pool (default 10), besides the one that listens. */
  poolSize?: number;
  /** How often the head is polled while the LISTEN connection is down and somebody waits (default 500 ms). */
  pollMs?: number;
  /** First delay before reopening a dropped LISTEN connection (default 100 ms, doubling up to 5 s). */
  retryMs?: number;
}

/** Whether a store location is a PostgreSQL URL rather than a path. */
export const isPostgresUrl = (location: string): boolean => /^postgres(ql)?:\/\//.test(location);

interface Target {
  connectionString: string;
  schema: string;
  /** The URL without its password, for messages. */
  location: string;
}

const parseTarget = (url: string, schemaOption: string | undefined, readonly: boolean): Target => {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badInput(`${JSON.stringify(url)} is not a PostgreSQL URL (postgres://user@host:port/database)`);
  }
  if (!isPostgresUrl(url)) throw badInput(`${JSON.stringify(url)} is not a PostgreSQL URL: it must start with postgres:// or postgresql://`);
  const schema = checkSchemaName(schemaOption ?? u.searchParams.get('schema') ?? 'podlog');
  u.searchParams.delete('schema');
  const shown = new URL(u);
  shown.password = '';
  shown.searchParams.delete('password');
  shown.searchParams.set('schema', schema);
  const options = [u.searchParams.get('options'), '-c default_transaction_isolation=read\\ committed'];
  if (readonly) options.push('-c default_transaction_read_only=on');
  u.searchParams.set('options', options.filter((o) => o !== null).join(' '));
  return { connectionString: u.toString(), schema, location: shown.toString() };
};

/** bigint columns (positions, versions, times) as numbers: exact up to 2^53, far beyond any log. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** Failures to connect at all: whatever was to be sent was not. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P03']);
const NETWORK_CODES = new Set([...NOT_CONNECTED, 'ECONNRESET', 'ETIMEDOUT', 'EPIPE']);

/**
 * Translates pg's errors into the engine's; ours pass through. `inFlight` is added when a write may have been
 * sent and its fate is unknown.
 */
const mapError = (location: string, e: unknown, inFlight = ''): unknown => {
  if (e instanceof PodlogError || e instanceof WrongExpectedVersion || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  const unavailable = (): PodlogError => {
    const fate = typeof code === 'string' && NOT_CONNECTED.has(code) ? '' : inFlight;
    return new PodlogError('ESTORE_UNAVAILABLE', `the event store ${location} cannot be reached: ${e.message}${fate}`, { cause: e });
  };
  if (e instanceof pg.DatabaseError) {
    const state = code as string;
    if (state.startsWith('08') || state.startsWith('57P')) return unavailable();
    if (state === '22021' || state === '22P05') return badInput(`the event store ${location} cannot store this text: ${e.message}`);
    if (state.startsWith('28') || state === '3D000') {
      return new PodlogError('ESTORE_OPEN', `cannot open the event store ${location}: ${e.message}`, { cause: e });
    }
    if (state === '25006') return new PodlogError('ESTORE_READONLY', `the event store ${location} cannot be written: ${e.message}`, { cause: e });
    if (state === '53100') return new PodlogError('ESTORE_FULL', `the event store ${location} cannot grow: ${e.message}`, { cause: e });
    return new PodlogError('ESTORE_IO', `the event store ${location} failed: ${e.message} (SQLSTATE ${state})`, { cause: e });
  }
  if ((typeof code === 'string' && NETWORK_CODES.has(code)) || /Connection terminated|not queryable|connection error/i.test(e.message)) {
    return unavailable();
  }
  return e;
};

const IN_FLIGHT = '; an append in flight may or may not have been recorded (read the stream to know)';

/** NUL and lone surrogates cannot reach PostgreSQL's text intact (refused, or silently replaced by U+FFFD). */
const checkText = (value: string, what: string): void => {
  if (/\0|\p{Surrogate}/u.test(value)) throw badInput(`${what} ${JSON.stringify(value)} has a NUL or a lone surrogate, which PostgreSQL cannot store`);
};

const checkRows = (stream: string, rows: SerialisedEvent[]): void => {
  checkText(stream, 'the stream name');
  for (const r of rows) {
    checkText(r.id, `the event id in ${stream}`);
    checkText(r.type, `the event type in ${stream}`);
  }
};

const expectedParam = (expected: ExpectedVersion): ExpectedParam =>
  typeof expected === 'number'
    ? { exact: true, value: Number.isSafeInteger(expected) ? String(expected) : null }
    : { exact: false, value: String(expected) };

type EventRow = [position: number, stream: string, version: number, type: string, schema: number, data: string, meta: string];

/** One literal per event, in one key order: the fold reads events of one shape. */
const eventOf = <M>([position, stream, version, type, schema, data]: EventRow, meta: M) => ({
  stream,
  version,
  position,
  type,
  schema,
  data: JSON.parse(data) as Record<string, unknown>,
  meta,
});
const recorded = (r: EventRow): RecordedEvent => eventOf(r, JSON.parse(r[6]) as EventMetadata);
/** For an EventRow whose last column is the metadata's time (ReadAllOptions.metadata 'time'). */
const timedEvent = (r: EventRow): TimedEvent => eventOf(r, { time: r[6] });

const DEFAULT_READ_LIMIT = 1000;

/** Opens the log in `url`'s database, creating or migrating its schema first. */
export const openPostgresStore = async (url: string, options: PostgresStoreOptions = {}): Promise<PostgresEventStore> => {
  const readonly = options.readonly === true;
  const target = parseTarget(url, options.schema, readonly);
  const poolSize = options.poolSize ?? 10;
  const pollMs = options.pollMs ?? 500;
  const retryMs = options.retryMs ?? 100;
  if (!Number.isInteger(poolSize) || poolSize < 1) throw badInput(`poolSize must be a whole number of connections, not ${String(poolSize)}`);
  for (const [name, ms] of [['pollMs', pollMs], ['retryMs', retryMs]] as const) {
    if (!(ms > 0 && Number.isFinite(ms))) throw badInput(`${name} must be a positive number of ms, not ${String(ms)}`);
  }
  const config = { connectionString: target.connectionString, types, application_name: `podlog ${target.schema}` };
  // allowExitOnIdle: idle pooled connections do not keep a process alive that forgot to close the store.
  const pool = new pg.Pool({ ...config, max: poolSize, allowExitOnIdle: true });
  // An idle connection that dies (server restart, terminated backend) is dropped by the pool and replaced on
  // demand; without a listener its 'error' would end the process.
  pool.on('error', () => undefined);
  let applied: number[] = [];
  try {
    const client = await pool.connect();
    try {
      const encoding = (await client.query<{ server_encoding: string }>('SHOW server_encoding')).rows[0]?.server_encoding;
      if (encoding !== 'UTF8') {
        throw new PodlogError('ESTORE_OPEN', `cannot use the event store ${target.location}: its database's encoding is ${String(encoding)}, podlog needs UTF8`);
      }
      if (readonly) await checkMigrated(client, target.location, target.schema);
      else applied = await migrate(client, target.location, target.schema);
    } finally {
      client.release();
    }
  } catch (e) {
    await pool.end();
    const mapped = mapError(target.location, e);
    throw mapped instanceof PodlogError && mapped.code === 'ESTORE_UNAVAILABLE'
      ? new PodlogError('ESTORE_OPEN', `cannot open the event store ${target.location}: ${(e as Error).message}`, { cause: e })
      : mapped;
  }
  const listen = (): pg.Client => new pg.Client({ ...config, application_name: `podlog ${target.schema} listen` });
  return new PostgresEventStore(pool, target.location, target.schema, readonly, listen, pollMs, retryMs, applied);
};

export class PostgresEventStore implements EventStore {
  readonly kind = 'postgres';
  /** An open store is at this podlog's version: a write open migrates to it, a read-only one requires it. */
  readonly schemaVersion = PG_SCHEMA_VERSION;
  private closed = false;
  private readonly listener: ChangeListener;
  /** The quoted schema, to prefix table and function names. */
  private readonly s: string;
  /** Projection rows (r) with their details (d): a whole row is coalesce(d.row, r.row). */
  private readonly rowsWithDetails: string;

  /** Use {@link openPostgresStore}. */
  constructor(
    private readonly pool: pg.Pool,
    readonly location: string,
    readonly schema: string,
    readonly readonly: boolean,
    listenClient: () => pg.Client,
    pollMs: number,
    retryMs: number,
    /** The schema versions this open applied (`podlog log migrate` reports them). */
    readonly migrationsApplied: readonly number[] = [],
  ) {
    this.s = `"${schema}"`;
    this.rowsWithDetails = `${this.s}.projection_rows r LEFT JOIN ${this.s}.projection_details d ON d.name = r.name AND d.key = r.key`;
    this.listener = new ChangeListener({ client: listenClient, channel: channelOf(schema), head: () => this.readHead(), pollMs, retryMs });
  }

  private live(): void {
    checkUsable({ closed: this.closed, readonly: this.readonly, location: this.location });
  }

  private writable(what: string): void {
    checkUsable({ closed: this.closed, readonly: this.readonly, location: this.location }, what);
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    this.live();
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (e) {
      throw mapError(this.location, e);
    }
  }

  private async rows(text: string, values: unknown[]): Promise<unknown[][]> {
    this.live();
    try {
      return (await this.pool.query({ text, values, rowMode: 'array' })).rows as unknown[][];
    } catch (e) {
      throw mapError(this.location, e);
    }
  }

  async append(stream: string, events: NewEvent[], expected: ExpectedVersion): Promise<AppendResult> {
    this.writable(`append to ${String(stream)}`);
    const rows = serialiseEvents(stream, events);
    checkRows(stream, rows);
    if (rows.length === 0) {
      // Nothing to order: the committed version answers the check.
      const [current] = await this.query<{ version: number; position: number }>(`SELECT version, position FROM ${this.s}.streams WHERE stream = $1`, [stream]);
      const actual = current?.version ?? 0;
      if (!versionMatches(expected, actual)) throw new WrongExpectedVersion(stream, expected, actual);
      return { version: actual, position: current?.position ?? 0 };
    }
    const [r] = await this.appendWith([{ stream, expected, rows }], appendQuery(this.schema, stream, expectedParam(expected), rows));
    return r!;
  }

  async appendMany(appends: StreamAppend[]): Promise<AppendResult[]> {
    this.writable('append to several streams');
    const checked = checkAppends(appends);
    for (const a of checked) checkRows(a.stream, a.rows);
    if (checked.length === 0) return [];
    return this.appendWith(checked, appendManyQuery(this.schema, checked.map((a) => ({ ...a, expected: expectedParam(a.expected) }))));
  }

  /** Runs one of the append functions, translating its refusals, then wakes this process's waiters once. */
  private async appendWith(appends: SerialisedAppend[], query: pg.QueryConfig): Promise<AppendResult[]> {
    let results: AppendResult[];
    try {
      results = (await this.pool.query<AppendResult>(query)).rows;
    } catch (e) {
      if (e instanceof pg.DatabaseError && e.code === WRONG_VERSION) {
        // The single append's function names no stream: it has only one.
        const refused = appends[e.hint === undefined ? 0 : Number(e.hint) - 1]!;
        throw new WrongExpectedVersion(refused.stream, refused.expected, Number(e.detail));
      }
      if (e instanceof pg.DatabaseError && e.code === '23505' && e.constraint === 'events_id_key') {
        throw duplicateEvent(appends.map((a) => a.stream), appends.flatMap((a) => a.rows.map((r) => r.id)), e);
      }
      throw mapError(this.location, e, IN_FLIGHT);
    }
    if (results.length !== appends.length) {
      throw new PodlogError('ESTORE_IO', `the event store ${this.location} returned ${results.length} results for an append to ${appends.length} streams`);
    }
    if (appends.some((a) => a.rows.length > 0)) this.listener.wake(Math.max(...results.map((r) => r.position)));
    return results.map((r) => ({ version: r.version, position: r.position }));
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const from = Math.max(1, options.from ?? 1);
    const to = options.to ?? Number.MAX_SAFE_INTEGER;
    if (to < from) return [];
    const rows = await this.rows(
      `SELECT position, stream, version, type, schema, data, meta FROM ${this.s}.events WHERE stream = $1 AND version >= $2 AND version <= $3 ORDER BY version`,
      [stream, Math.ceil(from), Math.floor(to)],
    );
    return (rows as EventRow[]).map(recorded);
  }

  readAll(options: ReadAllOptions & { metadata: 'time' }): Promise<TimedEvent[]>;
  readAll(options?: ReadAllOptions & { metadata?: 'all' }): Promise<RecordedEvent[]>;
  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[] | TimedEvent[]> {
    this.live();
    const after = options.after ?? 0;
    if (!Number.isFinite(after)) throw badInput(`readAll's after must be a position, not ${String(after)}`);
    const limit = options.limit ?? DEFAULT_READ_LIMIT;
    if (limit <= 0 || options.streams?.length === 0 || options.types?.length === 0) return [];
    const values: unknown[] = [Math.floor(after)];
    const param = (v: unknown): string => `$${values.push(v)}`;
    const where = [`position > $1`];
    if (options.streams !== undefined) where.push(`stream = ANY (${param(options.streams)}::text[])`);
    if (options.streamPrefix !== undefined && options.streamPrefix !== '') where.push(this.prefixCondition(options.streamPrefix, param));
    if (options.types !== undefined) where.push(`type = ANY (${param(options.types)}::text[])`);
    if (options.since !== undefined) where.push(`time_ms >= ${param(parseTime(options.since, 'since'))}`);
    if (options.until !== undefined) where.push(`time_ms < ${param(parseTime(options.until, 'until'))}`);
    const limitSql = Number.isFinite(limit) ? `LIMIT ${param(Math.floor(limit))}` : '';
    const timed = options.metadata === 'time';
    const rows = await this.rows(
      `SELECT position, stream, version, type, schema, data, ${timed ? "meta::json->>'time'" : 'meta'} FROM ${this.s}.events WHERE ${where.join(' AND ')} ORDER BY position ${limitSql}`,
      values,
    );
    return timed ? (rows as EventRow[]).map(timedEvent) : (rows as EventRow[]).map(recorded);
  }

  /** `stream` starts with `prefix`, as an index range when it can be one (stream is COLLATE "C": byte order). */
  private prefixCondition(prefix: string, param: (v: unknown) => string): string {
    const upper = prefixUpperBound(prefix);
    return upper === undefined ? `starts_with(stream, ${param(prefix)})` : `stream >= ${param(prefix)} AND stream < ${param(upper)}`;
  }

  async listStreams(prefix?: string): Promise<StreamInfo[]> {
    const values: unknown[] = [];
    const where = prefix === undefined || prefix === '' ? '' : `WHERE ${this.prefixCondition(prefix, (v) => `$${values.push(v)}`)}`;
    return this.query<StreamInfo>(`SELECT stream, version, position FROM ${this.s}.streams ${where} ORDER BY stream`, values);
  }

  async streamVersion(stream: string): Promise<number> {
    const [row] = await this.query<{ version: number }>(`SELECT version FROM ${this.s}.streams WHERE stream = $1`, [stream]);
    return row?.version ?? 0;
  }

  async headPosition(): Promise<number> {
    return this.readHead();
  }

  private async readHead(): Promise<number> {
    const [row] = await this.query<{ position: number }>(`SELECT position FROM ${this.s}.head`);
    return row?.position ?? 0;
  }

  async waitForChange(after: number, signal: AbortSignal): Promise<void> {
    this.live();
    try {
      await this.listener.wait(after, signal);
    } catch (e) {
      throw mapError(this.location, e);
    }
  }

  async loadProjection<Row>(name: string): Promise<ProjectionState<Row>> {
    // One statement, so one snapshot: the checkpoint and the rows agree.
    const found = await this.rows(
      `SELECT p.schema, p.checkpoint, r.key, r.row FROM ${this.s}.projections p LEFT JOIN ${this.s}.projection_rows r ON r.name = p.name WHERE p.name = $1`,
      [name],
    );
    const rows = new Map<string, Row>();
    for (const [, , key, row] of found as [string, number, string | null, string | null][]) {
      if (key !== null) rows.set(key, JSON.parse(row!) as Row);
    }
    const head = found[0] as [string, number] | undefined;
    return { checkpoint: head?.[1] ?? 0, schema: head?.[0] ?? '', rows };
  }

  async loadProjectionRow<Row>(name: string, key: string): Promise<{ schema: string; row: Row } | undefined> {
    const [found] = await this.query<{ schema: string; row: string }>(
      `SELECT p.schema, coalesce(d.row, r.row) AS row FROM ${this.rowsWithDetails} JOIN ${this.s}.projections p ON p.name = r.name WHERE r.name = $1 AND r.key = $2`,
      [name, key],
    );
    return found === undefined ? undefined : { schema: found.schema, row: JSON.parse(found.row) as Row };
  }

  async loadProjectionRows<Row>(name: string, keys: string[]): Promise<Map<string, Row>> {
    const found = await this.rows(
      `SELECT r.key, coalesce(d.row, r.row) FROM ${this.rowsWithDetails} WHERE r.name = $1 AND r.key = ANY ($2::text[])`,
      [name, keys],
    );
    return new Map((found as [string, string][]).map(([key, row]) => [key, JSON.parse(row) as Row]));
  }

  async saveProjection<Row>(update: ProjectionUpdate<Row>): Promise<boolean> {
    this.writable(`save the projection ${update.name}`);
    const rows = serialiseRows(update);
    const [r] = await this.query<{ ok: boolean }>(`SELECT ${this.s}.save_projection($1, $2, $3, $4, $5, $6, $7, $8, $9) AS ok`, [
      update.name,
      update.schema,
      update.expectedCheckpoint,
      update.checkpoint,
      update.reset === true,
      update.deletes ?? [],
      rows.map((r) => r[0]),
      rows.map((r) => r[1]),
      rows.map((r) => r[2]),
    ]);
    return r?.ok === true;
  }

  async compactStreams(compactions: StreamCompaction[]): Promise<CompactedStream[]> {
    this.writable('compact streams');
    const checked = checkCompactions(compactions);
    if (checked.length === 0) return [];
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw mapError(this.location, e);
    }
    try {
      await client.query('BEGIN');
      // The counter's lock orders the compaction with appends, whose version checks it would otherwise race.
      await client.query(`SELECT position FROM ${this.s}.head FOR UPDATE`);
      const done: CompactedStream[] = [];
      for (const c of checked) {
        const actual = (await client.query<{ version: number }>(`SELECT version FROM ${this.s}.streams WHERE stream = $1`, [c.stream])).rows[0]?.version ?? 0;
        if (actual !== c.expected) throw new WrongExpectedVersion(c.stream, c.expected, actual);
        const removed = (await client.query(`DELETE FROM ${this.s}.events WHERE stream = $1 AND version < $2`, [c.stream, c.expected])).rowCount ?? 0;
        await client.query(`UPDATE ${this.s}.events SET type = $1, schema = $2, data = $3 WHERE stream = $4 AND version = $5`, [
          c.type,
          c.schema,
          c.data,
          c.stream,
          c.expected,
        ]);
        done.push({ stream: c.stream, removed });
      }
      await client.query('COMMIT');
      return done;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined); // the connection may be what failed
      throw mapError(this.location, e);
    } finally {
      client.release();
    }
  }

  /**
   * VACUUM FULL rewrites the events table into new files and unlinks the old ones, so compacted events are no
   * longer in the table's files. (The server's WAL and any backups keep them until they are recycled.)
   */
  async reclaimSpace(): Promise<{ before: number; after: number }> {
    this.writable('reclaim space');
    const size = async (): Promise<number> =>
      (
        await this.query<{ size: number }>(
          "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS size FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
          [this.schema],
        )
      )[0]?.size ?? 0;
    const before = await size();
    await this.query(`VACUUM FULL ${this.s}.events`);
    return { before, after: await size() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    await this.pool.end();
  }
}
