import test from 'ava';
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { conformance, storeHandle } from './conformance.js';
import { newEvent } from './events.js';
import { openMemorySqliteStore, openSqliteStore, type SqliteEventStore } from '../../src/store/sqlite.js';
import { APPLICATION_ID, SCHEMA_VERSION } from '../../src/store/sqlite-schema.js';
import { WrongExpectedVersion } from '../../src/store/port.js';
import { PodlogError } from '../../src/errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const appender = join(here, 'appender.ts');

const tempDir = (): Promise<string> => mkdtemp(join(tmpdir(), 'podlog-store-'));

conformance(
  test,
  async () => {
    const dir = await tempDir();
    return storeHandle(() => openSqliteStore(join(dir, 'events.db')), () => rm(dir, { recursive: true, force: true }));
  },
  { name: 'sqlite' },
);

conformance(
  test,
  async () => {
    const store = openMemorySqliteStore('an empty log in memory');
    return { store, cleanup: () => store.close() };
  },
  { name: 'sqlite in memory' },
);

/** A temp dir for one test, removed afterwards; `file` is the store's path in it. */
const withDir = async (fn: (dir: string, file: string) => Promise<void>): Promise<void> => {
  const dir = await tempDir();
  try {
    await fn(dir, join(dir, 'events.db'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

interface Child {
  proc: ChildProcess;
  /** Resolves with the first stdout line that satisfies `match`. */
  line: (match: (l: string) => boolean) => Promise<string>;
  /** Resolves when the process ends, with its exit code and signal, and everything it printed. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

const child = (...args: string[]): Child => {
  const proc = spawn(process.execPath, ['--import=tsx', appender, ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const l of [...listeners]) l();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.on('exit', (code, signal) => {
      // Let the pipes drain before reporting.
      setImmediate(() => {
        for (const l of [...listeners]) l();
        resolve({ code, signal, stdout, stderr });
      });
    }),
  );
  const line = (match: (l: string) => boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = stdout.split('\n').find(match);
        if (found !== undefined) {
          listeners.delete(check);
          resolve(found);
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          listeners.delete(check);
          reject(new Error(`child ${args.join(' ')} ended (${proc.exitCode ?? proc.signalCode}) without the line; stderr: ${stderr}`));
        }
      };
      listeners.add(check);
      check();
    });
  return { proc, line, exited };
};

const integrity = async (file: string): Promise<string> => {
  const store = await openSqliteStore(file);
  try {
    return await store.integrityCheck();
  } finally {
    await store.close();
  }
};

test('two processes appending to one stream with exact expected versions: 400 events, no gaps, conflicts typed', async (t) => {
  await withDir(async (_dir, file) => {
    // The children create the store themselves, at about the same time: initialisation races too.
    const a = child('race', file, 'pod-race', '200', 'A');
    const b = child('race', file, 'pod-race', '200', 'B');
    await Promise.all([a.line((l) => l === 'ready'), b.line((l) => l === 'ready')]);
    a.proc.stdin!.end('go\n');
    b.proc.stdin!.end('go\n');
    const results = await Promise.all([a.exited, b.exited]);
    const reports = results.map((r) => {
      t.is(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { name: string; successes: number; conflicts: number; untyped: number };
    });
    t.is(reports[0]!.successes + reports[1]!.successes, 400);
    t.is(reports[0]!.untyped + reports[1]!.untyped, 0, 'every conflict was a WrongExpectedVersion');
    const conflicts = reports[0]!.conflicts + reports[1]!.conflicts;
    t.log(`conflicts observed: A ${reports[0]!.conflicts}, B ${reports[1]!.conflicts}`);

    const store = await openSqliteStore(file);
    try {
      const events = await store.readStream('pod-race');
      t.is(events.length, 400);
      t.deepEqual(events.map((e) => e.version), Array.from({ length: 400 }, (_, i) => i + 1));
      for (let i = 1; i < events.length; i++) t.true(events[i]!.position > events[i - 1]!.position);
      t.is(new Set(events.map((e) => e.meta.id)).size, 400);
      for (const name of ['A', 'B']) {
        const mine = events.filter((e) => e.data['name'] === name).map((e) => e.data['n']);
        t.deepEqual(mine, Array.from({ length: 200 }, (_, i) => i), `writer ${name}: each success recorded once, in order`);
      }
      t.deepEqual(await store.listStreams(), [{ stream: 'pod-race', version: 400, position: events[399]!.position }]);
      t.is(await store.headPosition(), 400);
      t.true(conflicts >= 0);
    } finally {
      await store.close();
    }
  });
});

test('kill -9 in the middle of appending leaves only whole batches, and the store keeps working', async (t) => {
  await withDir(async (_dir, file) => {
    const batchSize = 500;
    const c = child('batches', file, String(batchSize), '3');
    await c.line((l) => l === 'started');
    await new Promise((r) => setTimeout(r, 30 + Math.floor(Math.random() * 400)));
    c.proc.kill('SIGKILL');
    const end = await c.exited;
    t.is(end.signal, 'SIGKILL', end.stderr);

    t.is(await integrity(file), 'ok');
    const store = await openSqliteStore(file);
    try {
      const streams = await store.listStreams();
      t.true(streams.length >= 1);
      let total = 0;
      const batches: number[] = [];
      for (const info of streams) {
        const events = await store.readStream(info.stream, {});
        t.is(events.length, info.version);
        t.is(info.version % batchSize, 0, `${info.stream} holds whole batches only`);
        t.deepEqual(events.map((e) => e.version), Array.from({ length: events.length }, (_, i) => i + 1));
        for (let k = 0; k < events.length; k += batchSize) {
          const batch = events.slice(k, k + batchSize);
          const n = batch[0]!.data['batch'] as number;
          t.true(batch.every((e, i) => e.data['batch'] === n && e.data['i'] === i), `batch ${n} complete and in order`);
          batches.push(n);
        }
        total += events.length;
        t.is(info.position, events[events.length - 1]!.position);
      }
      batches.sort((x, y) => x - y);
      t.deepEqual(batches, Array.from({ length: batches.length }, (_, i) => i), 'batches 0..k-1 all present');
      t.is(await store.headPosition(), total);
      const all = await store.readAll({ limit: total + 10 });
      t.deepEqual(all.map((e) => e.position), Array.from({ length: total }, (_, i) => i + 1));
      t.log(`killed after ${batches.length} batches (${total} events)`);
      const s0 = streams[0]!;
      t.deepEqual(await store.append(s0.stream, [newEvent('AfterCrash')], s0.version), { version: s0.version + 1, position: total + 1 });
    } finally {
      await store.close();
    }
    t.is(await integrity(file), 'ok');
  });
});

test("another process's append wakes waitForChange within its poll interval", async (t) => {
  await withDir(async (_dir, file) => {
    const store = await openSqliteStore(file, { pollMs: 15 });
    try {
      await store.append('pod-a', [newEvent('Before')], 'no_stream');
      const head = await store.headPosition();
      const ac = new AbortController();
      const guard = setTimeout(() => ac.abort(), 30_000);
      const c = child('once', file, 'pod-b', '300');
      await store.waitForChange(head, ac.signal);
      clearTimeout(guard);
      t.false(ac.signal.aborted, 'woken by the commit, not by the guard');
      const seen = Date.now();
      const after = await store.readAll({ after: head });
      t.deepEqual(after.map((e) => `${e.stream}:${e.type}`), ['pod-b:Once']);
      const end = await c.exited;
      t.is(end.code, 0, end.stderr);
      t.deepEqual(JSON.parse(end.stdout.trim()), { position: head + 1 });
      t.true(Date.now() - seen < 30_000);
    } finally {
      await store.close();
    }
  });
});

test('an open store and a finished waitForChange leave no timer behind: the process exits by itself', async (t) => {
  await withDir(async (_dir, file) => {
    const c = child('wait-and-exit', file);
    const timer = setTimeout(() => c.proc.kill('SIGKILL'), 20_000);
    const end = await c.exited;
    clearTimeout(timer);
    t.is(end.code, 0, end.stderr);
    t.is(end.signal, null);
    t.is(end.stdout.trim(), 'waited');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Bad input: refused with a PodlogError (exit code 254), the file's bytes unchanged, nothing created beside it.

const refuses = async (t: import('ava').ExecutionContext, file: string, code: string, message: RegExp): Promise<void> => {
  const before = await readFile(file);
  const e = await t.throwsAsync(openSqliteStore(file));
  t.true(e instanceof PodlogError, String(e));
  t.is((e as PodlogError).code, code, e?.message);
  t.is((e as PodlogError).exitCode, 254);
  t.regex(e!.message, message);
  t.true((await readFile(file)).equals(before), 'the bytes are unchanged');
  t.false(existsSync(`${file}-journal`), 'no rollback journal');
  // Read-only opens refuse it the same way.
  const ro = await t.throwsAsync(openSqliteStore(file, { readonly: true }));
  t.is((ro as PodlogError).code, code);
  t.true((await readFile(file)).equals(before), 'the bytes are unchanged after a read-only attempt');
};

test('a file that is not a database is refused: ESTORE_CORRUPT', async (t) => {
  await withDir(async (dir) => {
    const text = join(dir, 'text.db');
    await writeFile(text, 'hello, I am a text file and not a database at all\n'.repeat(20));
    await refuses(t, text, 'ESTORE_CORRUPT', /text\.db is not a podlog event store: file is not a database/);
    t.false(existsSync(`${text}-wal`) || existsSync(`${text}-shm`));

    const random = join(dir, 'random.db');
    await writeFile(random, randomBytes(8192));
    await refuses(t, random, 'ESTORE_CORRUPT', /file is not a database/);

    const tiny = join(dir, 'tiny.db');
    await writeFile(tiny, 'SQLite format 3\0');
    await refuses(t, tiny, 'ESTORE_CORRUPT', /file is not a database/);
  });
});

test('a podlog store whose first page is damaged is refused: ESTORE_CORRUPT', async (t) => {
  await withDir(async (_dir, file) => {
    const store = await openSqliteStore(file);
    await store.append('pod-a', [newEvent('X')], 'any');
    await store.close();
    t.false(existsSync(`${file}-wal`), 'a clean close checkpoints and removes the WAL');
    const bytes = await readFile(file);
    randomBytes(400).copy(bytes, 100); // page 1's b-tree (sqlite_schema) after the 100-byte header
    bytes[100] = 0x42;
    await writeFile(file, bytes);
    await refuses(t, file, 'ESTORE_CORRUPT', /is not a podlog event store/);
  });
});

test("another program's SQLite database is refused: ESTORE_FOREIGN", async (t) => {
  await withDir(async (dir) => {
    const file = join(dir, 'app.db');
    const db = new Database(file);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES (\'alice\'), (\'bob\')');
    db.close();
    await refuses(t, file, 'ESTORE_FOREIGN', /app\.db is not a podlog event store: it is another program's SQLite database/);

    const tagged = join(dir, 'tagged.db');
    const db2 = new Database(tagged);
    db2.pragma('application_id = 1234');
    db2.exec('CREATE TABLE events (position INTEGER PRIMARY KEY)');
    db2.close();
    await refuses(t, tagged, 'ESTORE_FOREIGN', /application id 1234/);

    // The same, in WAL mode and still open by its program (the header alone is not to be trusted then).
    const live = join(dir, 'live.db');
    const db3 = new Database(live);
    db3.pragma('journal_mode = WAL');
    db3.exec('CREATE TABLE things (x); INSERT INTO things VALUES (1)');
    try {
      t.true(existsSync(`${live}-wal`));
      await refuses(t, live, 'ESTORE_FOREIGN', /another program's SQLite database/);
      t.deepEqual(db3.prepare('SELECT x FROM things').pluck().all(), [1]);
    } finally {
      db3.close();
    }
  });
});

test('a store written by a newer podlog is refused: ESTORE_NEWER_SCHEMA, naming both versions', async (t) => {
  await withDir(async (dir) => {
    // Newer in the header (user_version) and in the meta table, as a newer podlog would write it.
    const file = join(dir, 'newer.db');
    (await openSqliteStore(file)).close();
    const db = new Database(file);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    db.pragma('user_version = 99');
    db.close();
    await refuses(t, file, 'ESTORE_NEWER_SCHEMA', new RegExp(`schema version 99.*up to version ${SCHEMA_VERSION}`));
    t.false(existsSync(`${file}-wal`) || existsSync(`${file}-shm`), 'nothing created beside it');

    // Newer in the meta table only: found by the first (read-only) queries, before any write.
    const metaOnly = join(dir, 'meta-only.db');
    await (await openSqliteStore(metaOnly)).close();
    const db2 = new Database(metaOnly);
    db2.prepare("UPDATE meta SET value = '7' WHERE key = 'schema_version'").run();
    db2.close();
    await refuses(t, metaOnly, 'ESTORE_NEWER_SCHEMA', new RegExp(`schema version 7.*up to version ${SCHEMA_VERSION}`));
  });
});

test('an empty file, or an empty SQLite database, is initialised', async (t) => {
  await withDir(async (dir) => {
    const empty = join(dir, 'empty.db');
    await writeFile(empty, '');
    const s1 = await openSqliteStore(empty);
    t.deepEqual(await s1.append('pod-a', [newEvent('X')], 'no_stream'), { version: 1, position: 1 });
    await s1.close();

    const blank = join(dir, 'blank.db');
    const db = new Database(blank);
    db.exec('VACUUM');
    db.close();
    const s2 = await openSqliteStore(blank);
    t.is(await s2.headPosition(), 0);
    await s2.close();

    const check = new Database(blank, { readonly: true });
    t.is(check.pragma('application_id', { simple: true }), APPLICATION_ID);
    t.is(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    t.is(check.pragma('journal_mode', { simple: true }), 'wal');
    t.is(check.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get(), String(SCHEMA_VERSION));
    t.deepEqual(
      check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all(),
      ['events', 'meta', 'projection_details', 'projection_rows', 'projections', 'streams'],
    );
    check.close();
  });
});

test('a missing directory is a clear error', async (t) => {
  const e = await t.throwsAsync(openSqliteStore(join(tmpdir(), `podlog-no-such-dir-${process.pid}`, 'x', 'events.db')));
  t.true(e instanceof PodlogError, String(e));
  t.is((e as PodlogError).code, 'ESTORE_OPEN');
});

test('read-only: refuses a missing store, reads, sees other writers, refuses writes', async (t) => {
  await withDir(async (_dir, file) => {
    const missing = await t.throwsAsync(openSqliteStore(file, { readonly: true }));
    t.is((missing as PodlogError).code, 'ESTORE_NOT_FOUND');
    t.false(existsSync(file), 'a read-only open creates nothing');

    const writer = await openSqliteStore(file);
    await writer.append('pod-a', [newEvent('Created')], 'no_stream');
    await writer.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 0, checkpoint: 1, upserts: new Map([['pod-a', 1]]) });
    const reader = await openSqliteStore(file, { readonly: true });
    try {
      t.true(reader.readonly);
      t.deepEqual((await reader.readStream('pod-a')).map((e) => e.type), ['Created']);
      t.is((await reader.loadProjection('pods')).checkpoint, 1);
      const w = await t.throwsAsync(reader.append('pod-a', [newEvent('Nope')], 1));
      t.is((w as PodlogError).code, 'ESTORE_READONLY');
      t.regex(w!.message, /read-only/);
      const many = await t.throwsAsync(reader.appendMany([{ stream: 'pod-a', events: [newEvent('Nope')], expected: 1 }]));
      t.is((many as PodlogError).code, 'ESTORE_READONLY');
      const p = await t.throwsAsync(reader.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 1, checkpoint: 2, upserts: new Map() }));
      t.is((p as PodlogError).code, 'ESTORE_READONLY');

      const ac = new AbortController();
      const wait = reader.waitForChange(1, ac.signal);
      await writer.append('pod-a', [newEvent('Started')], 1);
      await wait;
      t.deepEqual((await reader.readAll({ after: 1 })).map((e) => e.type), ['Started']);
    } finally {
      await reader.close();
      await writer.close();
    }
  });
});

test('a store of schema 1 reads as before when opened read-only, and is migrated by the first open for writing', async (t) => {
  await withDir(async (_dir, file) => {
    const old = await openSqliteStore(file);
    await old.append('pod-a', [newEvent('Created')], 'no_stream');
    await old.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 0, checkpoint: 1, upserts: new Map([['pod-a', { state: 'prepared', exec: 'sh' }]]) });
    await old.close();
    // Back to the first schema, as podlog 1 left its stores.
    const db = new Database(file);
    db.exec("DROP TABLE projection_details; UPDATE meta SET value = '1' WHERE key = 'schema_version'");
    db.pragma('user_version = 1');
    db.close();
    const versionOf = (): unknown => {
      const check = new Database(file, { readonly: true });
      try {
        return [check.pragma('user_version', { simple: true }), check.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()];
      } finally {
        check.close();
      }
    };

    const reader = await openSqliteStore(file, { readonly: true });
    try {
      t.deepEqual((await reader.readAll()).map((e) => e.type), ['Created']);
      t.deepEqual(Object.fromEntries((await reader.loadProjection('pods')).rows), { 'pod-a': { state: 'prepared', exec: 'sh' } });
      t.deepEqual(await reader.loadProjectionRow('pods', 'pod-a'), { schema: 's', row: { state: 'prepared', exec: 'sh' } });
      t.deepEqual(Object.fromEntries(await reader.loadProjectionRows('pods', ['pod-a'])), { 'pod-a': { state: 'prepared', exec: 'sh' } });
    } finally {
      await reader.close();
    }
    t.deepEqual(versionOf(), [1, '1'], 'a read-only open migrates nothing');

    const store = await openSqliteStore(file);
    try {
      t.deepEqual(versionOf(), [SCHEMA_VERSION, String(SCHEMA_VERSION)]);
      t.deepEqual(Object.fromEntries((await store.loadProjection('pods')).rows), { 'pod-a': { state: 'prepared', exec: 'sh' } }, 'a row of schema 1 loads whole');
      const summarise = (row: { state: string }) => ({ state: row.state });
      t.true(await store.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 1, checkpoint: 2, upserts: new Map([['pod-a', { state: 'running', exec: 'sh' }]]), summarise }));
      t.deepEqual(Object.fromEntries((await store.loadProjection('pods')).rows), { 'pod-a': { state: 'running' } });
      t.deepEqual(await store.append('pod-a', [newEvent('Started')], 1), { version: 2, position: 2 });
      t.is(await store.integrityCheck(), 'ok');
    } finally {
      await store.close();
    }
  });
});

test('a closed store refuses calls and releases its waiters', async (t) => {
  await withDir(async (_dir, file) => {
    const store = await openSqliteStore(file);
    const ac = new AbortController();
    const wait = store.waitForChange(0, ac.signal);
    await store.close();
    await wait; // resolved by close (a spurious wake-up)
    await store.close(); // idempotent
    for (const p of [store.headPosition(), store.append('pod-a', [newEvent('X')], 'any'), store.readAll(), store.waitForChange(0, ac.signal)]) {
      const e = await t.throwsAsync(p);
      t.is((e as PodlogError).code, 'ESTORE_CLOSED');
    }
  });
});

test('a 10,000-row projection round-trips', async (t) => {
  await withDir(async (_dir, file) => {
    const store: SqliteEventStore = await openSqliteStore(file);
    try {
      const rows = new Map<string, { uuid: string; state: string; apps: string[]; created: string }>();
      for (let i = 0; i < 10_000; i++) {
        const uuid = `${i.toString(16).padStart(8, '0')}-0000-7000-8000-000000000000`;
        rows.set(uuid, { uuid, state: i % 3 === 0 ? 'running' : 'exited', apps: ['busybox'], created: new Date(i * 1000).toISOString() });
      }
      t.true(await store.saveProjection({ name: 'pods', schema: 'list-v1', expectedCheckpoint: 0, checkpoint: 12_345, upserts: rows }));
      const p = await store.loadProjection<{ uuid: string }>('pods');
      t.is(p.rows.size, 10_000);
      t.is(p.checkpoint, 12_345);
      t.deepEqual(p.rows.get('00000009-0000-7000-8000-000000000000'), rows.get('00000009-0000-7000-8000-000000000000'));
    } finally {
      await store.close();
    }
  });
});

// These two block this process's event loop while they wait for the lock (better-sqlite3 is synchronous):
// serial tests run before the concurrent ones, so they do not skew other tests' timers.
test.serial('a writer waits for another process holding the write lock, then its version check still applies', async (t) => {
  await withDir(async (_dir, file) => {
    const store = await openSqliteStore(file, { busyTimeoutMs: 10_000 });
    try {
      await store.append('pod-a', [newEvent('X')], 'no_stream');
      const c = child('hold-lock', file, 'pod-a', '1000');
      await c.line((l) => l === 'locked');
      const started = Date.now();
      const e = await t.throwsAsync(store.append('pod-a', [newEvent('Y')], 1));
      // The child commits its event only when it lets go of the lock, so seeing it proves the append waited.
      t.true(e instanceof WrongExpectedVersion && e.actual === 2, String(e));
      t.log(`waited ${Date.now() - started} ms for the lock`);
      t.is((await c.exited).code, 0);
      t.deepEqual(await store.append('pod-a', [newEvent('Y')], 2), { version: 3, position: 3 });
    } finally {
      await store.close();
    }
  });
});

test.serial('a write lock held longer than busyTimeoutMs gives ESTORE_BUSY and writes nothing', async (t) => {
  await withDir(async (_dir, file) => {
    const store = await openSqliteStore(file, { busyTimeoutMs: 100 });
    try {
      await store.append('pod-a', [newEvent('X')], 'no_stream');
      const c = child('hold-lock', file, 'pod-a', '4000');
      await c.line((l) => l === 'locked');
      const e = await t.throwsAsync(store.append('pod-a', [newEvent('Y')], 'any'));
      t.true(e instanceof PodlogError && e.code === 'ESTORE_BUSY', String(e));
      t.is((await c.exited).code, 0);
      t.deepEqual((await store.readStream('pod-a')).map((x) => x.type), ['X', 'Held']);
    } finally {
      await store.close();
    }
  });
});

test('compaction and reclaimSpace forget: the removed events are gone from the file, which shrinks; a read-only store refuses it', async (t) => {
  await withDir(async (_dir, file) => {
    const secret = `forget-me-${randomBytes(8).toString('hex')}`;
    const writer = await openSqliteStore(file);
    // Enough events to fill whole pages: removed, they become free pages, which SQLite leaves as they were.
    const started = Array.from({ length: 200 }, (_, i) => newEvent('Started', { env: secret, i, padding: 'x'.repeat(500) }));
    await writer.append('pod-a', [...started, newEvent('Deleted')], 'no_stream');
    await writer.append('pod-b', [newEvent('Kept')], 'no_stream');
    await writer.close(); // the last connection checkpoints the WAL into the file
    t.true((await readFile(file)).includes(secret), 'the test can see the secret in the file');

    const reader = await openSqliteStore(file, { readonly: true });
    const refused = await t.throwsAsync(reader.compactStreams([{ stream: 'pod-a', expected: 201, tombstone: { type: 'Compacted', schema: 1, data: {} } }]));
    t.is((refused as PodlogError).code, 'ESTORE_READONLY');
    t.is(((await t.throwsAsync(reader.reclaimSpace())) as PodlogError).code, 'ESTORE_READONLY');
    await reader.close();

    const store = await openSqliteStore(file);
    t.deepEqual(await store.compactStreams([{ stream: 'pod-a', expected: 201, tombstone: { type: 'Compacted', schema: 1, data: {} } }]), [{ stream: 'pod-a', removed: 200 }]);
    const { before, after } = await store.reclaimSpace();
    t.log(`log: ${before} bytes before, ${after} after`);
    t.true(after < before / 4, `${before} → ${after}`);
    await store.close();
    t.false((await readFile(file)).includes(secret));
    t.is((await stat(file)).size, after);
    t.is(await integrity(file), 'ok');
  });
});
