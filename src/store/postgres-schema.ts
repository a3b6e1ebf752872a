/**
 * The PostgreSQL event store's schema: its versioned migrations, how they are applied on first use, and the
 * one statement an append is (shared with the tests that hold an append's transaction open).
 *
 * Everything lives in one PostgreSQL schema (default `podlog`), so that one database can hold several logs
 * and a test can make a fresh one in milliseconds. Every migration is applied once, in order, in one
 * transaction under an advisory lock, and recorded in `<schema>.migrations`: several podlog processes
 * opening a new log at once apply each migration exactly once, and a schema written by a newer podlog, or
 * one that holds somebody else's tables, is refused before anything is written to it.
 */
import type pg from 'pg';
import { PodlogError } from '../errors.js';
import type { SerialisedEvent } from './validate.js';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,39}$/;

/** A schema name podlog can use as it is in SQL and in a LISTEN channel (checked, so never injected). */
export const checkSchemaName = (schema: string): string => {
  if (!SCHEMA_NAME.test(schema)) {
    throw new PodlogError(
      'ESTORE_BAD_INPUT',
      `the PostgreSQL schema name ${JSON.stringify(schema)} is not usable: lower-case letters, digits and _, at most 40, not starting with a digit`,
    );
  }
  return schema;
};

/** The LISTEN/NOTIFY channel of a log: names the schema, since channels are per database. */
export const channelOf = (schema: string): string => `${schema}.appended`;

interface Migration {
  version: number;
  description: string;
  sql: (schema: string) => string;
}

/** The SQLSTATE of a refused expected version (the DETAIL is the stream's actual version). */
export const WRONG_VERSION = 'PDLG1';

/**
 * Append, in one statement (one round trip, one transaction when autocommitted):
 *
 * Positions come from one counter row (`head`), as in commanded/eventstore, not from a sequence. An append
 * locks that row first and holds the lock until it commits, so appends commit one at a time, in position
 * order: when a reader sees position P, every position below P is already committed, and `position > last`
 * never skips an event that commits later with a smaller position (the trap of a bigserial, whose values are
 * taken at insert time and committed in any order). A failed append rolls its counter update back, so
 * positions have no gaps either. The cost is that appends to different streams do not overlap in time (the
 * commit's WAL flush included); the alternative, pg_current_xact_id() with a snapshot-xmin checkpoint, lets
 * appends overlap but makes every reader carry a (transaction, position) pair and hold back events behind the
 * oldest open transaction, and the port's plain `after: position` could no longer be exact. podlog appends
 * a few events per pod transition: a single ordered writer is far from its bottleneck.
 *
 * The version check runs under the same lock, so it is exact under any concurrency; unique (stream, version)
 * backs it. A mismatch raises {@link WRONG_VERSION}, which rolls the counter back too. NOTIFY's payload is
 * the new head position only: listeners re-read, so a lost or coalesced notification loses nothing. An empty
 * append orders nothing and is not sent here (the adapter checks it against the committed version).
 */
const appendFunction = (s: string): string => `
CREATE FUNCTION "${s}".append(p_stream text, p_exact boolean, p_expected text, p_ids text[], p_types text[],
                              p_schemas integer[], p_times bigint[], p_data text[], p_meta text[],
                              OUT r_version bigint, OUT r_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := array_length(p_ids, 1);
  v_head bigint;
  v_actual bigint;
BEGIN
  UPDATE "${s}".head SET position = position + n RETURNING position - n INTO v_head;
  SELECT st.version INTO v_actual FROM "${s}".streams st WHERE st.stream = p_stream;
  IF NOT (CASE WHEN p_exact THEN p_expected IS NOT NULL AND p_expected::bigint = coalesce(v_actual, 0)
               WHEN p_expected = 'any' THEN true
               WHEN p_expected = 'no_stream' THEN v_actual IS NULL
               WHEN p_expected = 'stream_exists' THEN v_actual IS NOT NULL
               ELSE false END) THEN
    RAISE EXCEPTION 'wrong expected version' USING ERRCODE = '${WRONG_VERSION}', DETAIL = coalesce(v_actual, 0)::text;
  END IF;
  -- unnest … WITH ORDINALITY, rather than subscripting the arrays over generate_series: about 1.3x the appends/s.
  INSERT INTO "${s}".events (position, stream, version, id, type, schema, time_ms, data, meta)
    SELECT v_head + u.i, p_stream, coalesce(v_actual, 0) + u.i, u.id, u.type, u.schema, u.time_ms, u.data, u.meta
    FROM unnest(p_ids, p_types, p_schemas, p_times, p_data, p_meta) WITH ORDINALITY AS u(id, type, schema, time_ms, data, meta, i);
  IF v_actual IS NULL THEN
    INSERT INTO "${s}".streams (stream, version, position) VALUES (p_stream, n, v_head + n);
  ELSE
    UPDATE "${s}".streams SET version = v_actual + n, position = v_head + n WHERE stream = p_stream;
  END IF;
  PERFORM pg_notify('${channelOf(s)}', (v_head + n)::text);
  r_version := coalesce(v_actual, 0) + n;
  r_position := v_head + n;
END
$fn$;`;

