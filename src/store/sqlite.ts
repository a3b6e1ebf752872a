/**
 * The embedded default event store: one SQLite file (better-sqlite3 12.x), WAL mode, synchronous=FULL.
 *
 * - Every append is one `BEGIN IMMEDIATE` transaction: SQLite has a single writer at a time, so the
 *   expected-version check, the inserts and the commit are serialised across every process that opens the
 *   file, and the global position (the events table's rowid, max+1; compaction never deletes the max) follows
 *   commit order.
 * - `busy_timeout` makes concurrent writers wait for the write lock instead of failing. better-sqlite3 is
 *   synchronous: a writer waiting for the lock blocks its event loop for that long (at most busyTimeoutMs).
 * - Wake-ups across processes: `PRAGMA data_version` changes when another connection commits; it is polled
 *   every `pollMs` while somebody waits. Appends through any store object of this process wake at once.
 * - An existing file is judged before anything is written to it (see sqlite-schema.ts): a corrupt file,
 *   another program's database, or a newer podlog's store is refused with its bytes untouched.
 */
import Database from 'better-sqlite3';
import { chmodSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
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
import {
  APPLICATION_ID,
  SCHEMA_VERSION,
  judgeProbe,
  migrationSql,
  notAStore,
  probeFile,
} from './sqlite-schema.js';
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
  type SavedRow,
  type SerialisedCompaction,
  type SerialisedEvent,
} from './validate.js';

export interface SqliteStoreOptions {
  /** Open an existing store for inspection only: appends and projection saves throw ESTORE_READONLY. */
  readonly?: boolean;
  /** How often `waitForChange` polls for commits by other processes (default 15 ms). */
  pollMs?: number;
  /** How long a writer waits for another process's write lock before ESTORE_BUSY (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * FULL (default): a committed append survives power loss. NORMAL: much faster, stays consistent, but the
   * last commits before a power loss (not a process crash) may be rolled back.
   */
  synchronous?: 'FULL' | 'NORMAL';
}

type Db = Database.Database;
type Stmt = Database.Statement;

/**
 * better-sqlite3's addon, by its path in the package: the CLI's bundle holds better-sqlite3's
 * JavaScript (one script starts faster than its dozen modules found one by one), and a bundled copy
 * would look for its addon (the `bindings` package's search) from the bundle's directory.
 */
