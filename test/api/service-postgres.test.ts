/**
 * One log on PostgreSQL for several hosts (each a connection of its own, events stamped with its host
 * id): the library's watch() and consume() and the api-service see every host's events, live.
 */
import test from 'ava';
import { firstValueFrom, take, toArray } from 'rxjs';
import { startApiService } from '../../src/api/http/server.js';
import { consume } from '../../src/api/subscribe.js';
import { watch } from '../../src/api/watch.js';
import { podStream } from '../../src/engine/streams.js';
import { POD_EVENTS, type PodEventData, type PodEventType } from '../../src/events/catalogue.js';
import { commandContext, newMetadata } from '../../src/events/metadata.js';
import { openStoreAt } from '../../src/store/open.js';
import type { EventStore, RecordedEvent } from '../../src/store/port.js';
import { prepareData } from '../engine/samples.js';
import { get, targetOf } from '../helpers/http.js';
import { usePostgres } from '../helpers/postgres.js';
import { SseClient } from '../helpers/sse.js';

const pg = usePostgres(test);

/** A host's connection to a fresh shared log, and its way of recording a pod's events. */
const host = async (url: string, id: string) => {
  const store = await openStoreAt(url);
  const ctx = commandContext(['test'], id);
  const append = <T extends PodEventType>(uuid: string, type: T, data: PodEventData[T], expected: number | 'no_stream') =>
    store.append(podStream(uuid), [{ type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta: newMetadata(ctx) }], expected);
  /** A pod whose preparation starts and is aborted: two state changes, two events. */
  const abortedPod = async (uuid: string): Promise<void> => {
    await append(uuid, 'PrepareRequested', { ...prepareData(uuid), host: id }, 'no_stream');
    await append(uuid, 'PrepareAborted', { reason: 'test' }, 1);
  };
  return { store, abortedPod };
};

/** Runs the consumer `exporter` on `store` until it has been handed `count` events; those events. */
const consumeUntil = async (store: EventStore, count: number, batchSize: number): Promise<RecordedEvent[]> => {
  const seen: RecordedEvent[] = [];
  const stop = new AbortController();
  await consume(store, 'exporter', async (batch) => {
    seen.push(...batch);
    if (seen.length >= count) stop.abort();
  }, { batchSize, signal: stop.signal });
  return seen;
};

const freshLog = () => `${pg().url}?schema=${pg().schema()}`;
const uuid = (n: number) => `0190c1d2-0000-4000-8000-${String(n).padStart(12, '0')}`;

test('watch() on one host sees the state changes another host appends through its own connection', async (t) => {
  const url = freshLog();
  const [a, b] = await Promise.all([host(url, 'host-a'), host(url, 'host-b')]);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  const seen = firstValueFrom(watch(a.store).pipe(take(4), toArray()));
  await b.abortedPod(uuid(1));
  await a.abortedPod(uuid(2));
  const changes = await seen;
  t.deepEqual(changes.map((c) => [c.pod, c.host, c.from, c.to]), [
    [uuid(1), 'host-b', 'embryo', 'preparing'],
    [uuid(1), 'host-b', 'preparing', 'abortedPrepare'],
    [uuid(2), 'host-a', 'embryo', 'preparing'],
    [uuid(2), 'host-a', 'preparing', 'abortedPrepare'],
  ]);
  const onlyB = await firstValueFrom(watch(a.store, { host: 'host-b' }).pipe(take(2), toArray()));
  t.true(onlyB.every((c) => c.pod === uuid(1)));
});

test('consume() resumes on another host after the checkpoint the first host saved, every event once', async (t) => {
  const url = freshLog();
  const [a, b] = await Promise.all([host(url, 'host-a'), host(url, 'host-b')]);
  t.teardown(() => Promise.all([a.store.close(), b.store.close()]));
  for (let i = 0; i < 3; i++) await b.abortedPod(uuid(i));
  const first = await consumeUntil(a.store, 4, 2);
  t.is(first.length, 4);
  // Appended while no consumer runs, by the host that will consume next.
  for (let i = 3; i < 5; i++) await b.abortedPod(uuid(i));
  const rest = await consumeUntil(b.store, 6, 4);
  t.deepEqual([...first, ...rest].map((e) => e.position), Array.from({ length: 10 }, (_, i) => i + 1));
});

test('the api-service on PostgreSQL (read-only) lists every host\'s pods and streams what another host appends', async (t) => {
  const url = freshLog();
  const [a, b] = await Promise.all([host(url, 'host-a'), host(url, 'host-b')]);
  const reader = await openStoreAt(url, 'inspect');
  const service = await startApiService({ store: reader, dataDir: '/nonexistent', hostId: 'host-a', listen: { host: '127.0.0.1', port: 0 } });
  const target = targetOf(service.address);
  const client = new SseClient(target, '/v1/watch?from=0');
  t.teardown(async () => {
    client.close();
    await service.close();
    await Promise.all([reader.close(), a.store.close(), b.store.close()]);
  });
  await a.abortedPod(uuid(1));
  await b.abortedPod(uuid(2));
  await client.until((c) => c.messages.length === 4);
  t.deepEqual(client.messages.map((m) => [Number(m.id), (JSON.parse(m.data) as RecordedEvent).meta.hostId]), [[1, 'host-a'], [2, 'host-a'], [3, 'host-b'], [4, 'host-b']]);
  type Listed = { uuid: string; host: string; state: string };
  const pods = async (query = '') => (await get(target, `/v1/pods${query}`)).json<Listed[]>().map((p) => [p.uuid, p.host, p.state]).sort();
  // The pod table follows the log's tail: it has both once the tail has read them.
  for (let i = 0; i < 100 && (await pods()).length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.deepEqual(await pods(), [[uuid(1), 'host-a', 'aborted prepare'], [uuid(2), 'host-b', 'aborted prepare']]);
  t.deepEqual(await pods('?host=host-b'), [[uuid(2), 'host-b', 'aborted prepare']]);
  // Another host's pod has no manifest here (its PodManifestWritten would hold it).
  t.is((await get(target, `/v1/pods/${uuid(2)}`)).json<{ manifest: unknown }>().manifest, null);
  const metrics = (await get(target, '/metrics')).body;
  t.regex(metrics, /^podlog_pods\{state="aborted prepare",host="host-b"\} 1$/m);
  t.regex(metrics, /^podlog_events_total\{type="PrepareRequested",host="host-a"\} 1$/m);
});