/**
 * A projection save as one statement: the compare-and-set on the checkpoint (an absent projection is at 0;
 * a concurrent first save waits on the primary key and then fails the check), then the rows. Migration 1
 * made it without details, migration 3 with them (`p_details[i]`: the whole row when `p_rows[i]` is its
 * summary, else null): each migration's SQL stays what it was.
 */
const saveProjectionFunction = (s: string, version: 1 | 3): string => `
CREATE FUNCTION "${s}".save_projection(p_name text, p_schema text, p_expected bigint, p_checkpoint bigint,
                                       p_reset boolean, p_deletes text[], p_keys text[], p_rows text[]${version === 3 ? ', p_details text[]' : ''})
RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_expected = 0 THEN
    INSERT INTO "${s}".projections AS p (name, schema, checkpoint) VALUES (p_name, p_schema, p_checkpoint)
      ON CONFLICT (name) DO UPDATE SET schema = excluded.schema, checkpoint = excluded.checkpoint WHERE p.checkpoint = 0;
  ELSE
    UPDATE "${s}".projections SET schema = p_schema, checkpoint = p_checkpoint WHERE name = p_name AND checkpoint = p_expected;
  END IF;
  IF NOT FOUND THEN RETURN false; END IF;
  IF p_reset THEN
    DELETE FROM "${s}".projection_rows WHERE name = p_name;${version === 3 ? `
    DELETE FROM "${s}".projection_details WHERE name = p_name;` : ''}
  ELSE
    DELETE FROM "${s}".projection_rows WHERE name = p_name AND key = ANY (p_deletes);${version === 3 ? `
    DELETE FROM "${s}".projection_details WHERE name = p_name AND key = ANY (p_deletes);` : ''}
  END IF;
  INSERT INTO "${s}".projection_rows (name, key, row) SELECT p_name, k, r FROM unnest(p_keys, p_rows) AS u(k, r)
    ON CONFLICT (name, key) DO UPDATE SET row = excluded.row;${version === 3 ? `
  DELETE FROM "${s}".projection_details WHERE name = p_name AND key = ANY (p_keys);
  INSERT INTO "${s}".projection_details (name, key, row) SELECT p_name, k, d FROM unnest(p_keys, p_details) AS u(k, d) WHERE d IS NOT NULL;` : ''}
  RETURN true;
END
$fn$;`;

/**
 * appendMany in one statement: as {@link appendFunction}, for several streams under one lock of the counter
 * and one NOTIFY. The streams' events come flattened, `p_counts[k]` of them for stream k, in the order given,
 * which is also the order of their positions. A refused version names its stream by its index (1-based) in
 * the HINT. One row per stream, in order (`WITH ORDINALITY` in {@link appendManyQuery}).
 */