let addonPath: string | undefined;
const nativeBinding = (): string =>
  (addonPath ??= join(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node'));

/**
 * An object whose properties are made at their first read: statements are prepared when first used
 * (a `podlog list` uses a handful of the store's twenty, and each costs SQLite a parse).
 */
const lazily = <T extends object>(makers: { [K in keyof T]: () => T[K] }): T => {
  const made = {} as T;
  for (const key of Object.keys(makers) as Array<keyof T>) {
    Object.defineProperty(made, key, {
      configurable: true,
      get: () => {
        const value = makers[key]();
        Object.defineProperty(made, key, { value });
        return value;
      },
    });
  }
  return made;
};

const DEFAULT_POLL_MS = 15;
const DEFAULT_BUSY_MS = 5000;
const DEFAULT_READ_LIMIT = 1000;

/** Translates SQLite's errors into the engine's; our own errors pass through. */
const mapError = (file: string, e: unknown): unknown => {
  if (e instanceof PodlogError || e instanceof WrongExpectedVersion) return e;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return e;
  const msg = (e as Error).message;
  if (code === 'SQLITE_NOTADB') return notAStore(file, 'file is not a database', e);
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new PodlogError('ESTORE_CORRUPT', `the event store ${file} is damaged: ${msg}`, { cause: e });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new PodlogError('ESTORE_BUSY', `the event store ${file} stayed locked by another process: ${msg}`, { cause: e });
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return new PodlogError('ESTORE_READONLY', `the event store ${file} cannot be written: ${msg}`, { cause: e });
  }
  if (code === 'SQLITE_FULL') {
    return new PodlogError('ESTORE_FULL', `the event store ${file} cannot grow: the disk is full`, { cause: e });
  }
  return new PodlogError('ESTORE_IO', `the event store ${file} failed: ${msg} (${code})`, { cause: e });
};

/** One serialised event as the INSERT's parameters. */
type Row = [id: string, type: string, schema: number, timeMs: number, data: string, meta: string];

const rowOf = (r: SerialisedEvent): Row => [r.id, r.type, r.schema, r.timeMs, r.data, r.meta];


interface RowAppend {
  stream: string;
  rows: Row[];
  expected: ExpectedVersion;
}

type EventRow = [position: number, stream: string, version: number, type: string, schema: number, data: string, meta: string];
const EVENT_COLUMNS = 'position, stream, version, type, schema, data, meta';

/** One literal per event, in one key order: the fold reads events of one shape. */
const eventOf = <M>(r: EventRow, meta: M) => ({
  stream: r[1],
  version: r[2],
  position: r[0],
  type: r[3],
  schema: r[4],
  data: JSON.parse(r[5]) as Record<string, unknown>,
  meta,
});
const toEvent = (r: EventRow): RecordedEvent => eventOf(r, JSON.parse(r[6]) as EventMetadata);
/** For an EventRow whose last column is the metadata's time (ReadAllOptions.metadata 'time'). */
const toTimedEvent = (r: EventRow): TimedEvent => eventOf(r, { time: r[6] });

interface Waiter {
  after: number;
  finish: () => void;
}

/** Every open store object of this process, by file: an append wakes the waiters of all of them at once. */
const openStores = new Map<string, Set<SqliteEventStore>>();

const peersOf = (file: string): Set<SqliteEventStore> => {
  let set = openStores.get(file);
  if (set === undefined) openStores.set(file, (set = new Set()));
  return set;
};

interface DbState {
  appId: number;
  objects: number;
  /** meta.schema_version, undefined when there is no meta table. */
  version: number | undefined;
}

/** Reads (never writes) what the connection's database is. */
const inspect = (db: Db, file: string): DbState => {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const objects = db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() as number;
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").pluck().get();
  let version: number | undefined;
  if (hasMeta !== undefined && appId === APPLICATION_ID) {
    const v = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get() as string | undefined;
    version = v === undefined ? undefined : Number(v);
    if (version !== undefined && !Number.isInteger(version)) {
      throw notAStore(file, `its schema version is not a number (${JSON.stringify(v)})`);
    }
  }
  return { appId, objects, version };
};

const judge = (file: string, s: DbState): void => judgeProbe(file, s.appId, s.objects === 0, s.version);

/** Opens (creating and initialising it if missing or empty) the SQLite event store in `file`. */
export const openSqliteStoreSync = (file: string, options: SqliteStoreOptions = {}): SqliteEventStore => {
  const path = resolve(file);
  const readonly = options.readonly === true;
  const busyMs = options.busyTimeoutMs ?? DEFAULT_BUSY_MS;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const synchronous = options.synchronous ?? 'FULL';
  if (!Number.isInteger(busyMs) || busyMs < 0) throw badInput(`busyTimeoutMs must be a whole number of ms, not ${String(busyMs)}`);
  if (!(pollMs > 0 && Number.isFinite(pollMs))) throw badInput(`pollMs must be a positive number of ms, not ${String(pollMs)}`);
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw badInput(`synchronous must be FULL or NORMAL, not ${String(synchronous)}`);
  const probe = probeFile(path);
  if (readonly && (probe.kind === 'missing' || probe.kind === 'empty')) {
    throw new PodlogError('ESTORE_NOT_FOUND', `there is no podlog event store in ${path} yet`);
  }
  if (probe.kind === 'sqlite') judgeProbe(path, probe.appId, probe.schemaEmpty, probe.userVersion);
  if (probe.kind === 'wal') {
    // The header may be stale: ask SQLite, read-only (a read-write connection would checkpoint on close).
    let ro: Db | undefined;
    try {
      ro = new Database(path, { readonly: true, fileMustExist: true, nativeBinding: nativeBinding() });
      ro.pragma(`busy_timeout = ${busyMs}`);
      judge(path, inspect(ro, path));
    } catch (e) {
      throw mapError(path, e);
    } finally {
      ro?.close();
    }
  }

  let db: Db;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly, nativeBinding: nativeBinding() });
  } catch (e) {
    const mapped = mapError(path, e);
    throw mapped instanceof PodlogError && mapped.code !== 'ESTORE_IO'
      ? mapped
      : new PodlogError('ESTORE_OPEN', `cannot open the event store ${path}: ${(e as Error).message}`, { cause: e });
  }
  let applied: number[] = [];
  try {
    db.pragma(`busy_timeout = ${busyMs}`);
    // Reads only, before any pragma that writes: the authoritative check.
    const state = inspect(db, path);
    judge(path, state);
    if (!readonly) ownerOnly(path);
    if (readonly) {
      if (state.version === undefined) {
        throw new PodlogError('ESTORE_NOT_FOUND', `there is no podlog event store in ${path} yet`);
      }
    } else {
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') {
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal') {
          throw new PodlogError('ESTORE_OPEN', `cannot put the event store ${path} in WAL mode (got ${String(mode)})`);
        }
      }
      db.pragma(`synchronous = ${synchronous}`);
      if (state.version === undefined || state.version < SCHEMA_VERSION) {
        db.transaction(() => {
          const now = inspect(db, path); // another process may have initialised it meanwhile
          judge(path, now);
          if (now.version === SCHEMA_VERSION) return;
          // The schema's versions are consecutive: version 1's SQL, then one migration a version.
          applied = Array.from({ length: SCHEMA_VERSION - (now.version ?? 0) }, (_, i) => (now.version ?? 0) + 1 + i);
          db.exec(migrationSql(now.version ?? 0));
          db.pragma(`application_id = ${APPLICATION_ID}`);
          db.pragma(`user_version = ${SCHEMA_VERSION}`);
          const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
          put.run('schema_version', String(SCHEMA_VERSION));
          db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('created', new Date().toISOString());
        }).immediate();
      }
    }
    return new SqliteEventStore(db, path, readonly ? state.version! : SCHEMA_VERSION, readonly, pollMs, peersOf(path), applied);
  } catch (e) {
    db.close();
    throw mapError(path, e);
  }
};

