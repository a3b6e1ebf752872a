/** The PostgreSQL event store: the conformance suite on a real server, and what only PostgreSQL has. */
import test from 'ava';
import pg from 'pg';
import { conformance, storeHandle } from './conformance.js';
import { newEvent } from './events.js';
import { openPostgresStore, type PostgresEventStore, type PostgresStoreOptions } from '../../src/store/postgres.js';
import { PG_SCHEMA_VERSION, appendQuery, migrate } from '../../src/store/postgres-schema.js';
import { PodlogError } from '../../src/errors.js';
import { serialiseEvent } from '../../src/store/validate.js';
import { WrongExpectedVersion, type EventStore } from '../../src/store/port.js';
import { readBatches } from '../../src/api/subscribe.js';
import { usePostgres } from '../helpers/postgres.js';

const server = usePostgres(test);

conformance(
  test,
  async () => {
    const { url, schema: freshSchema, dropSchema } = server();
    const schema = freshSchema();
    return storeHandle(() => openPostgresStore(url, { schema }), () => dropSchema(schema));
  },
  { name: 'postgres' },
);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it holds (or throws after `ms`). */
const until = async (what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
};

/** A fresh schema's store for one test, closed and dropped afterwards (with every other store it opened). */
const withStores = async (
  fn: (open: (o?: PostgresStoreOptions) => Promise<PostgresEventStore>, schema: string) => Promise<void>,
): Promise<void> => {
  const { url, schema: freshSchema, dropSchema } = server();
  const schema = freshSchema();
  const opened: PostgresEventStore[] = [];
  try {
    await fn(async (o = {}) => {
      const s = await openPostgresStore(url, { schema, ...o });
      opened.push(s);
      return s;
    }, schema);
  } finally {
    for (const s of opened) await s.close();
    await dropSchema(schema);
  }
};

/** Runs `fn` with a raw client of the test server, ended afterwards. */
const withClient = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
  const c = await server().connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
};

/** A reader as watch() and consume() are: `readAll({ after: last })` over and over, keeping what it saw. */
const pollingReader = (read: (after: number) => Promise<{ position: number }[]>) => {
  const seen: number[] = [];
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const page = await read(seen[seen.length - 1] ?? 0);
      seen.push(...page.map((e) => e.position));
      await sleep(5);
    }
  })();
  return {
    seen,
    stop: async () => {
      stop = true;
      await done;
    },
  };
};

test('the bigserial trap: an append holding a lower position makes later appends wait, so a polling reader never skips', async (t) => {
  // The control first: with a plain bigserial (what the adapter does not do), the reader skips an event.
  await withClient(async (admin) => {
    const table = `trap_${process.pid}`;
    await admin.query(`CREATE TABLE ${table} (position bigserial PRIMARY KEY, what text)`);
    try {
      await withClient(async (slow) => {
        await slow.query('BEGIN');
        await slow.query(`INSERT INTO ${table} (what) VALUES ('slow')`); // takes position 1, not committed
        await admin.query(`INSERT INTO ${table} (what) VALUES ('fast')`); // position 2, committed first
        const first = await admin.query<{ position: string }>(`SELECT position FROM ${table} WHERE position > 0 ORDER BY position`);
        t.deepEqual(first.rows.map((r) => Number(r.position)), [2], 'the reader sees 2 and moves its checkpoint to 2');
        await slow.query('COMMIT');
        const next = await admin.query(`SELECT position FROM ${table} WHERE position > 2`);
        t.is(next.rowCount, 0, 'position 1 committed behind the checkpoint: skipped for good');
      });
    } finally {
      await admin.query(`DROP TABLE ${table}`);
    }
  });

  // The adapter: the same choreography through its own append statement.
  await withStores(async (open, schema) => {
    const store = await open();
    const reader = pollingReader((after) => store.readAll({ after }));
    await withClient(async (slow) => {
      await slow.query('BEGIN');
      const held = await slow.query<{ position: string }>(
        appendQuery(schema, 'pod-slow', { exact: false, value: 'any' }, [serialiseEvent('pod-slow', newEvent('Slow'), 0)]),
      );
      t.deepEqual(held.rows.map((r) => Number(r.position)), [1], 'the open transaction holds position 1');
      let fastDone = false;
      const fast = store.append('pod-fast', [newEvent('Fast')], 'any').then((r) => {
        fastDone = true;
        return r;
      });
      await sleep(400);
      t.false(fastDone, 'the second append waits for the first to end');
      t.deepEqual(reader.seen, [], 'the reader saw nothing yet');
      t.is(await store.headPosition(), 0);
      await slow.query('COMMIT');
      t.deepEqual(await fast, { version: 1, position: 2 }, 'the waiting append takes the next position after the commit');
    });
    await until('the reader saw both', async () => reader.seen.length >= 2);
    await reader.stop();
    t.deepEqual(reader.seen, [1, 2]);
    t.deepEqual((await store.readAll()).map((e) => [e.position, e.stream]), [[1, 'pod-slow'], [2, 'pod-fast']]);
  });
});