const appendManyFunction = (s: string): string => `
CREATE FUNCTION "${s}".version_matches(p_exact boolean, p_expected text, p_actual bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT CASE WHEN p_exact THEN p_expected IS NOT NULL AND p_expected::bigint = coalesce(p_actual, 0)
              WHEN p_expected = 'any' THEN true
              WHEN p_expected = 'no_stream' THEN p_actual IS NULL
              WHEN p_expected = 'stream_exists' THEN p_actual IS NOT NULL
              ELSE false END
$fn$;
CREATE FUNCTION "${s}".append_many(p_streams text[], p_exact boolean[], p_expected text[], p_counts integer[],
                                   p_ids text[], p_types text[], p_schemas integer[], p_times bigint[],
                                   p_data text[], p_meta text[])
RETURNS TABLE (r_version bigint, r_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  total integer := coalesce(array_length(p_ids, 1), 0);
  v_head bigint;
  v_actual bigint;
  v_last bigint;
  v_offset integer := 0;
  n integer;
BEGIN
  UPDATE "${s}".head SET position = position + total RETURNING position - total INTO v_head;
  FOR k IN 1 .. coalesce(array_length(p_streams, 1), 0) LOOP
    n := p_counts[k];
    SELECT st.version, st.position INTO v_actual, v_last FROM "${s}".streams st WHERE st.stream = p_streams[k];
    IF NOT "${s}".version_matches(p_exact[k], p_expected[k], v_actual) THEN
      RAISE EXCEPTION 'wrong expected version' USING ERRCODE = '${WRONG_VERSION}', DETAIL = coalesce(v_actual, 0)::text, HINT = k::text;
    END IF;
    IF n > 0 THEN
      INSERT INTO "${s}".events (position, stream, version, id, type, schema, time_ms, data, meta)
        SELECT v_head + v_offset + u.i, p_streams[k], coalesce(v_actual, 0) + u.i, u.id, u.type, u.schema, u.time_ms, u.data, u.meta
        FROM unnest(p_ids[v_offset + 1 : v_offset + n], p_types[v_offset + 1 : v_offset + n], p_schemas[v_offset + 1 : v_offset + n],
                    p_times[v_offset + 1 : v_offset + n], p_data[v_offset + 1 : v_offset + n], p_meta[v_offset + 1 : v_offset + n])
             WITH ORDINALITY AS u(id, type, schema, time_ms, data, meta, i);
      v_offset := v_offset + n;
      v_last := v_head + v_offset;
      IF v_actual IS NULL THEN
        INSERT INTO "${s}".streams (stream, version, position) VALUES (p_streams[k], n, v_last);
      ELSE
        UPDATE "${s}".streams SET version = v_actual + n, position = v_last WHERE stream = p_streams[k];
      END IF;
    END IF;
    r_version := coalesce(v_actual, 0) + n;
    r_position := coalesce(v_last, 0);
    RETURN NEXT;
  END LOOP;
  IF total > 0 THEN PERFORM pg_notify('${channelOf(s)}', (v_head + total)::text); END IF;
END
$fn$;`;

/** Append only: a released podlog's migrations are never edited, a change is a new one. */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'events, streams, the position counter, projections; append and save_projection',
    sql: (s) => `
-- Stream names compare in byte order ("C"), as the port sorts them, whatever the database's collation.
CREATE TABLE "${s}".head (
  one      boolean PRIMARY KEY DEFAULT true CHECK (one),
  position bigint NOT NULL
);
INSERT INTO "${s}".head (position) VALUES (0);
CREATE TABLE "${s}".events (
  position bigint  PRIMARY KEY,
  stream   text    COLLATE "C" NOT NULL,
  version  bigint  NOT NULL,
  id       text    NOT NULL UNIQUE,
  type     text    NOT NULL,
  schema   integer NOT NULL,
  time_ms  bigint  NOT NULL,
  data     text    NOT NULL,  -- JSON text as written (json/jsonb would refuse \\u0000 or reorder keys)
  meta     text    NOT NULL,
  UNIQUE (stream, version)
);
CREATE TABLE "${s}".streams (
  stream   text   COLLATE "C" PRIMARY KEY,
  version  bigint NOT NULL,
  position bigint NOT NULL
);
CREATE TABLE "${s}".projections (
  name       text   PRIMARY KEY,
  schema     text   NOT NULL,
  checkpoint bigint NOT NULL
);
CREATE TABLE "${s}".projection_rows (
  name text NOT NULL,
  key  text NOT NULL,
  row  text NOT NULL,
  PRIMARY KEY (name, key)
);
${appendFunction(s)}
${saveProjectionFunction(s, 1)}`,
  },
  {
    version: 2,
    description: 'append_many: an append to several streams in one transaction',
    sql: appendManyFunction,
  },
  {
    version: 3,
    description: 'projection_details: the whole rows of rows saved with a summary; save_projection takes them',
    sql: (s) => `
CREATE TABLE "${s}".projection_details (
  name text NOT NULL,
  key  text NOT NULL,
  row  text NOT NULL,
  PRIMARY KEY (name, key)
);
DROP FUNCTION "${s}".save_projection(text, text, bigint, bigint, boolean, text[], text[], text[]);
${saveProjectionFunction(s, 3)}`,
  },
];

