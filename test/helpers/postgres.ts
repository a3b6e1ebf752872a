/**
 * A real PostgreSQL server for one test file: initdb in a temporary directory, run as `nobody` (PostgreSQL
 * refuses root; nobody's account is used as it is, nothing about it is changed), listening only on a unix
 * socket in that directory (listen_addresses = ''), stopped and removed after the file's tests. The system's
 * own cluster and port 5432 are never touched. The binaries are Debian's postgresql-15
 * (debian-packages.txt); PODLOG_PG_BIN names another bin directory.
 *
 *   const pg = usePostgres(test);           // test.before starts it, test.after.always stops it
 *   pg().url, pg().schema(), pg().connect()
 */
import type { TestFn } from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

const BIN = process.env['PODLOG_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
const USER = 'nobody';
/** Only names the socket file (.s.PGSQL.55432) in the server's own directory: no TCP port is opened. */
const PORT = 55432;

export interface PostgresServer {
  /** Connection string of the server's `postgres` database, as user `podlog` (trust, over the socket). */
  url: string;
  /** The socket directory (and the server's home: data/ and log are in it). */
  dir: string;
  /** A schema name no test of this file has used yet (a fresh, empty log). */
  schema: () => string;
  /** A new client connected to the database: the caller ends it. */
  connect: () => Promise<pg.Client>;
  /** Drops a schema and everything in it. */
  dropSchema: (schema: string) => Promise<void>;
  /** Stops the server as a restart would (fast shutdown: sessions are terminated), keeping its data. */
  pause: () => Promise<void>;
  /** Starts a paused server again. */
  resume: () => Promise<void>;
  stop: () => Promise<void>;
}

const asServerUser = (cmd: string, args: string[]) => run('runuser', ['-u', USER, '--', join(BIN, cmd), ...args]);

export const startPostgres = async (): Promise<PostgresServer> => {
  if (!existsSync(join(BIN, 'initdb'))) {
    throw new Error(`PostgreSQL's initdb is not in ${BIN}: install postgresql-15 (debian-packages.txt) or set PODLOG_PG_BIN`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'podlog-pg-'));
  const data = join(dir, 'data');
  const start = () => asServerUser('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(dir, 'log')]);
  const fastStop = () => asServerUser('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']);
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', USER]), run('id', ['-g', USER])]).then((r) => r.map((x) => Number(x.stdout.trim())));
    await chown(dir, uid!, gid!);
    await asServerUser('initdb', ['-D', data, '-U', 'podlog', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
    await appendFile(
      join(data, 'postgresql.conf'),
      [
        "listen_addresses = ''",
        `unix_socket_directories = '${dir}'`,
        `port = ${PORT}`,
        // Tests run many stores at once (a pool and a LISTEN connection each).
        'max_connections = 300',
        // The tests check semantics, not durability across power loss.
        'fsync = off',
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
    await start();
  } catch (e) {
    // pg_ctl start -w failed or timed out: the server may be up all the same.
    await asServerUser('pg_ctl', ['stop', '-D', data, '-m', 'immediate']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const url = `postgresql://podlog@${encodeURIComponent(dir)}:${PORT}/postgres`;
  let n = 0;
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  };
  return {
    url,
    dir,
    schema: () => `t${process.pid}_${++n}`,
    connect,
    dropSchema: async (schema) => {
      const c = await connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
    pause: async () => {
      await fastStop();
    },
    resume: async () => {
      await start();
    },
    stop: async () => {
      try {
        // A test that failed while the server was paused leaves nothing to stop.
        const running = await asServerUser('pg_ctl', ['status', '-D', data]).then(() => true, () => false);
        if (running) await fastStop();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
};

/** Starts a server before the file's tests and stops it after them, whatever happened. */
export const usePostgres = (test: TestFn): (() => PostgresServer) => {
  let server: PostgresServer | undefined;
  test.before(async () => {
    server = await startPostgres();
  });
  test.after.always(async () => {
    await server?.stop();
  });
  return () => {
    if (server === undefined) throw new Error('the PostgreSQL server is not running (test.before failed?)');
    return server;
  };
};