test('many writers on two pools and a polling reader: the reader sees every position once, in order', async (t) => {
  await withStores(async (open) => {
    const [a, b, reader] = await Promise.all([open({ poolSize: 4 }), open({ poolSize: 4 }), open({ poolSize: 1 })]);
    const poller = pollingReader((after) => reader.readAll({ after }));
    const writer = async (store: EventStore, name: string): Promise<void> => {
      for (let i = 0; i < 40; i++) await store.append(`pod-${name}`, [newEvent('W', { i }), newEvent('W', { i })], 'any');
    };
    await Promise.all(['a1', 'a2', 'a3', 'a4'].map((n) => writer(a, n)).concat(['b1', 'b2', 'b3', 'b4'].map((n) => writer(b, n))));
    await until('the reader caught up', async () => poller.seen.length >= 640);
    await poller.stop();
    t.deepEqual(poller.seen, Array.from({ length: 640 }, (_, i) => i + 1));
    for (const n of ['a1', 'b4']) {
      t.deepEqual((await a.readStream(`pod-${n}`)).map((e) => e.version), Array.from({ length: 80 }, (_, i) => i + 1));
    }
  });
});

test('two pools appending to one stream with exact expected versions: no gaps, every conflict typed', async (t) => {
  await withStores(async (open) => {
    const stores = await Promise.all([open(), open()]);
    const race = async (store: EventStore, name: string) => {
      let successes = 0;
      let conflicts = 0;
      while (successes < 100) {
        const version = await store.streamVersion('pod-race');
        try {
          await store.append('pod-race', [newEvent('Raced', { name, n: successes })], version);
          successes++;
        } catch (e) {
          if (!(e instanceof WrongExpectedVersion && e.expected === version && e.actual > version)) throw e;
          conflicts++;
        }
      }
      return conflicts;
    };
    const conflicts = await Promise.all([race(stores[0]!, 'A'), race(stores[1]!, 'B')]);
    t.log(`conflicts: ${conflicts.join(', ')}`);
    const events = await stores[0]!.readStream('pod-race');
    t.deepEqual(events.map((e) => e.version), Array.from({ length: 200 }, (_, i) => i + 1));
    t.deepEqual(events.map((e) => e.position), Array.from({ length: 200 }, (_, i) => i + 1), 'no position lost to a refused append');
    for (const name of ['A', 'B']) {
      t.deepEqual(events.filter((e) => e.data['name'] === name).map((e) => e.data['n']), Array.from({ length: 100 }, (_, i) => i));
    }
  });
});

