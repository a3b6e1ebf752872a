/**
 * The SQLite event store's file format: the schema, its version, and the checks run on an existing file
 * *before* anything is written to it (a corrupt file, somebody else's database, or a database written by a
 * newer podlog must be refused with its bytes untouched).
 */
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { PodlogError } from '../errors.js';

/** `PRAGMA application_id` of every podlog store: "PDLG" in ASCII. */
export const APPLICATION_ID = 0x50444c47;
/**
 * The first store schema, as podlog 1 created it; {@link MIGRATIONS} bring it to {@link SCHEMA_VERSION}. Kept
 * as it was: a new store is created by it and every migration, so that a new and a migrated store are alike.
 */
const SCHEMA_V1_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- position is the rowid: with one writer at a time (BEGIN IMMEDIATE) it is max+1, so positions follow
-- commit order. They are gap-free but for compacted streams, whose deletes never remove the last row.
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY,
  stream   TEXT    NOT NULL,
  version  INTEGER NOT NULL,
  id       TEXT    NOT NULL UNIQUE,
  type     TEXT    NOT NULL,
  schema   INTEGER NOT NULL,
  time_ms  INTEGER NOT NULL,  -- meta.time as Unix milliseconds, for since/until
  data     TEXT    NOT NULL,  -- JSON
  meta     TEXT    NOT NULL,  -- JSON (EventMetadata, verbatim)
  UNIQUE (stream, version)
);
-- No index on type or time_ms: every readAll is "after a position, in position order, LIMIT n", which the
-- rowid serves and stops early. An index on (type, position) made the planner collect and sort every
-- matching row for a non-selective type list, and each index costs 10-20% of the append rate.

CREATE TABLE IF NOT EXISTS streams (
  stream   TEXT PRIMARY KEY,
  version  INTEGER NOT NULL,
  position INTEGER NOT NULL   -- position of the stream's last event
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS projections (
  name       TEXT PRIMARY KEY,
  schema     TEXT NOT NULL,
  checkpoint INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS projection_rows (
  name TEXT NOT NULL,
  key  TEXT NOT NULL,
  row  TEXT NOT NULL,          -- JSON
  PRIMARY KEY (name, key)
) WITHOUT ROWID;
`;

/** Append only: a released podlog's migrations are never edited, a change is a new one. */
const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 2,
    // The whole rows of rows saved with a summary (ProjectionUpdate.summarise), which projection_rows then
    // holds: a table of their own, so that loading every summary reads none of their pages.
    sql: `
CREATE TABLE projection_details (
  name TEXT NOT NULL,
  key  TEXT NOT NULL,
  row  TEXT NOT NULL,          -- JSON
  PRIMARY KEY (name, key)
) WITHOUT ROWID;`,
  },
];

/** The store schema this code writes and reads. Also kept in `PRAGMA user_version` (readable from the header). */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The SQL that brings a store at schema `from` (0: an empty database) to {@link SCHEMA_VERSION}. */
export const migrationSql = (from: number): string =>
  [...(from < 1 ? [SCHEMA_V1_SQL] : []), ...MIGRATIONS.filter((m) => m.version > from).map((m) => m.sql)].join('\n');

export const notAStore = (file: string, why: string, cause?: unknown): PodlogError =>
  new PodlogError('ESTORE_CORRUPT', `${file} is not a podlog event store: ${why}`, { cause });

export const foreignStore = (file: string, appId: number): PodlogError =>
  new PodlogError(
    'ESTORE_FOREIGN',
    `${file} is not a podlog event store: it is another program's SQLite database (application id ${appId}); podlog will not touch it`,
  );

export const newerSchema = (file: string, found: number): PodlogError =>
  new PodlogError(
    'ESTORE_NEWER_SCHEMA',
    `${file} was written by a newer podlog: store schema version ${found}, this podlog supports up to version ${SCHEMA_VERSION}; upgrade podlog to read it`,
  );

/** What an existing file holds, judged without opening it through SQLite. */
export type FileProbe =
  | { kind: 'missing' }
  /** 0 bytes, or a SQLite database with no schema objects and no application id: free to initialise. */
  | { kind: 'empty' }
  /** A non-empty write-ahead log exists: the header may be stale, ask SQLite (read-only). */
  | { kind: 'wal' }
  | { kind: 'sqlite'; appId: number; userVersion: number; schemaEmpty: boolean };

const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

const fileSize = (path: string): number | undefined => {
  try {
    return statSync(path).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
};

/**
 * Reads the 100-byte database header (and page 1's b-tree header) with plain file I/O. SQLite is not
 * involved, so nothing can be written: no journal rollback, no -wal or -shm file.
 */
export const probeFile = (file: string): FileProbe => {
  let size: number | undefined;
  try {
    size = fileSize(file);
  } catch (e) {
    throw new PodlogError('ESTORE_OPEN', `cannot open the event store ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (size === undefined) return { kind: 'missing' };
  if (size === 0) return { kind: 'empty' };
  const head = Buffer.alloc(112);
  let n = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new PodlogError('ESTORE_OPEN', `cannot read the event store ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (n < 100 || !head.subarray(0, 16).equals(MAGIC)) throw notAStore(file, 'file is not a database');
  const rawPageSize = head.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) {
    throw notAStore(file, 'file is not a database (bad page size in the header)');
  }
  if ((fileSize(`${file}-wal`) ?? 0) > 0) return { kind: 'wal' };
  const appId = head.readInt32BE(68);
  const userVersion = head.readInt32BE(60);
  // Page 1 holds sqlite_schema's root: a table b-tree page (0x0d leaf, 0x05 interior) right after the header.
  const pageType = n >= 108 ? head[100] : undefined;
  if (pageType !== 0x0d && pageType !== 0x05) {
    throw notAStore(file, 'file is not a database (page 1 is damaged)');
  }
  const schemaEmpty = pageType === 0x0d && head.readUInt16BE(103) === 0;
  if (appId === 0 && schemaEmpty) return { kind: 'empty' };
  return { kind: 'sqlite', appId, userVersion, schemaEmpty };
};

/** Refuses a probed file that is not ours, or that is ours but newer. */
export const judgeProbe = (file: string, appId: number, schemaEmpty: boolean, version: number | undefined): void => {
  if (appId !== APPLICATION_ID) {
    if (appId === 0 && schemaEmpty) return;
    throw foreignStore(file, appId);
  }
  if (version !== undefined && version > SCHEMA_VERSION) throw newerSchema(file, version);
};
