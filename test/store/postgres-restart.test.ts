/**
 * The PostgreSQL event store across a server restart (fast shutdown, then start). In its own file, with its
 * own server: a restart would fail the other files' tests.
 */
import test from 'ava';
import { newEvent } from './events.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { readBatches } from '../../src/api/subscribe.js';
import { PodlogError } from '../../src/errors.js';
import { usePostgres } from '../helpers/postgres.js';

const server = usePostgres(test);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a restart: calls while the server is down fail clearly, the store and a waiting subscriber go on afterwards, nothing lost or doubled', async (t) => {
  const { url, schema: freshSchema, pause, resume } = server();
  const schema = freshSchema();
  const store = await openPostgresStore(url, { schema, pollMs: 100, retryMs: 50 });
  const ac = new AbortController();
  try {
    for (let i = 0; i < 10; i++) await store.append(`pod-${i % 3}`, [newEvent('Before')], 'any');
    const seen: number[] = [];
    // The subscriber must be parked in waitForChange when the server stops (a read failing mid-way would end
    // readBatches with that error): count its waits.
    let waits = 0;
    const counted = new Proxy(store, {
      get: (target, prop) =>
        prop === 'waitForChange'
          ? (after: number, signal: AbortSignal) => {
              waits++;
              return target.waitForChange(after, signal);
            }
          : Reflect.get(target, prop),
    });
    const subscriber = (async () => {
      for await (const batch of readBatches(counted, { signal: ac.signal })) seen.push(...batch.map((e) => e.position));
    })();
    while (seen.length < 10 || waits === 0) await sleep(20);
    await sleep(200); // its head check done

    await pause(); // the subscriber is waiting for a change: its LISTEN connection is terminated
    for (const call of [store.append('pod-0', [newEvent('WhileDown')], 'any'), store.headPosition()]) {
      const e = await t.throwsAsync(call);
      t.true(e instanceof PodlogError && e.code === 'ESTORE_UNAVAILABLE' && e.exitCode === 254, String(e));
      t.regex(e!.message, /cannot be reached: connect ENOENT .*\.s\.PGSQL\.\d+$/, 'never connected: nothing was sent');
    }
    await sleep(300); // the subscriber polls a server that is not there, and keeps waiting
    await resume();

    for (let i = 0; i < 10; i++) await store.append(`pod-${i % 3}`, [newEvent('After')], 'any');
    const deadline = Date.now() + 20_000;
    while (seen.length < 20 && Date.now() < deadline) await sleep(20);
    ac.abort();
    await subscriber;
    t.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i + 1), 'the failed append wrote nothing and took no position');
    t.deepEqual((await store.readAll({ types: ['WhileDown'] })).length, 0);
  } finally {
    ac.abort();
    await store.close();
  }
});