test('appends NOTIFY the new head position only, and a waiter on another pool is woken by it, not by polling', async (t) => {
  await withStores(async (open, schema) => {
    const waiting = await open({ pollMs: 60_000 });
    const writer = await open();
    await withClient(async (listener) => {
      const payloads: string[] = [];
      listener.on('notification', (n) => payloads.push(`${n.channel}:${n.payload ?? ''}`));
      await listener.query(`LISTEN "${schema}.appended"`);
      const ac = new AbortController();
      const wait = waiting.waitForChange(0, ac.signal);
      await writer.append('pod-a', [newEvent('A'), newEvent('B'), newEvent('C')], 'no_stream');
      const started = Date.now();
      await wait;
      t.true(Date.now() - started < 5000);
      await writer.append('pod-b', [newEvent('D')], 'no_stream');
      await until('two notifications arrived', async () => payloads.length >= 2);
      t.deepEqual(payloads, [`${schema}.appended:3`, `${schema}.appended:4`]);
    });
  });
});

/** The backend pids of a store's connections: its pool's, or its LISTEN connection's. */
const backends = (schema: string, listen: boolean): Promise<number[]> =>
  withClient(async (c) =>
    (
      await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`podlog ${schema}${listen ? ' listen' : ''}`])
    ).rows.map((r) => r.pid),
  );

const terminate = (pids: number[]): Promise<unknown> => withClient((c) => c.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]));

test('a terminated LISTEN connection is reopened and listens again; a commit made meanwhile still wakes the waiter', async (t) => {
  await withStores(async (open, schema) => {
    // Polling once a minute: any prompt wake-up below comes from LISTEN.
    const store = await open({ pollMs: 60_000, retryMs: 1500 });
    const writer = await open();
    await writer.append('pod-a', [newEvent('A')], 'no_stream');
    const ac = new AbortController();
    await store.waitForChange(0, ac.signal); // opens the LISTEN connection
    const [first] = await backends(schema, true);
    t.not(first, undefined);

    const wait = store.waitForChange(1, ac.signal);
    await terminate([first!]);
    await until('the connection is gone', async () => (await backends(schema, true)).length === 0);
    await writer.append('pod-a', [newEvent('WhileDown')], 1);
    t.deepEqual(await backends(schema, true), [], 'committed while nothing listened');
    const started = Date.now();
    await wait;
    const took = Date.now() - started;
    t.log(`woken ${took} ms after the commit`);
    t.true(took < 10_000, 'woken once LISTEN was back, not by the minute-long poll');
    const [second] = await backends(schema, true);
    t.true(second !== undefined && second !== first, 'a new LISTEN connection');
    t.deepEqual((await store.readAll({ after: 1 })).map((e) => e.type), ['WhileDown']);

    // And it listens: the next commit wakes a new waiter at once.
    const next = store.waitForChange(2, ac.signal);
    await sleep(100);
    const before = Date.now();
    await writer.append('pod-a', [newEvent('AfterReconnect')], 2);
    await next;
    t.true(Date.now() - before < 5000);
  });
});

test('while the LISTEN connection is down, waiters are woken by polling the head', async (t) => {
  await withStores(async (open, schema) => {
    // Reconnecting only after a minute: the wake-up below can only come from the 50 ms poll.
    const store = await open({ pollMs: 50, retryMs: 60_000 });
    const writer = await open();
    const ac = new AbortController();
    const first = store.waitForChange(0, ac.signal);
    await writer.append('pod-a', [newEvent('A')], 'no_stream');
    await first;
    const wait = store.waitForChange(1, ac.signal);
    await terminate(await backends(schema, true));
    await until('the connection is gone', async () => (await backends(schema, true)).length === 0);
    let woke = false;
    void wait.then(() => (woke = true));
    await sleep(300);
    t.false(woke, 'polling wakes nobody without a commit');
    const before = Date.now();
    await writer.append('pod-a', [newEvent('B')], 1);
    await wait;
    t.true(Date.now() - before < 5000);
    t.deepEqual(await backends(schema, true), [], 'still not listening: it was the poll');
  });
});

