/**
 * Subscriptions across a store that cannot be reached for a while (ESTORE_UNAVAILABLE, as the PostgreSQL
 * adapter reports a restart): readBatches, consume() and watch() call again until it answers and go on
 * where they were, so nothing is lost or seen twice; a read that stops at the head fails at once.
 * The store here is a real SQLite log behind a proxy that fails the first calls of a method.
 */
import test from 'ava';
import { firstValueFrom, take, toArray } from 'rxjs';
import { PodTable } from '../../src/api/http/pod-table.js';
import { consume, readBatches } from '../../src/api/subscribe.js';
import { watch } from '../../src/api/watch.js';
import { PodlogError } from '../../src/errors.js';
import { openMemorySqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/port.js';
import { newEvent } from '../store/events.js';

const unavailable = () => new PodlogError('ESTORE_UNAVAILABLE', 'the event store cannot be reached (test)');

/** `store` whose named methods fail `times` times each before answering; `after`: fail once the real call has run. */
const flaky = (store: EventStore, times: Partial<Record<keyof EventStore, number>>, after: Array<keyof EventStore> = []): EventStore =>
  new Proxy(store, {
    get: (target, prop: keyof EventStore) => {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const left = times[prop] ?? 0;
        if (left > 0 && !after.includes(prop)) {
          times[prop] = left - 1;
          throw unavailable();
        }
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (left > 0) {
          times[prop] = left - 1;
          throw unavailable();
        }
        return result;
      };
    },
  });

test('a live readBatches waits out failed reads and a failed wait, and yields every event once, in order', async (t) => {
  const store = openMemorySqliteStore('test');
  for (let i = 0; i < 5; i++) await store.append(`s-${i % 2}`, [newEvent('E')], 'any');
  const appendLate = async () => {
    for (let i = 0; i < 5; i++) await store.append('s-late', [newEvent('Late')], 'any');
  };
  const calls = { readAll: 2, headPosition: 1, waitForChange: 2 };
  const ac = new AbortController();
  const seen: number[] = [];
  const reading = (async () => {
    for await (const batch of readBatches(flaky(store, calls), { batchSize: 2, signal: ac.signal })) {
      seen.push(...batch.map((e) => e.position));
      // Appended once the reader has found the head and waits (its first waits fail).
      if (seen.length === 5) setTimeout(() => void appendLate(), 50);
      if (seen.length === 10) ac.abort();
    }
  })();
  await reading;
  t.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.deepEqual(calls, { readAll: 0, headPosition: 0, waitForChange: 0 });
});

test('a readBatches that stops at the head fails at once on a store that cannot be reached', async (t) => {
  const store = openMemorySqliteStore('test');
  const batches = readBatches(flaky(store, { headPosition: 1 }), { stopAtHead: true });
  await t.throwsAsync(batches.next(), { message: /cannot be reached/ });
});

test('consume(): a checkpoint save cut off after it committed is not taken for another consumer, and no batch is handled twice', async (t) => {
  const store = openMemorySqliteStore('test');
  for (let i = 0; i < 6; i++) await store.append('s', [newEvent('E')], 'any');
  const handled: number[] = [];
  const ac = new AbortController();
  await consume(
    flaky(store, { saveProjection: 1 }, ['saveProjection']),
    'exporter',
    async (batch) => {
      handled.push(...batch.map((e) => e.position));
      if (handled.length === 6) ac.abort();
    },
    { batchSize: 3, signal: ac.signal },
  );
  t.deepEqual(handled, [1, 2, 3, 4, 5, 6]);
  t.is((await store.loadProjection('consumer:exporter')).checkpoint, 6);
});

test('watch() from mid-history folds the pod before its first change even if that read fails first', async (t) => {
  const store = openMemorySqliteStore('test');
  const uuid = '0c8d2a9e-0000-4000-8000-000000000001';
  const data = { uuid, apps: [{ name: 'a', image: 'busybox' }], mutable: false, overlay: true, stage1: { rootfs: '/x', manifest: { acKind: 'ImageManifest', name: 's', annotations: [] } } };
  const [prepare] = [newEvent('PrepareRequested', data)];
  await store.append(`pod-${uuid}`, [{ ...prepare!, schema: 4 }], 'no_stream');
  const { position } = await store.append(`pod-${uuid}`, [newEvent('PodCreated')], 1);
  await store.append(`pod-${uuid}`, [newEvent('PrepareAborted', { reason: 'test' }, { causationId: prepare!.meta.id })], 2);
  const changes = await firstValueFrom(watch(flaky(store, { readStream: 2 }), { fromPosition: position }).pipe(take(1), toArray()));
  t.deepEqual(changes.map((c) => [c.from, c.to]), [['preparing', 'abortedPrepare']]);
});

test("the api-service's pod table folds a batch whose reads fail first, and moves past it only once it has", async (t) => {
  const store = openMemorySqliteStore('test');
  const uuid = '0c8d2a9e-0000-4000-8000-000000000002';
  const data = { uuid, apps: [{ name: 'a', image: 'busybox' }], mutable: false, overlay: true, stage1: { rootfs: '/x', manifest: { acKind: 'ImageManifest', name: 's', annotations: [] } } };
  await store.append(`pod-${uuid}`, [{ ...newEvent('PrepareRequested', data), schema: 4 }], 'no_stream');
  await store.append(`pod-${uuid}`, [newEvent('PodCreated')], 1);
  const table = await PodTable.load(flaky(store, { readStream: 2 }), { dataDir: '/nonexistent', hostId: 'h' });
  // The tail's batch holds the pod's second event only: its first must be read from the log.
  await table.apply(await store.readAll({ after: 1 }));
  t.is(table.pods.get(uuid)?.row.state, 'preparing');
  t.is(table.pods.get(uuid)?.row.version, 2);
});