/**
 * The log records who ran what (command lines, users): owner only. Also tightens a file made by an older
 * podlog; -wal and -shm take the database's mode when SQLite creates them.
 */
const ownerOnly = (path: string): void => {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    let st;
    try {
      st = statSync(file);
    } catch {
      continue; // not created yet
    }
    if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(file, st.mode & 0o700);
  }
};

/**
 * An empty log kept in memory: what a verb that only reads sees of a data dir without a log, so that it
 * creates nothing. It takes projection saves (and appends) like any other and forgets them on close;
 * `location` names it in messages.
 */
export const openMemorySqliteStore = (location: string): SqliteEventStore => {
  const db = new Database(':memory:', { nativeBinding: nativeBinding() });
  db.exec(migrationSql(0));
  return new SqliteEventStore(db, location, SCHEMA_VERSION, false, DEFAULT_POLL_MS, new Set()); // nobody else sees it
};

/** Async form of {@link openSqliteStoreSync} (the work is synchronous; this only fits the other adapters). */
export const openSqliteStore = async (file: string, options: SqliteStoreOptions = {}): Promise<SqliteEventStore> =>
  openSqliteStoreSync(file, options);

export class SqliteEventStore implements EventStore {
  readonly kind = 'sqlite';
  private closed = false;
  private readonly waiters = new Set<Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private lastDataVersion = -1;
  private readonly readAllCache = new Map<string, Stmt>();

  private readonly s: {
    streamRow: Stmt;
    streamVersion: Stmt;
    upsertStream: Stmt;
    readStream: Stmt;
    head: Stmt;
    dataVersion: Stmt;
    listAll: Stmt;
    listPrefix: Stmt;
    listRange: Stmt;
    projection: Stmt;
    projectionCheckpoint: Stmt;
    projectionRows: Stmt;
    projectionRow: Stmt;
    projectionRowsOf: Stmt;
    deleteRows: Stmt;
    deleteRow: Stmt;
    upsertRow: Stmt;
    upsertProjection: Stmt;
    deleteBefore: Stmt;
    replaceEvent: Stmt;
  };
  private readonly appendTx: (stream: string, rows: Row[], expected: ExpectedVersion) => AppendResult;
  private readonly appendManyTx: (appends: RowAppend[]) => AppendResult[];
  private readonly loadTx: (name: string) => { head: [string, number] | undefined; rows: [string, string][] };
  private readonly saveTx: (u: ProjectionUpdate<unknown>, rows: SavedRow[]) => boolean;
  private readonly compactTx: (compactions: SerialisedCompaction[]) => CompactedStream[];