test('an append whose connection is terminated mid-flight fails with a clear error, writes nothing, and the next one works', async (t) => {
  await withStores(async (open, schema) => {
    const store = await open();
    await store.append('pod-a', [newEvent('A')], 'no_stream');
    await withClient(async (holder) => {
      // Holds the counter row, so the append below is in flight (waiting for it) when its backend is terminated.
      await holder.query('BEGIN');
      await holder.query(`SELECT position FROM "${schema}".head FOR UPDATE`);
      const inFlight = store.append('pod-a', [newEvent('B'), newEvent('C')], 1);
      let waiting: number[] = [];
      await until('the append waits for the lock', async () => {
        waiting = await withClient(async (c) =>
          (await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [`podlog ${schema}`])).rows.map((r) => r.pid),
        );
        return waiting.length === 1;
      });
      await terminate(waiting);
      const e = await t.throwsAsync(inFlight);
      t.true(e instanceof PodlogError && e.code === 'ESTORE_UNAVAILABLE' && e.exitCode === 254, String(e));
      t.regex(e!.message, /cannot be reached: .*an append in flight may or may not have been recorded/);
      await holder.query('ROLLBACK');
    });
    t.deepEqual((await store.readStream('pod-a')).map((x) => x.type), ['A'], 'nothing half-written');
    t.deepEqual(await store.append('pod-a', [newEvent('B')], 1), { version: 2, position: 2 });
  });
});

test("a subscriber (readBatches) whose LISTEN connection is terminated twice mid-stream sees every event once, in order", async (t) => {
  await withStores(async (open, schema) => {
    const store = await open({ pollMs: 60_000, retryMs: 200 });
    const writer = await open();
    const ac = new AbortController();
    const seen: number[] = [];
    const subscriber = (async () => {
      for await (const batch of readBatches(store, { signal: ac.signal, batchSize: 7 })) {
        seen.push(...batch.map((e) => e.position));
        if (seen.length >= 300) ac.abort();
      }
    })();
    for (let i = 0; i < 100; i++) {
      await writer.append(`pod-${i % 7}`, [newEvent('A'), newEvent('B'), newEvent('C')], 'any');
      if (i === 30 || i === 60) {
        await until('the subscriber listens', async () => (await backends(schema, true)).length === 1);
        await terminate(await backends(schema, true));
      }
      await sleep(5);
    }
    const timer = setTimeout(() => ac.abort(), 20_000);
    await subscriber;
    clearTimeout(timer);
    t.deepEqual(seen, Array.from({ length: 300 }, (_, i) => i + 1));
  });
});

test('terminated pool connections are replaced: the store goes on without reopening', async (t) => {
  await withStores(async (open, schema) => {
    const store = await open({ poolSize: 3 });
    await Promise.all([1, 2, 3].map((i) => store.append(`pod-${i}`, [newEvent('A')], 'no_stream')));
    const pids = await backends(schema, false);
    t.true(pids.length >= 1);
    await terminate(pids);
    await until('the old connections are gone', async () => (await backends(schema, false)).every((p) => !pids.includes(p)));
    await sleep(100); // the pool hears of the termination from each idle socket
    t.deepEqual(await store.append('pod-1', [newEvent('B')], 1), { version: 2, position: 4 });
    t.is(await store.headPosition(), 4);
  });
});

