/** The pod list: rows saved with their summaries, folded incrementally, equal to folding each stream. */
import test, { type ExecutionContext } from 'ava';
import { v4 as uuidv4 } from 'uuid';
import { history } from '../../bench/histories.js';
import { POD_EVENTS } from '../../src/events/catalogue.js';
import { commandContext, newMetadata } from '../../src/events/metadata.js';
import { foldPod, initialPod, stateOf } from '../../src/engine/fold.js';
import { catchUpPodList, listRowOf, POD_LIST, POD_LIST_SCHEMA, type PodListRow, type PodRow } from '../../src/engine/pod-list.js';
import { podStream } from '../../src/engine/streams.js';
import type { EventStore, NewEvent } from '../../src/store/port.js';
import { openMemorySqliteStore } from '../../src/store/sqlite.js';

const ctx = commandContext(['test', 'pod-list']);
const ENDS = ['running', 'exited', 'deleted', 'prepared', 'aborted'] as const;

const eventsOf = (steps: ReturnType<typeof history>): NewEvent[] =>
  steps.map(({ type, data }) => ({ type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta: newMetadata(ctx) }));

/** Pods of every end state, each with its whole history; `cut` events of each held back. */
const pods = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const uuid = uuidv4();
    return { uuid, events: eventsOf(history(uuid, ENDS[i % ENDS.length]!, i % 3)) };
  });

/** The rows a fold of every stream from its first event gives (deleted pods have none). */
const folded = async (store: EventStore, uuids: string[]): Promise<Map<string, PodRow>> => {
  const rows = new Map<string, PodRow>();
  for (const uuid of uuids) {
    const events = await store.readStream(podStream(uuid));
    if (events.length === 0) continue;
    const snapshot = foldPod(initialPod(uuid), events);
    const last = events[events.length - 1]!;
    if (stateOf(snapshot) !== 'deleted') rows.set(uuid, { uuid, state: stateOf(snapshot), version: last.version, position: last.position, context: snapshot.context });
  }
  return rows;
};

/** As stored: what JSON keeps of a row (no undefined fields). */
const stored = <T>(rows: Map<string, T>): Record<string, T> => JSON.parse(JSON.stringify(Object.fromEntries(rows))) as Record<string, T>;

const listed = (rows: Map<string, PodRow>): Map<string, PodListRow> => new Map([...rows].map(([uuid, row]) => [uuid, listRowOf(row)]));

/** A test on an empty log in memory, closed afterwards. */
const onStore = (fn: (t: ExecutionContext, store: EventStore) => Promise<void>) => async (t: ExecutionContext) => {
  const store = openMemorySqliteStore('pod-list test');
  try {
    await fn(t, store);
  } finally {
    await store.close();
  }
};

test('the list holds each live pod as its stream folds, without what listing does not read; a pod loads whole', onStore(async (t, store) => {
  const all = pods(25);
  for (const p of all) await store.append(podStream(p.uuid), p.events, 'no_stream');
  const rows = await catchUpPodList(store);
  const expected = await folded(store, all.map((p) => p.uuid));
  t.is(rows.size, 20, 'the deleted pods are not listed');
  t.deepEqual(stored(rows), stored(listed(expected)));
  t.true([...rows.values()].every((r) => r.context.apps.every((a) => !('exec' in a))), "an app's command line is not in the list");
  t.deepEqual(stored((await store.loadProjection<PodListRow>(POD_LIST)).rows), stored(rows), 'loaded again: the summaries');
  const [uuid, row] = [...expected][0]!;
  t.deepEqual(await store.loadProjectionRow(POD_LIST, uuid), { schema: POD_LIST_SCHEMA, row: JSON.parse(JSON.stringify(row)) as PodRow });
}));

test('a catch-up folds listed pods on from their whole rows, and new pods from the start', onStore(async (t, store) => {
  const all = pods(25);
  const cut = (events: NewEvent[]) => Math.max(1, events.length - 3);
  for (const p of all) await store.append(podStream(p.uuid), p.events.slice(0, cut(p.events)), 'no_stream');
  await catchUpPodList(store);
  for (const p of all) await store.append(podStream(p.uuid), p.events.slice(cut(p.events)), cut(p.events));
  const late = pods(5);
  for (const p of late) await store.append(podStream(p.uuid), p.events, 'no_stream');
  const rows = await catchUpPodList(store);
  const expected = await folded(store, [...all, ...late].map((p) => p.uuid));
  t.deepEqual(stored(rows), stored(listed(expected)));
  for (const [uuid, row] of expected) t.deepEqual((await store.loadProjectionRow<PodRow>(POD_LIST, uuid))?.row, JSON.parse(JSON.stringify(row)) as PodRow);
}));

test("a list another process saved while this one folded: the save is refused, and this one's rows are read again", onStore(async (t, store) => {
  const [a, b] = pods(2);
  await store.append(podStream(a!.uuid), a!.events.slice(0, 4), 'no_stream');
  await catchUpPodList(store);
  await store.append(podStream(a!.uuid), a!.events.slice(4), 4);
  await store.append(podStream(b!.uuid), b!.events, 'no_stream');
  // Both start from the same saved list; one saves first.
  const [one, two] = await Promise.all([catchUpPodList(store), catchUpPodList(store)]);
  const expected = stored(listed(await folded(store, [a!.uuid, b!.uuid])));
  t.deepEqual(stored(one), expected);
  t.deepEqual(stored(two), expected);
  t.deepEqual(stored(await catchUpPodList(store)), expected);
}));

test('a list saved under another schema is rebuilt; a pod whose history the machine refuses is listed as broken, the others as usual', onStore(async (t, store) => {
  const all = pods(4);
  for (const p of all) await store.append(podStream(p.uuid), p.events, 'no_stream');
  t.true(await store.saveProjection({ name: POD_LIST, schema: 'pod-machine-v1', expectedCheckpoint: 0, checkpoint: 3, upserts: new Map([['stale', { state: 'running' }]]) }));
  const bad = all[0]!;
  const version = await store.streamVersion(podStream(bad.uuid));
  await store.append(podStream(bad.uuid), eventsOf([{ type: 'PodCreated', data: {} }]), version);
  const rows = await catchUpPodList(store);
  t.false(rows.has('stale'));
  const broken = rows.get(bad.uuid)!;
  t.regex(broken.broken ?? '', /PodCreated is not valid/);
  t.is(broken.version, version, 'the row stays as it was before the refused event');
  t.is(broken.state, stateOf(foldPod(initialPod(bad.uuid), await store.readStream(podStream(bad.uuid), { to: version }))));
  const others = all.slice(1).map((p) => p.uuid);
  const expected = listed(await folded(store, others));
  t.deepEqual(stored(new Map(others.flatMap((u) => (rows.has(u) ? [[u, rows.get(u)!]] : [])))), stored(expected));
  // Later events of the broken pod are skipped, and it stays listed as broken.
  await store.append(podStream(bad.uuid), eventsOf([{ type: 'PodCreated', data: {} }]), version + 1);
  t.is((await catchUpPodList(store)).get(bad.uuid)?.broken, broken.broken);
}));