  /** Use {@link openSqliteStore}. */
  constructor(
    private readonly db: Db,
    readonly location: string,
    /** The file's schema version: an older one only when opened read-only. */
    readonly schemaVersion: number,
    readonly readonly: boolean,
    private readonly pollMs: number,
    /** The store objects of this process on the same log (this one included), woken by its appends. */
    private readonly peers: Set<SqliteEventStore>,
    /** The schema versions this open applied (`podlog log migrate` reports them). */
    readonly migrationsApplied: readonly number[] = [],
  ) {
    const p = (sql: string): Stmt => db.prepare(sql);
    // A whole row: its details where it was saved with a summary. Schema 1 has no details: a read-only
    // open of such a log reads its rows as podlog 1 did.
    const [wholeRow, joinDetails] =
      schemaVersion >= 2 ? ['coalesce(d.row, r.row)', 'LEFT JOIN projection_details d ON d.name = r.name AND d.key = r.key'] : ['r.row', ''];
    this.s = lazily({
      streamRow: () => p('SELECT version, position FROM streams WHERE stream = ?').raw(),
      streamVersion: () => p('SELECT version FROM streams WHERE stream = ?').pluck(),
      upsertStream: () => p(
        'INSERT INTO streams (stream, version, position) VALUES (?, ?, ?) ' +
          'ON CONFLICT (stream) DO UPDATE SET version = excluded.version, position = excluded.position',
      ),
      readStream: () => p(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE stream = ? AND version >= ? AND version <= ? ORDER BY version`,
      ).raw(),
      head: () => p('SELECT coalesce(max(position), 0) FROM events').pluck(),
      dataVersion: () => p('PRAGMA data_version').pluck(),
      listAll: () => p('SELECT stream, version, position FROM streams ORDER BY stream'),
      listPrefix: () => p(
        'SELECT stream, version, position FROM streams WHERE stream >= @p AND substr(stream, 1, length(@p)) = @p ORDER BY stream',
      ),
      listRange: () => p('SELECT stream, version, position FROM streams WHERE stream >= @p AND stream < @q ORDER BY stream'),
      projection: () => p('SELECT schema, checkpoint FROM projections WHERE name = ?').raw(),
      projectionCheckpoint: () => p('SELECT checkpoint FROM projections WHERE name = ?').pluck(),
      projectionRows: () => p('SELECT key, row FROM projection_rows WHERE name = ?').raw(),
      projectionRow: () => p(
        `SELECT p.schema, ${wholeRow} FROM projection_rows r JOIN projections p ON p.name = r.name ${joinDetails} WHERE r.name = ? AND r.key = ?`,
      ).raw(),
      projectionRowsOf: () => p(`SELECT r.key, ${wholeRow} FROM projection_rows r ${joinDetails} WHERE r.name = ? AND r.key IN (SELECT value FROM json_each(?))`).raw(),
      deleteRows: () => p('DELETE FROM projection_rows WHERE name = ?'),
      deleteRow: () => p('DELETE FROM projection_rows WHERE name = ? AND key = ?'),
      upsertRow: () => p(
        'INSERT INTO projection_rows (name, key, row) VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET row = excluded.row',
      ),
      upsertProjection: () => p(
        'INSERT INTO projections (name, schema, checkpoint) VALUES (?, ?, ?) ' +
          'ON CONFLICT (name) DO UPDATE SET schema = excluded.schema, checkpoint = excluded.checkpoint',
      ),
      deleteBefore: () => p('DELETE FROM events WHERE stream = ? AND version < ?'),
      replaceEvent: () => p('UPDATE events SET type = ?, schema = ?, data = ? WHERE stream = ? AND version = ?'),
    });

    const s = this.s;
    const appendRows = (stream: string, rows: Row[], expected: ExpectedVersion): AppendResult => {
      const current = s.streamRow.get(stream) as [number, number] | undefined;
      const actual = current?.[0] ?? 0;
      if (!versionMatches(expected, actual)) throw new WrongExpectedVersion(stream, expected, actual);
      if (rows.length === 0) return { version: actual, position: current?.[1] ?? 0 };
      let version = actual;
      let position = 0;
      // Multi-row INSERTs (chunks of 32, 8, then 1): fewer statement steps for batches. Positions within
      // one statement are consecutive rowids, so the last rowid is the last event's position.
      for (let i = 0; i < rows.length; ) {
        const n = rows.length - i >= 32 ? 32 : rows.length - i >= 8 ? 8 : 1;
        const params: unknown[] = [];
        for (const r of rows.slice(i, i + n)) {
          version += 1;
          params.push(stream, version, r[0], r[1], r[2], r[3], r[4], r[5]);
        }
        position = Number(this.insertEvents(n).run(params).lastInsertRowid);
        i += n;
      }
      s.upsertStream.run(stream, version, position);
      return { version, position };
    };
    const append = db.transaction(appendRows);
    this.appendTx = (stream, rows, expected) => append.immediate(stream, rows, expected);
    // One after the other in one transaction: the positions follow the order given, and the first
    // refused version rolls back the streams already appended to.
    const appendMany = db.transaction((appends: RowAppend[]) => appends.map((a) => appendRows(a.stream, a.rows, a.expected)));
    this.appendManyTx = (appends) => appendMany.immediate(appends);

    const load = db.transaction((name: string) => ({
      head: s.projection.get(name) as [string, number] | undefined,
      rows: s.projectionRows.all(name) as [string, string][],
    }));
    this.loadTx = (name) => load.deferred(name);

    // Prepared on the first save: a read-only store of schema 1 has no projection_details to prepare them on.
    let details: { upsert: Stmt; delete: Stmt; deleteAll: Stmt } | undefined;
    const save = db.transaction((u: ProjectionUpdate<unknown>, rows: SavedRow[]): boolean => {
      const current = (s.projectionCheckpoint.get(u.name) as number | undefined) ?? 0;
      if (current !== u.expectedCheckpoint) return false;
      details ??= {
        upsert: p('INSERT INTO projection_details (name, key, row) VALUES (?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET row = excluded.row'),
        delete: p('DELETE FROM projection_details WHERE name = ? AND key = ?'),
        deleteAll: p('DELETE FROM projection_details WHERE name = ?'),
      };
      if (u.reset === true) {
        s.deleteRows.run(u.name);
        details.deleteAll.run(u.name);
      } else {
        for (const key of u.deletes ?? []) {
          s.deleteRow.run(u.name, key);
          details.delete.run(u.name, key);
        }
      }
      for (const [key, listed, whole] of rows) {
        s.upsertRow.run(u.name, key, listed);
        if (whole === null) details.delete.run(u.name, key);
        else details.upsert.run(u.name, key, whole);
      }
      s.upsertProjection.run(u.name, u.schema, u.checkpoint);
      return true;
    });
    this.saveTx = (u, rows) => save.immediate(u, rows);

    // The stream's last row stays (replaced in place), so max(position) never goes down and the next
    // append still gets a position after every event ever written.
    const compact = db.transaction((compactions: SerialisedCompaction[]): CompactedStream[] =>
      compactions.map((c) => {
        const actual = (s.streamVersion.get(c.stream) as number | undefined) ?? 0;
        if (actual !== c.expected) throw new WrongExpectedVersion(c.stream, c.expected, actual);
        const removed = s.deleteBefore.run(c.stream, c.expected).changes;
        s.replaceEvent.run(c.type, c.schema, c.data, c.stream, c.expected);
        return { stream: c.stream, removed };
      }),
    );
    this.compactTx = (compactions) => compact.immediate(compactions);

    peers.add(this);
  }

  private readonly insertCache = new Map<number, Stmt>();

  /** `INSERT INTO events … VALUES (…), (…), …` for n rows, prepared once. */
  private insertEvents(n: number): Stmt {
    let stmt = this.insertCache.get(n);
    if (stmt === undefined) {
      const values = Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
      stmt = this.db.prepare(`INSERT INTO events (stream, version, id, type, schema, time_ms, data, meta) VALUES ${values}`);
      this.insertCache.set(n, stmt);
    }
    return stmt;
  }

  private live(): void {
    checkUsable({ closed: this.closed, readonly: this.readonly, location: this.location });
  }

  private writable(what: string): void {
    checkUsable({ closed: this.closed, readonly: this.readonly, location: this.location }, what);
  }

  /** Runs `fn`, translating SQLite's errors. */
  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw mapError(this.location, e);
    }
  }

  async append(stream: string, events: NewEvent[], expected: ExpectedVersion): Promise<AppendResult> {
    this.writable(`append to ${String(stream)}`);
    const rows = serialiseEvents(stream, events).map(rowOf);
    return this.appendWith([{ stream, rows, expected }], () => this.appendTx(stream, rows, expected));
  }

  async appendMany(appends: StreamAppend[]): Promise<AppendResult[]> {
    this.writable('append to several streams');
    const checked = checkAppends(appends).map((a) => ({ stream: a.stream, rows: a.rows.map(rowOf), expected: a.expected }));
    if (checked.length === 0) return [];
    return this.appendWith(checked, () => this.appendManyTx(checked));
  }

  /** Runs an append's transaction, then wakes this process's waiters once if it wrote anything. */
  private appendWith<T extends AppendResult | AppendResult[]>(appends: RowAppend[], tx: () => T): T {
    let result: T;
    try {
      result = tx();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' && /events\.id/.test((e as Error).message)) {
        throw duplicateEvent(appends.map((a) => a.stream), appends.flatMap((a) => a.rows.map((r) => r[0])), e);
      }
      throw mapError(this.location, e);
    }
    if (appends.some((a) => a.rows.length > 0)) {
      const head = [result].flat().reduce((max, r) => Math.max(max, r.position), 0);
      for (const store of this.peers) store.wake(head);
    }
    return result;
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.live();
    const from = Math.max(1, options.from ?? 1);
    const to = options.to ?? Number.MAX_SAFE_INTEGER;
    if (to < from) return [];
    return this.run(() => (this.s.readStream.all(stream, from, to) as EventRow[]).map(toEvent));
  }

  readAll(options: ReadAllOptions & { metadata: 'time' }): Promise<TimedEvent[]>;
  readAll(options?: ReadAllOptions & { metadata?: 'all' }): Promise<RecordedEvent[]>;
  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[] | TimedEvent[]> {
    this.live();
    const where = ['position > @after'];
    const params: Record<string, unknown> = { after: options.after ?? 0 };
    const limit = options.limit ?? DEFAULT_READ_LIMIT;
    params['limit'] = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : -1;
    if (params['limit'] === 0) return [];
    if (options.streams !== undefined) {
      if (options.streams.length === 0) return [];
      where.push('stream IN (SELECT value FROM json_each(@streams))');
      params['streams'] = JSON.stringify(options.streams);
    }
    if (options.streamPrefix !== undefined && options.streamPrefix !== '') {
      where.push('stream >= @prefix AND substr(stream, 1, length(@prefix)) = @prefix');
      params['prefix'] = options.streamPrefix;
    }
    if (options.types !== undefined) {
      if (options.types.length === 0) return [];
      where.push('type IN (SELECT value FROM json_each(@types))');
      params['types'] = JSON.stringify(options.types);
    }
    if (options.since !== undefined) {
      where.push('time_ms >= @since');
      params['since'] = parseTime(options.since, 'since');
    }
    if (options.until !== undefined) {
      where.push('time_ms < @until');
      params['until'] = parseTime(options.until, 'until');
    }
    const timed = options.metadata === 'time';
    const columns = timed ? EVENT_COLUMNS.replace(/meta$/, "json_extract(meta, '$.time')") : EVENT_COLUMNS;
    const sql = `SELECT ${columns} FROM events WHERE ${where.join(' AND ')} ORDER BY position LIMIT @limit`;
    return this.run(() => {
      let stmt = this.readAllCache.get(sql);
      if (stmt === undefined) this.readAllCache.set(sql, (stmt = this.db.prepare(sql).raw()));
      const rows = stmt.all(params) as EventRow[];
      return timed ? rows.map(toTimedEvent) : rows.map(toEvent);
    });
  }

  async listStreams(prefix?: string): Promise<StreamInfo[]> {
    this.live();
    return this.run(() => {
      if (prefix === undefined || prefix === '') return this.s.listAll.all() as StreamInfo[];
      const upper = prefixUpperBound(prefix);
      return (upper === undefined ? this.s.listPrefix.all({ p: prefix }) : this.s.listRange.all({ p: prefix, q: upper })) as StreamInfo[];
    });
  }

  async streamVersion(stream: string): Promise<number> {
    this.live();
    return this.run(() => (this.s.streamVersion.get(stream) as number | undefined) ?? 0);
  }

  async headPosition(): Promise<number> {
    this.live();
    return this.run(() => this.s.head.get() as number);
  }

  waitForChange(after: number, signal: AbortSignal): Promise<void> {
    try {
      this.live();
      if (signal.aborted) return Promise.resolve();
      // data_version first, then the head: a commit between the two shows up as a changed data_version.
      const dataVersion = this.run(() => this.s.dataVersion.get() as number);
      if (this.run(() => this.s.head.get() as number) > after) return Promise.resolve();
      return new Promise<void>((resolveWait) => {
        const onAbort = (): void => waiter.finish();
        const waiter: Waiter = {
          after,
          finish: () => {
            if (!this.waiters.delete(waiter)) return;
            signal.removeEventListener('abort', onAbort);
            if (this.waiters.size === 0) this.stopPolling();
            resolveWait();
          },
        };
        this.waiters.add(waiter);
        signal.addEventListener('abort', onAbort, { once: true });
        if (this.timer === undefined) {
          this.lastDataVersion = dataVersion;
          this.timer = setInterval(() => this.poll(), this.pollMs);
        }
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private stopPolling(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private poll(): void {
    let head: number;
    try {
      const v = this.s.dataVersion.get() as number;
      if (v === this.lastDataVersion) return;
      this.lastDataVersion = v;
      head = this.s.head.get() as number;
    } catch {
      head = Number.POSITIVE_INFINITY; // wake everybody: their next read reports the error
    }
    this.wake(head);
  }

  /** Resolves the waiters that wait for something after a position below `head`. */
  private wake(head: number): void {
    for (const w of [...this.waiters]) if (head > w.after) w.finish();
  }

  async loadProjection<Row>(name: string): Promise<ProjectionState<Row>> {
    this.live();
    const { head, rows } = this.run(() => this.loadTx(name));
    const map = new Map<string, Row>();
    for (const r of rows) map.set(r[0], JSON.parse(r[1]) as Row);
    return { checkpoint: head?.[1] ?? 0, schema: head?.[0] ?? '', rows: map };
  }

  async loadProjectionRow<Row>(name: string, key: string): Promise<{ schema: string; row: Row } | undefined> {
    this.live();
    const found = this.run(() => this.s.projectionRow.get(name, key) as [string, string] | undefined);
    return found === undefined ? undefined : { schema: found[0], row: JSON.parse(found[1]) as Row };
  }

  async loadProjectionRows<Row>(name: string, keys: string[]): Promise<Map<string, Row>> {
    this.live();
    const found = this.run(() => this.s.projectionRowsOf.all(name, JSON.stringify(keys)) as [string, string][]);
    return new Map(found.map(([key, row]) => [key, JSON.parse(row) as Row]));
  }

  async saveProjection<Row>(update: ProjectionUpdate<Row>): Promise<boolean> {
    this.writable(`save the projection ${update.name}`);
    const rows = serialiseRows(update);
    return this.run(() => this.saveTx(update as ProjectionUpdate<unknown>, rows));
  }

  async compactStreams(compactions: StreamCompaction[]): Promise<CompactedStream[]> {
    this.writable('compact streams');
    const checked = checkCompactions(compactions);
    if (checked.length === 0) return [];
    return this.run(() => this.compactTx(checked));
  }

  async reclaimSpace(): Promise<{ before: number; after: number }> {
    this.writable('reclaim space');
    const size = (): number => (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
    return this.run(() => {
      const before = size();
      // Rewrites every page: removed events are neither in free pages nor in the slack of live ones.
      this.db.exec('VACUUM');
      return { before, after: size() };
    });
  }

  /** `PRAGMA integrity_check`: 'ok', or SQLite's list of problems. For tests and a future `podlog doctor`. */
  async integrityCheck(): Promise<string> {
    this.live();
    return this.run(() => (this.db.pragma('integrity_check', { simple: false }) as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join('\n'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.waiters]) w.finish(); // a spurious wake: the caller's next call says "closed"
    this.stopPolling();
    this.peers.delete(this);
    if (this.peers.size === 0 && openStores.get(this.location) === this.peers) openStores.delete(this.location);
    this.db.close();
  }
}