const tablesOf = (schema: string): Promise<string[]> =>
  withClient(async (c) => (await c.query<{ t: string }>('SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [schema])).rows.map((r) => r.t));

const migrationsOf = (schema: string): Promise<{ version: number; applied_at: Date }[]> =>
  withClient(async (c) => (await c.query<{ version: number; applied_at: Date }>(`SELECT version, applied_at FROM "${schema}".migrations ORDER BY version`)).rows);

test('the first opens create the schema and apply each migration once, even when four race; later opens apply nothing', async (t) => {
  await withStores(async (open, schema) => {
    t.deepEqual(await tablesOf(schema), []);
    const stores = await Promise.all([open(), open(), open(), open()]);
    t.deepEqual(await tablesOf(schema), ['events', 'head', 'migrations', 'projection_details', 'projection_rows', 'projections', 'streams']);
    const applied = await migrationsOf(schema);
    t.deepEqual(applied.map((m) => m.version), Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
    await Promise.all(stores.map((s, i) => s.append(`pod-${i}`, [newEvent('X')], 'no_stream')));
    await open();
    t.deepEqual(await migrationsOf(schema), applied, 'nothing re-applied');
    t.is(await stores[0]!.headPosition(), 4);
  });
});

test('a log left by the first podlog (schema version 1) opens, is migrated, and keeps its events and rows', async (t) => {
  await withStores(async (open, schema) => {
    await withClient(async (c) => {
      t.deepEqual(await migrate(c, 'the old log', schema, 1), [1]);
      await c.query(appendQuery(schema, 'pod-a', { exact: false, value: 'no_stream' }, [serialiseEvent('pod-a', newEvent('Old'), 0)]));
      await c.query(`SELECT "${schema}".save_projection($1, $2, $3, $4, $5, $6, $7, $8)`, ['pods', 's', 0, 1, false, [], ['pod-a'], ['{"state":"prepared"}']]);
    });
    const old = await t.throwsAsync(open({ readonly: true }));
    t.true(old instanceof PodlogError && old.code === 'ESTORE_OLD_SCHEMA', String(old));
    const store = await open();
    t.deepEqual((await migrationsOf(schema)).map((m) => m.version), Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
    t.deepEqual((await store.readAll()).map((e) => [e.stream, e.version, e.type]), [['pod-a', 1, 'Old']]);
    t.deepEqual((await store.loadProjection('pods')).rows.get('pod-a'), { state: 'prepared' });
    t.deepEqual(await store.appendMany([{ stream: 'pod-a', events: [newEvent('New')], expected: 1 }, { stream: 'pod-b', events: [newEvent('New')], expected: 'no_stream' }]), [
      { version: 2, position: 2 },
      { version: 1, position: 3 },
    ]);
  });
});

/** Asserts that opening `schema` is refused with `code` and a message matching `message`, changing no table. */
const refused = async (t: import('ava').ExecutionContext, url: string, schema: string, code: string, message: RegExp): Promise<void> => {
  const before = await tablesOf(schema);
  const e = await t.throwsAsync(openPostgresStore(url, { schema }));
  t.true(e instanceof PodlogError && e.code === code && e.exitCode === 254, String(e));
  t.regex(e!.message, message);
  t.deepEqual(await tablesOf(schema), before, 'nothing created or dropped');
};

test("a schema holding another program's tables is refused untouched: ESTORE_FOREIGN", async (t) => {
  const { url, schema: freshSchema, dropSchema } = server();
  const schema = freshSchema();
  try {
    await withClient((c) => c.query(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".users (id int); INSERT INTO "${schema}".users VALUES (1)`));
    await refused(t, url, schema, 'ESTORE_FOREIGN', new RegExp(`schema ${schema} holds other tables \\(users\\); podlog will not touch it`));
    t.deepEqual(await withClient(async (c) => (await c.query(`SELECT id FROM "${schema}".users`)).rows), [{ id: 1 }]);
  } finally {
    await dropSchema(schema);
  }
});

test('a log migrated by a newer podlog is refused, naming both versions: ESTORE_NEWER_SCHEMA', async (t) => {
  await withStores(async (open, schema) => {
    const store = await open();
    await store.append('pod-a', [newEvent('X')], 'no_stream');
    await store.close();
    await withClient((c) => c.query(`INSERT INTO "${schema}".migrations (version, description) VALUES (99, 'from the future')`));
    await refused(t, server().url, schema, 'ESTORE_NEWER_SCHEMA', new RegExp(`schema version 99, this podlog supports up to version ${PG_SCHEMA_VERSION}`));
    t.is(await withClient(async (c) => (await c.query(`SELECT count(*)::int AS n FROM "${schema}".events`)).rows[0].n), 1);
  });
});

test('read-only: refuses a missing log and creates nothing; reads, wakes on other writers, refuses every write', async (t) => {
  await withStores(async (open, schema) => {
    const missing = await t.throwsAsync(open({ readonly: true }));
    t.true(missing instanceof PodlogError && missing.code === 'ESTORE_NOT_FOUND', String(missing));
    t.regex(missing!.message, new RegExp(`there is no podlog event store in .*schema=${schema} yet`));
    t.deepEqual(await tablesOf(schema), [], 'nothing created');

    const writer = await open();
    await writer.append('pod-a', [newEvent('Created')], 'no_stream');
    await writer.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 0, checkpoint: 1, upserts: new Map([['pod-a', 1]]) });
    const reader = await open({ readonly: true });
    t.true(reader.readonly);
    t.deepEqual((await reader.readStream('pod-a')).map((e) => e.type), ['Created']);
    t.is((await reader.loadProjection('pods')).checkpoint, 1);
    const writes: [string, Promise<unknown>][] = [
      ['append', reader.append('pod-a', [newEvent('Nope')], 1)],
      ['appendMany', reader.appendMany([{ stream: 'pod-a', events: [newEvent('Nope')], expected: 1 }])],
      ['save', reader.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 1, checkpoint: 2, upserts: new Map() })],
      ['compact', reader.compactStreams([{ stream: 'pod-a', expected: 1, tombstone: { type: 'T', schema: 1, data: {} } }])],
      ['reclaim', reader.reclaimSpace()],
    ];
    for (const [what, p] of writes) {
      const e = await t.throwsAsync(p);
      t.true(e instanceof PodlogError && e.code === 'ESTORE_READONLY', `${what}: ${String(e)}`);
      t.regex(e!.message, /opened read-only/);
    }
    const ac = new AbortController();
    const wait = reader.waitForChange(1, ac.signal);
    await writer.append('pod-a', [newEvent('Started')], 1);
    await wait;
    t.deepEqual((await reader.readAll({ after: 1 })).map((e) => e.type), ['Started']);

    // An older log is not migrated by a read-only open.
    await withClient((c) => c.query(`DELETE FROM "${schema}".migrations WHERE version = $1`, [PG_SCHEMA_VERSION]));
    const old = await t.throwsAsync(open({ readonly: true }));
    t.true(old instanceof PodlogError && old.code === 'ESTORE_OLD_SCHEMA', String(old));
    t.regex(old!.message, new RegExp(`open it once for writing to migrate it to version ${PG_SCHEMA_VERSION}`));
  });
});

/** Runs `fn` with a new database of the test server, dropped afterwards. */
const withDatabase = async (create: string, fn: (url: string) => Promise<void>): Promise<void> => {
  const name = `db_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  await withClient((c) => c.query(`CREATE DATABASE ${name} ${create}`));
  try {
    await fn(server().url.replace(/\/postgres$/, `/${name}`));
  } finally {
    await withClient((c) => c.query(`DROP DATABASE ${name} WITH (FORCE)`));
  }
};

test('a database whose transactions default to SERIALIZABLE: concurrent appends still all succeed, in order', async (t) => {
  await withDatabase('', async (url) => {
    await withClient((c) => c.query(`ALTER DATABASE ${new URL(url).pathname.slice(1)} SET default_transaction_isolation = 'serializable'`));
    const stores = await Promise.all([openPostgresStore(url), openPostgresStore(url)]);
    try {
      await Promise.all(stores.flatMap((s, k) => Array.from({ length: 10 }, (_, i) => s.append(`pod-${k}-${i}`, [newEvent('X')], 'no_stream'))));
      t.deepEqual((await stores[0]!.readAll()).map((e) => e.position), Array.from({ length: 20 }, (_, i) => i + 1));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

test('a database that is not UTF8 is refused before anything is created: ESTORE_OPEN', async (t) => {
  await withDatabase("ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0", async (url) => {
    const e = await t.throwsAsync(openPostgresStore(url));
    t.true(e instanceof PodlogError && e.code === 'ESTORE_OPEN', String(e));
    t.regex(e!.message, /encoding is LATIN1, podlog needs UTF8/);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      t.is((await c.query("SELECT 1 FROM pg_namespace WHERE nspname = 'podlog'")).rowCount, 0);
    } finally {
      await c.end();
    }
  });
});

test('the location names the log without its password; a bad URL, schema or unreachable server is a clear error', async (t) => {
  const { url, schema: freshSchema, dropSchema } = server();
  const schema = freshSchema();
  const withPassword = url.replace('podlog@', 'podlog:hunter2@');
  const store = await openPostgresStore(`${withPassword}?schema=${schema}`);
  try {
    t.is(store.schema, schema, 'the schema comes from the URL');
    t.false(store.location.includes('hunter2'), store.location);
    t.regex(store.location, new RegExp(`^postgresql://podlog@.*/postgres\\?schema=${schema}$`));
  } finally {
    await store.close();
  }
  // The socket directory as a query parameter, libpq's other form.
  const query = `host=${encodeURIComponent(server().dir)}&port=${new URL(url).port}&user=podlog&schema=${schema}`;
  const viaQuery = await openPostgresStore(`postgresql:///postgres?${query}`);
  try {
    t.is(viaQuery.location, `postgresql:///postgres?${query}`);
    await viaQuery.append('pod-a', [newEvent('X')], 'no_stream');
  } finally {
    await viaQuery.close();
    await dropSchema(schema);
  }
  for (const [bad, message] of [
    ['not a url', /not a PostgreSQL URL/],
    ['mysql://x@localhost/db', /must start with postgres:\/\/ or postgresql:\/\//],
    [`${url}?schema=Bad-Name`, /schema name "Bad-Name" is not usable/],
  ] as const) {
    const e = await t.throwsAsync(openPostgresStore(bad));
    t.true(e instanceof PodlogError && e.code === 'ESTORE_BAD_INPUT', String(e));
    t.regex(e!.message, message);
  }
  const nowhere = `postgresql://podlog:hunter2@${encodeURIComponent(server().dir)}:1/postgres`;
  const e = await t.throwsAsync(openPostgresStore(nowhere));
  t.true(e instanceof PodlogError && e.code === 'ESTORE_OPEN', String(e));
  t.regex(e!.message, /^cannot open the event store postgresql:\/\/podlog@.*:1\/postgres\?schema=podlog: /);
  t.false(e!.message.includes('hunter2'));
});

test('text PostgreSQL cannot store intact (NUL, a lone surrogate) is refused: ESTORE_BAD_INPUT, nothing written', async (t) => {
  await withStores(async (open) => {
    const store = await open();
    for (const [stream, type] of [['pod-\0', 'X'], ['pod-\ud800', 'X'], ['pod-a', 'X\0'], ['pod-a', '\udc00']]) {
      const e = await t.throwsAsync(store.append(stream!, [newEvent(type!)], 'any'));
      t.true(e instanceof PodlogError && e.code === 'ESTORE_BAD_INPUT', String(e));
    }
    // In data and metadata they are JSON escapes, and round-trip.
    const odd = newEvent('Odd', { nul: 'a\0b', lone: '\ud800' }, { user: 'x\0y' });
    await store.append('pod-a', [odd], 'no_stream');
    const [back] = await store.readStream('pod-a');
    t.deepEqual([back!.data, back!.meta.user], [odd.data, 'x\0y']);
    t.is(await store.headPosition(), 1);
  });
});

test('a closed store refuses calls and releases its waiters', async (t) => {
  await withStores(async (open) => {
    const store = await open();
    const ac = new AbortController();
    const wait = store.waitForChange(0, ac.signal);
    await sleep(100);
    await store.close();
    await wait;
    await store.close();
    for (const p of [store.headPosition(), store.append('pod-a', [newEvent('X')], 'any'), store.readAll(), store.waitForChange(0, ac.signal)]) {
      const e = await t.throwsAsync(p);
      t.is((e as PodlogError).code, 'ESTORE_CLOSED');
    }
  });
});