/** The newest schema version this podlog writes and reads. */
export const PG_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** What a schema holds, read without writing anything. */
const inspect = async (client: pg.ClientBase, schema: string): Promise<{ tables: string[]; version: number | undefined }> => {
  const tables = (await client.query<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [schema])).rows.map((r) => r.name);
  if (!tables.includes('migrations')) return { tables, version: undefined };
  const v = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM "${schema}".migrations`);
  return { tables, version: v.rows[0]?.v ?? 0 };
};

/** Refuses a schema that is not a podlog log, or is a newer podlog's. */
const judge = (location: string, schema: string, state: { tables: string[]; version: number | undefined }): void => {
  if (state.version === undefined && state.tables.length > 0) {
    throw new PodlogError(
      'ESTORE_FOREIGN',
      `${location} is not a podlog event store: its schema ${schema} holds other tables (${state.tables.join(', ')}); podlog will not touch it`,
    );
  }
  if (state.version !== undefined && state.version > PG_SCHEMA_VERSION) {
    throw new PodlogError(
      'ESTORE_NEWER_SCHEMA',
      `${location} was written by a newer podlog: store schema version ${state.version}, this podlog supports up to version ${PG_SCHEMA_VERSION}; upgrade podlog to read it`,
    );
  }
};

/**
 * Brings the schema to {@link PG_SCHEMA_VERSION} (or to an older `target`: a log as an older podlog left it,
 * for the tests), creating it if missing; returns the versions it applied (none when another process did, or
 * had). Checks first, without a lock, so that opening an up-to-date log writes nothing.
 */
export const migrate = async (client: pg.ClientBase, location: string, schema: string, target = PG_SCHEMA_VERSION): Promise<number[]> => {
  const seen = await inspect(client, schema);
  judge(location, schema, seen);
  if ((seen.version ?? 0) >= target) return [];
  await client.query('BEGIN');
  try {
    // Taken before the schema exists, so the lock is on the name: concurrent first opens queue here.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`podlog-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    const now = await inspect(client, schema);
    judge(location, schema, now);
    if (now.version === undefined) {
      await client.query(
        `CREATE TABLE "${schema}".migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= (now.version ?? 0) || m.version > target) continue;
      await client.query(m.sql(schema));
      await client.query(`INSERT INTO "${schema}".migrations (version, description) VALUES ($1, $2)`, [m.version, m.description]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined); // the connection may be the thing that failed
    throw e;
  }
};

/**
 * For a read-only open: the schema must already be a podlog log at this podlog's version. Nothing is written
 * to make it one (a missing or older log is an error, not a migration).
 */
export const checkMigrated = async (client: pg.ClientBase, location: string, schema: string): Promise<void> => {
  const state = await inspect(client, schema);
  judge(location, schema, state);
  if (state.version === undefined) throw new PodlogError('ESTORE_NOT_FOUND', `there is no podlog event store in ${location} yet`);
  if (state.version < PG_SCHEMA_VERSION) {
    throw new PodlogError(
      'ESTORE_OLD_SCHEMA',
      `${location} has store schema version ${state.version}: open it once for writing to migrate it to version ${PG_SCHEMA_VERSION}`,
    );
  }
};

/** The checked form of an expected version, as the append function takes it. */
export interface ExpectedParam {
  exact: boolean;
  /** 'any' | 'no_stream' | 'stream_exists', or the exact version as text (null: no version can match). */
  value: string | null;
}

/** Serialised events as the append functions' six array parameters (one array per column). */
const eventColumns = (rows: SerialisedEvent[]): unknown[] => [
  rows.map((r) => r.id),
  rows.map((r) => r.type),
  rows.map((r) => r.schema),
  rows.map((r) => r.timeMs),
  rows.map((r) => r.data),
  rows.map((r) => r.meta),
];

/** The append as one query: `ok`, `version` (the actual one when not ok) and `position`. */
export const appendQuery = (schema: string, stream: string, expected: ExpectedParam, rows: SerialisedEvent[]): pg.QueryConfig => ({
  name: `podlog-append-${schema}`,
  text: `SELECT r_version AS version, r_position AS position FROM "${schema}".append($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
  values: [stream, expected.exact, expected.value, ...eventColumns(rows)],
});

/** appendMany as one query: one row per stream, in the order given (`version`, `position`). */
export const appendManyQuery = (schema: string, appends: { stream: string; expected: ExpectedParam; rows: SerialisedEvent[] }[]): pg.QueryConfig => ({
  name: `podlog-append-many-${schema}`,
  text: `SELECT r_version AS version, r_position AS position FROM "${schema}".append_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) WITH ORDINALITY ORDER BY ordinality`,
  values: [
    appends.map((a) => a.stream),
    appends.map((a) => a.expected.exact),
    appends.map((a) => a.expected.value),
    appends.map((a) => a.rows.length),
    ...eventColumns(appends.flatMap((a) => a.rows)),
  ],
});
