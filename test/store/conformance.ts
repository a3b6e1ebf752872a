/**
 * The event store conformance suite: every adapter (SQLite now, PostgreSQL later) runs it.
 *
 *   conformance(test, async () => ({ store, reopen, openAnother, cleanup }), { name: 'sqlite' });
 *
 * The factory is called once per test and must return a store over a fresh, empty log, whose first event
 * gets position 1 (PostgreSQL: a new schema, or TRUNCATE … RESTART IDENTITY). Positions are checked exactly
 * only where no append has failed: the port promises strictly increasing positions, and an adapter whose
 * sequence is consumed by a rolled-back insert (PostgreSQL) may leave gaps after a failure.
 * - `reopen` (optional): closes the store (and any earlier reopened one) and opens the same log again.
 * - `openAnother` (optional): a second, independent connection to the same log (another client, as another
 *   process would have), for cross-connection wake-ups.
 * - `cleanup`: closes whatever the handle opened and removes the log.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { v7 as uuidv7 } from 'uuid';
import {
  WrongExpectedVersion,
  type EventStore,
  type ExpectedVersion,
  type NewEvent,
  type RecordedEvent,
} from '../../src/store/port.js';
import { PodlogError } from '../../src/errors.js';
import { newEvent } from './events.js';
import { getEventListeners } from 'node:events';

export interface StoreHandle {
  store: EventStore;
  reopen?: () => Promise<EventStore>;
  openAnother?: () => Promise<EventStore>;
  cleanup: () => Promise<void>;
}

export type MakeStore = () => Promise<StoreHandle>;

/** A handle whose stores `open` opens (one now, more on request), all closed before `dispose`. */
export const storeHandle = async (open: () => Promise<EventStore>, dispose: () => Promise<void>): Promise<StoreHandle> => {
  const opened: EventStore[] = [];
  const another = async (): Promise<EventStore> => {
    const s = await open();
    opened.push(s);
    return s;
  };
  const closeAll = async (): Promise<void> => {
    for (const s of opened) await s.close();
  };
  return {
    store: await another(),
    reopen: async () => {
      await closeAll();
      return another();
    },
    openAnother: another,
    cleanup: async () => {
      await closeAll();
      await dispose();
    },
  };
};

export interface ConformanceOptions {
  /** Prefixes every test title (titles must be unique in a test file). */
  name: string;
}

const events = (n: number, type = 'Tick'): NewEvent[] => Array.from({ length: n }, (_, i) => newEvent(type, { i }));

/** The fields of a NewEvent, to compare what was written with what is read back. */
const written = (e: RecordedEvent): NewEvent => ({ type: e.type, schema: e.schema, data: e.data, meta: e.meta });

const isWrongVersion = (stream: string, expected: ExpectedVersion, actual: number) => (e: unknown): boolean =>
  e instanceof WrongExpectedVersion &&
  e.code === 'EWRONG_EXPECTED_VERSION' &&
  e.stream === stream &&
  e.expected === expected &&
  e.actual === actual;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with whether `p` settled within `ms`. */
const settlesWithin = async (p: Promise<unknown>, ms: number): Promise<boolean> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
};

export const conformance = (test: TestFn, makeStore: MakeStore, options: ConformanceOptions): void => {
  const it = (title: string, body: (t: ExecutionContext, h: StoreHandle) => Promise<void>): void => {
    test(`${options.name}: ${title}`, async (t) => {
      const h = await makeStore();
      try {
        await body(t, h);
      } finally {
        await h.cleanup();
      }
    });
  };

  it('an empty log has nothing in it', async (t, { store }) => {
    t.is(typeof store.kind, 'string');
    t.is(typeof store.location, 'string');
    t.is(await store.headPosition(), 0);
    t.is(await store.streamVersion('pod-none'), 0);
    t.deepEqual(await store.readStream('pod-none'), []);
    t.deepEqual(await store.readAll(), []);
    t.deepEqual(await store.listStreams(), []);
    t.deepEqual(await store.listStreams('pod-'), []);
  });

  it('append numbers a stream 1..N and returns the version and the last position', async (t, { store }) => {
    t.deepEqual(await store.append('pod-a', events(3), 'no_stream'), { version: 3, position: 3 });
    t.deepEqual(await store.append('pod-a', events(2), 3), { version: 5, position: 5 });
    const read = await store.readStream('pod-a');
    t.deepEqual(read.map((e) => e.version), [1, 2, 3, 4, 5]);
    t.deepEqual(read.map((e) => e.position), [1, 2, 3, 4, 5]);
    t.true(read.every((e) => e.stream === 'pod-a'));
    t.deepEqual(read.map((e) => e.data['i']), [0, 1, 2, 0, 1]);
    t.is(await store.streamVersion('pod-a'), 5);
    t.is(await store.headPosition(), 5);
  });

  it("expected version 'no_stream': creates a stream, refuses an existing one", async (t, { store }) => {
    await store.append('pod-a', events(2), 'no_stream');
    const e = await t.throwsAsync(store.append('pod-a', events(1), 'no_stream'));
    t.true(isWrongVersion('pod-a', 'no_stream', 2)(e), String(e));
    t.is(await store.streamVersion('pod-a'), 2);
    t.is(await store.headPosition(), 2);
  });

  it("expected version 'stream_exists': refuses a missing stream, accepts an existing one", async (t, { store }) => {
    const e = await t.throwsAsync(store.append('pod-a', events(1), 'stream_exists'));
    t.true(isWrongVersion('pod-a', 'stream_exists', 0)(e));
    t.is(await store.headPosition(), 0);
    t.deepEqual(await store.listStreams(), []);
    await store.append('pod-a', events(1), 'any');
    const r = await store.append('pod-a', events(1), 'stream_exists');
    t.is(r.version, 2);
    t.true(r.position > 1);
  });

  it("expected version 'any': appends to a missing or an existing stream", async (t, { store }) => {
    t.deepEqual(await store.append('pod-a', events(1), 'any'), { version: 1, position: 1 });
    t.deepEqual(await store.append('pod-a', events(2), 'any'), { version: 3, position: 3 });
  });

  it('exact expected version: succeeds on a match, WrongExpectedVersion with the actual version otherwise', async (t, { store }) => {
    t.deepEqual(await store.append('pod-a', events(1), 0), { version: 1, position: 1 }, '0 is a missing stream');
    t.deepEqual(await store.append('pod-a', events(2), 1), { version: 3, position: 3 });
    for (const wrong of [0, 1, 2, 4, 100]) {
      const e = await t.throwsAsync(store.append('pod-a', events(1), wrong));
      t.true(isWrongVersion('pod-a', wrong, 3)(e), `expected ${wrong}`);
      t.regex((e as Error).message, /pod-a/);
    }
    const missing = await t.throwsAsync(store.append('pod-b', events(1), 1));
    t.true(isWrongVersion('pod-b', 1, 0)(missing));
    t.is(await store.streamVersion('pod-a'), 3);
    t.is(await store.headPosition(), 3);
  });

  it('an append is atomic: a refused multi-event append writes none of its events', async (t, { store }) => {
    await store.append('pod-a', events(2), 'no_stream');
    await t.throwsAsync(store.append('pod-a', events(5), 1), { instanceOf: WrongExpectedVersion });
    const dup = newEvent('Dup');
    const batch = [newEvent('One'), dup, newEvent('Three'), { ...newEvent('Dup'), meta: { ...dup.meta } }];
    const e = await t.throwsAsync(store.append('pod-a', batch, 2));
    t.true(e instanceof PodlogError && e.code === 'ESTORE_DUPLICATE_EVENT', String(e));
    t.is(await store.streamVersion('pod-a'), 2);
    t.is(await store.headPosition(), 2);
    t.is((await store.readAll()).length, 2);
    // An event id already in the log is refused too.
    const first = (await store.readStream('pod-a'))[0]!;
    const again = await t.throwsAsync(store.append('pod-b', [newEvent('X'), { ...newEvent('X'), meta: first.meta }], 'any'));
    t.true(again instanceof PodlogError && again.code === 'ESTORE_DUPLICATE_EVENT', String(again));
    t.is(await store.streamVersion('pod-b'), 0);
    t.deepEqual(await store.listStreams(), [{ stream: 'pod-a', version: 2, position: 2 }]);
    // The store still works after the refusals; versions have no gaps (positions may, after a rollback).
    const r = await store.append('pod-a', events(1), 2);
    t.is(r.version, 3);
    t.true(r.position > 2);
    t.deepEqual((await store.readStream('pod-a')).map((e) => e.version), [1, 2, 3]);
  });

  it('an empty append checks the expected version and writes nothing', async (t, { store }) => {
    t.deepEqual(await store.append('pod-a', [], 'no_stream'), { version: 0, position: 0 });
    t.deepEqual(await store.listStreams(), []);
    await store.append('pod-a', events(2), 'no_stream');
    await store.append('pod-b', events(1), 'no_stream');
    t.deepEqual(await store.append('pod-a', [], 2), { version: 2, position: 2 });
    const e = await t.throwsAsync(store.append('pod-a', [], 1));
    t.true(isWrongVersion('pod-a', 1, 2)(e));
    t.is(await store.headPosition(), 3);
  });

  it('global positions increase strictly across streams, versions stay gap-free per stream', async (t, { store }) => {
    const expected = new Map<string, number>();
    for (let round = 0; round < 30; round++) {
      const stream = `pod-${round % 4}`;
      const n = 1 + (round % 3);
      const v = expected.get(stream) ?? 0;
      const r = await store.append(stream, events(n), v);
      expected.set(stream, v + n);
      t.is(r.version, v + n);
    }
    const all = await store.readAll();
    t.is(all.length, await store.headPosition());
    for (let i = 1; i < all.length; i++) t.true(all[i]!.position > all[i - 1]!.position);
    for (const [stream, version] of expected) {
      const read = await store.readStream(stream);
      t.deepEqual(read.map((e) => e.version), Array.from({ length: version }, (_, i) => i + 1));
      for (let i = 1; i < read.length; i++) t.true(read[i]!.position > read[i - 1]!.position);
    }
    // Every event appears once in $all, with the same content as in its stream.
    const byPosition = new Map(all.map((e) => [e.position, e]));
    for (const stream of expected.keys()) {
      for (const e of await store.readStream(stream)) t.deepEqual(byPosition.get(e.position), e);
    }
  });

  it('concurrent appends with the same expected version: exactly one wins', async (t, { store }) => {
    await store.append('pod-a', events(1), 'no_stream');
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => store.append('pod-a', [newEvent(`W${i}`)], 1)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.is(won.length, 1);
    t.is(lost.length, 4);
    for (const r of lost) t.true(isWrongVersion('pod-a', 1, 2)(r.reason), String(r.reason));
    t.is(await store.streamVersion('pod-a'), 2);
  });

  it('appendMany: one transaction over several streams, positions consecutive in the order given', async (t, { store }) => {
    await store.append('pod-b', events(2), 'no_stream');
    const results = await store.appendMany([
      { stream: 'pod-c', events: events(2, 'C'), expected: 'no_stream' },
      { stream: 'pod-b', events: events(1, 'B'), expected: 2 },
      { stream: 'pod-a', events: events(3, 'A'), expected: 'any' },
    ]);
    t.deepEqual(results, [{ version: 2, position: 4 }, { version: 3, position: 5 }, { version: 3, position: 8 }]);
    t.deepEqual((await store.readAll({ after: 2 })).map((e) => [e.position, e.stream, e.version, e.type]), [
      [3, 'pod-c', 1, 'C'], [4, 'pod-c', 2, 'C'], [5, 'pod-b', 3, 'B'], [6, 'pod-a', 1, 'A'], [7, 'pod-a', 2, 'A'], [8, 'pod-a', 3, 'A'],
    ]);
    t.deepEqual(await store.listStreams(), [
      { stream: 'pod-a', version: 3, position: 8 }, { stream: 'pod-b', version: 3, position: 5 }, { stream: 'pod-c', version: 2, position: 4 },
    ]);
    // A stream with no events is only checked; nothing at all is an empty result.
    t.deepEqual(await store.appendMany([{ stream: 'pod-a', events: [], expected: 3 }, { stream: 'pod-z', events: [], expected: 'no_stream' }, { stream: 'pod-b', events: events(1), expected: 'stream_exists' }]), [
      { version: 3, position: 8 }, { version: 0, position: 0 }, { version: 4, position: 9 },
    ]);
    t.deepEqual(await store.appendMany([]), []);
    t.is(await store.headPosition(), 9);
  });

  it("appendMany is all or nothing: one stream's wrong version names it and writes nothing", async (t, { store }) => {
    await store.append('pod-a', events(2), 'no_stream');
    await store.append('pod-b', events(1), 'no_stream');
    const before = { all: await store.readAll(), streams: await store.listStreams() };
    const wrong: [string, ExpectedVersion, number][] = [['pod-b', 2, 1], ['pod-b', 'no_stream', 1], ['pod-c', 'stream_exists', 0], ['pod-c', 1, 0]];
    for (const [stream, expected, actual] of wrong) {
      const e = await t.throwsAsync(store.appendMany([
        { stream: 'pod-a', events: events(3), expected: 2 },
        { stream, events: events(1), expected },
        { stream: 'pod-d', events: events(1), expected: 'no_stream' },
      ]));
      t.true(isWrongVersion(stream, expected, actual)(e), String(e));
    }
    // A duplicate event id in the last stream's events rolls back the streams before it too.
    const first = (await store.readStream('pod-a'))[0]!;
    const dup = await t.throwsAsync(store.appendMany([
      { stream: 'pod-a', events: events(1), expected: 2 },
      { stream: 'pod-e', events: [{ ...newEvent('X'), meta: first.meta }], expected: 'no_stream' },
    ]));
    t.true(dup instanceof PodlogError && dup.code === 'ESTORE_DUPLICATE_EVENT', String(dup));
    t.deepEqual({ all: await store.readAll(), streams: await store.listStreams() }, before);
    for (const bad of [[{ stream: 'pod-a', events: events(1), expected: 2 }, { stream: 'pod-a', events: events(1), expected: 3 }], [{ stream: '', events: [], expected: 'any' }], [null], 'pod-a']) {
      const e = await t.throwsAsync(store.appendMany(bad as Parameters<EventStore['appendMany']>[0]));
      t.true(e instanceof PodlogError && e.code === 'ESTORE_BAD_INPUT', String(e));
    }
    t.deepEqual({ all: await store.readAll(), streams: await store.listStreams() }, before);
    // The store goes on: the next append gets the next versions.
    t.deepEqual((await store.appendMany([{ stream: 'pod-a', events: events(1), expected: 2 }])).map((r) => r.version), [3]);
  });

  it('appendMany and append racing on overlapping streams from two connections: exactly one wins each stream version', async (t, h) => {
    const other = (await h.openAnother?.()) ?? h.store;
    const rounds = 20;
    for (let round = 0; round < rounds; round++) {
      const [many, single] = await Promise.allSettled([
        h.store.appendMany([
          { stream: 'pod-a', events: [newEvent('Many', { round })], expected: round },
          { stream: 'pod-b', events: [newEvent('Many', { round })], expected: round },
        ]),
        other.append('pod-b', [newEvent('Single', { round })], round),
      ]);
      t.true((many.status === 'fulfilled') !== (single.status === 'fulfilled'), `round ${round}: exactly one wins`);
      const lost = many.status === 'rejected' ? many : single.status === 'rejected' ? single : undefined;
      t.true(isWrongVersion('pod-b', round, round + 1)(lost?.reason), String(lost?.reason));
      if (many.status === 'rejected') await h.store.append('pod-a', [newEvent('Catch-up')], round); // keep pod-a in step
    }
    const a = await h.store.readStream('pod-a');
    const b = await h.store.readStream('pod-b');
    t.deepEqual(b.map((e) => e.version), Array.from({ length: rounds }, (_, i) => i + 1));
    t.deepEqual(a.map((e) => e.version), Array.from({ length: rounds }, (_, i) => i + 1));
    // Where appendMany won, pod-a's and pod-b's events of that round are neighbours in $all.
    for (const [i, e] of b.entries()) {
      if (e.type === 'Many') t.is(a[i]!.position + 1, e.position);
      else t.not(a[i]!.type, 'Many');
    }
  });

  it('a catch-up reader on another connection sees all of an appendMany or none of it', async (t, h) => {
    const reader = (await h.openAnother?.()) ?? h.store;
    const batches = 30;
    const perBatch = 3 * 4;
    let done = false;
    const writer = (async () => {
      for (let b = 0; b < batches; b++) {
        await h.store.appendMany(['pod-a', 'pod-b', 'pod-c'].map((stream) => ({ stream, events: events(4, `B${b}`), expected: b * 4 })));
      }
      done = true;
    })();
    const seen: number[] = [];
    let after = 0;
    while (!done || after < batches * perBatch) {
      const page = await reader.readAll({ after, limit: 10_000 });
      t.is(page.length % perBatch, 0, `a read after ${after} saw ${page.length} events: part of an appendMany`);
      seen.push(...page.map((e) => e.position));
      after = seen[seen.length - 1] ?? 0;
      await sleep(1);
    }
    await writer;
    t.deepEqual(seen, Array.from({ length: batches * perBatch }, (_, i) => i + 1));
  });

  it('appendMany wakes a waiter once, at its last position', async (t, { store }) => {
    const ac = new AbortController();
    const wait = store.waitForChange(0, ac.signal);
    await store.appendMany([{ stream: 'pod-a', events: events(2), expected: 'no_stream' }, { stream: 'pod-b', events: events(2), expected: 'no_stream' }]);
    t.true(await settlesWithin(wait, 2000));
    t.deepEqual((await store.readAll()).map((e) => e.position), [1, 2, 3, 4]);
  });

  it("readAll with metadata 'time': the same events, each with its metadata's time alone", async (t, { store }) => {
    await store.append('pod-a', [newEvent('A', { n: 1 }, { time: '2026-01-02T03:04:05Z' }), newEvent('B')], 'no_stream');
    await store.append('img-b', events(2), 'no_stream');
    for (const options of [{}, { after: 1, limit: 2 }, { streamPrefix: 'pod-' }, { types: ['Tick'] }]) {
      const whole = await store.readAll(options);
      const timed = await store.readAll({ ...options, metadata: 'time' });
      t.deepEqual(timed, whole.map((e) => ({ ...e, meta: { time: e.meta.time } })));
    }
    t.is((await store.readAll({ metadata: 'time' }))[0]!.meta.time, '2026-01-02T03:04:05Z', 'as written, not as parsed');
  });

  it('readStream reads from/to, inclusive', async (t, { store }) => {
    await store.append('pod-a', events(6), 'no_stream');
    await store.append('pod-b', events(2), 'no_stream');
    const versions = async (o: { from?: number; to?: number }) => (await store.readStream('pod-a', o)).map((e) => e.version);
    t.deepEqual(await versions({}), [1, 2, 3, 4, 5, 6]);
    t.deepEqual(await versions({ from: 3 }), [3, 4, 5, 6]);
    t.deepEqual(await versions({ to: 2 }), [1, 2]);
    t.deepEqual(await versions({ from: 2, to: 4 }), [2, 3, 4]);
    t.deepEqual(await versions({ from: 4, to: 4 }), [4]);
    t.deepEqual(await versions({ from: 5, to: 100 }), [5, 6]);
    t.deepEqual(await versions({ from: 7 }), []);
    t.deepEqual(await versions({ from: 4, to: 3 }), []);
    t.deepEqual(await versions({ from: 0, to: 1 }), [1]);
  });

  it('readAll: after and limit page through the log in position order', async (t, { store }) => {
    await store.append('pod-a', events(3), 'no_stream');
    await store.append('pod-b', events(3), 'no_stream');
    await store.append('pod-a', events(3), 3);
    const all = await store.readAll();
    t.deepEqual(all.map((e) => e.position), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    t.deepEqual((await store.readAll({ after: 4 })).map((e) => e.position), [5, 6, 7, 8, 9]);
    t.deepEqual((await store.readAll({ after: 4, limit: 2 })).map((e) => e.position), [5, 6]);
    t.deepEqual((await store.readAll({ limit: 1 })).map((e) => e.position), [1]);
    t.deepEqual(await store.readAll({ after: 9 }), []);
    t.deepEqual(await store.readAll({ after: 1000 }), []);
    t.deepEqual(await store.readAll({ limit: 0 }), []);
    const paged: number[] = [];
    for (let after = 0; ; ) {
      const page = await store.readAll({ after, limit: 4 });
      if (page.length === 0) break;
      paged.push(...page.map((e) => e.position));
      after = page[page.length - 1]!.position;
    }
    t.deepEqual(paged, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('readAll returns at most 1000 events by default', async (t, { store }) => {
    await store.append('pod-big', events(1005), 'no_stream');
    const page = await store.readAll();
    t.is(page.length, 1000);
    t.is(page[999]!.position, 1000);
    t.is((await store.readAll({ after: 1000 })).length, 5);
    t.is((await store.readAll({ limit: 2000 })).length, 1005);
  });

  it('readAll filters by streams, stream prefix and types, combined with AND', async (t, { store }) => {
    await store.append('pod-a', [newEvent('Created'), newEvent('Started')], 'no_stream');
    await store.append('image-x', [newEvent('Fetched')], 'no_stream');
    await store.append('pod-b', [newEvent('Created'), newEvent('Exited')], 'no_stream');
    await store.append('pod_c', [newEvent('Created')], 'no_stream');
    await store.append('podXc', [newEvent('Created')], 'no_stream');
    await store.append('pod-a', [newEvent('Exited')], 2);
    const pick = async (o: Parameters<EventStore['readAll']>[0]) =>
      (await store.readAll(o)).map((e) => `${e.stream}:${e.type}`);
    t.deepEqual(await pick({ streams: ['pod-b'] }), ['pod-b:Created', 'pod-b:Exited']);
    t.deepEqual(await pick({ streams: ['pod-a', 'image-x', 'nope'] }), [
      'pod-a:Created', 'pod-a:Started', 'image-x:Fetched', 'pod-a:Exited',
    ]);
    t.deepEqual(await pick({ streams: [] }), []);
    t.deepEqual(await pick({ streamPrefix: 'pod-' }), [
      'pod-a:Created', 'pod-a:Started', 'pod-b:Created', 'pod-b:Exited', 'pod-a:Exited',
    ]);
    t.deepEqual(await pick({ streamPrefix: 'pod_' }), ['pod_c:Created'], "'_' is not a wildcard");
    t.deepEqual(await pick({ streamPrefix: 'pod%' }), [], "'%' is not a wildcard");
    t.deepEqual(await pick({ streamPrefix: 'POD-' }), [], 'prefixes are case-sensitive');
    t.deepEqual(await pick({ types: ['Created'] }), ['pod-a:Created', 'pod-b:Created', 'pod_c:Created', 'podXc:Created']);
    t.deepEqual(await pick({ types: ['Exited', 'Fetched'] }), ['image-x:Fetched', 'pod-b:Exited', 'pod-a:Exited']);
    t.deepEqual(await pick({ types: [] }), []);
    t.deepEqual(await pick({ streamPrefix: 'pod-', types: ['Exited'] }), ['pod-b:Exited', 'pod-a:Exited']);
    t.deepEqual(await pick({ streams: ['pod-a', 'pod-b'], types: ['Exited'], after: 6 }), ['pod-a:Exited']);
    t.deepEqual(await pick({ streamPrefix: 'pod-', types: ['Created', 'Exited'], limit: 2 }), ['pod-a:Created', 'pod-b:Created']);
  });

  it('readAll filters by recorded time: since inclusive, until exclusive, any ISO 8601 offset', async (t, { store }) => {
    const at = (time: string, type: string) => newEvent(type, {}, { time });
    await store.append('pod-a', [at('2026-01-01T00:00:00.000Z', 'T0')], 'any');
    await store.append('pod-b', [at('2026-01-01T01:00:00.000Z', 'T1')], 'any');
    await store.append('pod-a', [at('2026-01-01T04:00:00+02:00', 'T2')], 'any'); // 02:00Z
    await store.append('pod-b', [at('2026-01-01T03:00:00.000Z', 'T3')], 'any');
    const types = async (o: Parameters<EventStore['readAll']>[0]) => (await store.readAll(o)).map((e) => e.type);
    t.deepEqual(await types({ since: '2026-01-01T01:00:00.000Z' }), ['T1', 'T2', 'T3']);
    t.deepEqual(await types({ until: '2026-01-01T01:00:00.000Z' }), ['T0']);
    t.deepEqual(await types({ since: '2026-01-01T00:30:00Z', until: '2026-01-01T02:00:00.001Z' }), ['T1', 'T2']);
    t.deepEqual(await types({ since: '2026-01-01T03:00:00+01:00' }), ['T2', 'T3'], '03:00+01:00 is 02:00Z');
    t.deepEqual(await types({ since: '2026-01-01T00:30:00Z', streams: ['pod-a'] }), ['T2']);
    t.deepEqual(await types({ since: '2027-01-01T00:00:00Z' }), []);
    // The stored time is returned as it was written.
    t.is((await store.readStream('pod-a'))[1]!.meta.time, '2026-01-01T04:00:00+02:00');
  });

  it('listStreams lists every stream or those with a prefix, sorted by name, with version and last position', async (t, { store }) => {
    await store.append('pod-b', events(2), 'no_stream');
    await store.append('image-1', events(1), 'no_stream');
    await store.append('pod-a', events(1), 'no_stream');
    await store.append('pod_x', events(1), 'no_stream');
    await store.append('pod-b', events(1), 2);
    t.deepEqual(await store.listStreams(), [
      { stream: 'image-1', version: 1, position: 3 },
      { stream: 'pod-a', version: 1, position: 4 },
      { stream: 'pod-b', version: 3, position: 6 },
      { stream: 'pod_x', version: 1, position: 5 },
    ]);
    t.deepEqual((await store.listStreams('pod-')).map((s) => s.stream), ['pod-a', 'pod-b']);
    t.deepEqual((await store.listStreams('pod')).map((s) => s.stream), ['pod-a', 'pod-b', 'pod_x']);
    t.deepEqual((await store.listStreams('pod_')).map((s) => s.stream), ['pod_x']);
    t.deepEqual((await store.listStreams('pod-b')).map((s) => s.stream), ['pod-b']);
    t.deepEqual(await store.listStreams('pod-c'), []);
    t.deepEqual(await store.listStreams('zzz'), []);
    t.deepEqual((await store.listStreams('')).length, 4);
  });

  it('stream names and prefixes with non-ASCII characters', async (t, { store }) => {
    const names = ['pod-é', 'pod-éa', 'pod-f', 'pod-\u{1F600}', 'pod-\u{1F600}x', 'pod-\uffff', 'pod-\ud7ff1'];
    for (const n of names) await store.append(n, events(1), 'no_stream');
    t.deepEqual((await store.listStreams('pod-é')).map((s) => s.stream), ['pod-é', 'pod-éa']);
    t.deepEqual((await store.listStreams('pod-\u{1F600}')).map((s) => s.stream), ['pod-\u{1F600}', 'pod-\u{1F600}x']);
    t.deepEqual((await store.listStreams('pod-\uffff')).map((s) => s.stream), ['pod-\uffff']);
    t.deepEqual((await store.listStreams('pod-\ud7ff')).map((s) => s.stream), ['pod-\ud7ff1']);
    t.deepEqual((await store.readAll({ streamPrefix: 'pod-é' })).map((e) => e.stream), ['pod-é', 'pod-éa']);
    t.is((await store.readStream('pod-\u{1F600}x')).length, 1);
  });

  it('every field of an event and its metadata round-trips', async (t, { store }) => {
    const full = newEvent(
      'AppExited',
      { app: 'busybox', code: 137, nested: { list: [1, 'two', null, true], empty: {} }, text: 'ünïcødé ✓ "quoted" \\ \n' },
      {
        host: 'node-7.example',
        pid: 4242,
        user: 'alice',
        command: ['run', '--net=host', 'busybox.aci', '--', 'sh', '-c', 'exit 137'],
        correlationId: uuidv7(),
        causationId: uuidv7(),
        time: '2026-03-04T05:06:07.089Z',
      },
    );
    const bare = newEvent('PodCreated', {}, {});
    full.schema = 3;
    await store.append('pod-a', [full, bare], 'no_stream');
    const [a, b] = await store.readStream('pod-a');
    t.deepEqual(written(a!), full);
    t.deepEqual(written(b!), bare);
    t.false('causationId' in b!.meta);
    const [viaAll] = await store.readAll({ types: ['AppExited'] });
    t.deepEqual(viaAll, a);
    t.like(a!, { stream: 'pod-a', version: 1, position: 1, type: 'AppExited', schema: 3 });
  });

  it('bad input is refused with ESTORE_BAD_INPUT and nothing is written', async (t, { store }) => {
    const bad = async (p: Promise<unknown>, what: string) => {
      const e = await t.throwsAsync(p);
      t.true(e instanceof PodlogError && e.code === 'ESTORE_BAD_INPUT' && e.exitCode === 254, `${what}: ${String(e)}`);
    };
    await bad(store.append('', events(1), 'any'), 'empty stream name');
    await bad(store.append('pod-a', [newEvent('X'), newEvent('Y', {}, { time: 'yesterday' })], 'any'), 'bad time');
    await bad(store.append('pod-a', [newEvent('')], 'any'), 'empty type');
    await bad(store.append('pod-a', [{ ...newEvent('X'), data: [] as unknown as Record<string, unknown> }], 'any'), 'array data');
    await bad(store.append('pod-a', [newEvent('X', { n: 1n })], 'any'), 'BigInt in data');
    await bad(store.append('pod-a', [newEvent('X', {}, { id: '' })], 'any'), 'empty id');
    await bad(store.readAll({ since: 'not a time' }), 'since');
    await bad(store.readAll({ until: '2026-13-45' }), 'until');
    t.is(await store.headPosition(), 0);
    t.deepEqual(await store.listStreams(), []);
  });

  it('headPosition follows appends', async (t, { store }) => {
    t.is(await store.headPosition(), 0);
    await store.append('pod-a', events(2), 'any');
    t.is(await store.headPosition(), 2);
    await store.append('pod-b', events(3), 'any');
    t.is(await store.headPosition(), 5);
    await t.throwsAsync(store.append('pod-b', events(3), 0));
    t.is(await store.headPosition(), 5);
  });

  it('waitForChange resolves at once when the head is already past `after`', async (t, { store }) => {
    await store.append('pod-a', events(2), 'any');
    const ac = new AbortController();
    t.true(await settlesWithin(store.waitForChange(0, ac.signal), 1000));
    t.true(await settlesWithin(store.waitForChange(1, ac.signal), 1000));
  });

  it('waitForChange waits for an append in the same process, and only then', async (t, { store }) => {
    await store.append('pod-a', events(1), 'any');
    const ac = new AbortController();
    let woke = false;
    const wait = store.waitForChange(1, ac.signal).then(() => (woke = true));
    await sleep(150);
    t.false(woke, 'no wake-up without a commit');
    await store.append('pod-b', events(1), 'any');
    t.true(await settlesWithin(wait, 2000));
    t.is((await store.readAll({ after: 1 })).length, 1);
  });

  it('waitForChange: several waiters with different positions', async (t, { store }) => {
    await store.append('pod-a', events(1), 'any');
    const ac = new AbortController();
    const w1 = store.waitForChange(1, ac.signal);
    const w2 = store.waitForChange(2, ac.signal);
    await store.append('pod-a', events(1), 'any'); // head 2: wakes w1 only (w2 may wake spuriously)
    t.true(await settlesWithin(w1, 2000));
    await store.append('pod-a', events(1), 'any');
    t.true(await settlesWithin(w2, 2000));
  });

  it('waitForChange resolves promptly when its signal aborts', async (t, { store }) => {
    const ac = new AbortController();
    const wait = store.waitForChange(0, ac.signal);
    setTimeout(() => ac.abort(), 30);
    t.true(await settlesWithin(wait, 1000));
    const aborted = new AbortController();
    aborted.abort();
    t.true(await settlesWithin(store.waitForChange(0, aborted.signal), 200), 'an aborted signal resolves at once');
    // A long-lived signal used for many waits does not keep listeners around (no MaxListeners warning).
    const shared = new AbortController();
    for (let i = 0; i < 20; i++) {
      const p = store.waitForChange(i, shared.signal);
      await store.append('pod-a', events(1), 'any');
      await p;
    }
    t.is(getEventListeners(shared.signal, 'abort').length, 0);
  });

  it('waitForChange wakes on a commit made through another connection', async (t, h) => {
    if (h.openAnother === undefined) {
      t.pass('the adapter offers no second connection');
      return;
    }
    const other = await h.openAnother();
    const ac = new AbortController();
    const head = await h.store.headPosition();
    const wait = h.store.waitForChange(head, ac.signal);
    setTimeout(() => void other.append('pod-x', events(1), 'any'), 50);
    const ok = await settlesWithin(wait, 5000);
    ac.abort();
    t.true(ok);
    t.deepEqual((await h.store.readAll({ after: head })).map((e) => e.stream), ['pod-x']);
  });

  it('projections: one row loads alone, with the projection schema', async (t, { store }) => {
    t.is(await store.loadProjectionRow('pods', 'p1'), undefined);
    t.true(await store.saveProjection({ name: 'pods', schema: 'v7', expectedCheckpoint: 0, checkpoint: 3, upserts: new Map([['p1', { state: 'running' }], ['p2', { state: 'exited' }]]) }));
    t.deepEqual(await store.loadProjectionRow('pods', 'p2'), { schema: 'v7', row: { state: 'exited' } });
    t.is(await store.loadProjectionRow('pods', 'p3'), undefined);
    t.is(await store.loadProjectionRow('other', 'p1'), undefined);
  });

  it('projections: rows saved with a summary load as their summaries, and whole one at a time', async (t, { store }) => {
    type Pod = { state: string; context: { apps: string[]; exec: string } };
    const pod = (state: string): Pod => ({ state, context: { apps: ['a'], exec: `/bin/${state}` } });
    const summarise = (row: Pod) => ({ state: row.state, apps: row.context.apps });
    const save = (expectedCheckpoint: number, checkpoint: number, rows: [string, Pod][], withSummaries = true) =>
      store.saveProjection<Pod>({ name: 'pods', schema: 's', expectedCheckpoint, checkpoint, upserts: new Map(rows), ...(withSummaries ? { summarise } : {}) });
    t.true(await save(0, 2, [['p1', pod('running')], ['p2', pod('exited')]]));
    t.deepEqual(Object.fromEntries((await store.loadProjection('pods')).rows), { p1: { state: 'running', apps: ['a'] }, p2: { state: 'exited', apps: ['a'] } });
    t.deepEqual(await store.loadProjectionRow('pods', 'p1'), { schema: 's', row: pod('running') });
    // A row upserted again without a summary has none: it loads whole; the other keeps its summary.
    t.true(await save(2, 3, [['p2', pod('garbage')]], false));
    t.deepEqual(Object.fromEntries((await store.loadProjection('pods')).rows), { p1: { state: 'running', apps: ['a'] }, p2: pod('garbage') });
    t.true(await save(3, 4, [['p2', pod('deleting')]]));
    t.deepEqual((await store.loadProjection('pods')).rows.get('p2'), { state: 'deleting', apps: ['a'] });
    t.deepEqual((await store.loadProjectionRow('pods', 'p2'))?.row, pod('deleting'));
    t.deepEqual(Object.fromEntries(await store.loadProjectionRows('pods', ['p2', 'p1', 'p9'])), { p1: pod('running'), p2: pod('deleting') });
    t.is((await store.loadProjectionRows('pods', [])).size, 0);
    t.is((await store.loadProjectionRows('other', ['p1'])).size, 0);
  });

  it('projections: an absent projection loads empty at checkpoint 0', async (t, { store }) => {
    const p = await store.loadProjection<{ state: string }>('pods');
    t.is(p.checkpoint, 0);
    t.is(p.schema, '');
    t.is(p.rows.size, 0);
  });

  it('projections: save, load, upsert, delete, and compare-and-set on the checkpoint', async (t, { store }) => {
    type Pod = { state: string; apps: string[] };
    const save = (expectedCheckpoint: number, checkpoint: number, rows: [string, Pod][], extra: { reset?: boolean; deletes?: string[] } = {}) =>
      store.saveProjection<Pod>({ name: 'pods', schema: 's1', expectedCheckpoint, checkpoint, upserts: new Map(rows), ...extra });
    t.true(await save(0, 5, [['p1', { state: 'prepared', apps: ['a'] }], ['p2', { state: 'running', apps: [] }]]));
    let p = await store.loadProjection<Pod>('pods');
    t.is(p.checkpoint, 5);
    t.is(p.schema, 's1');
    t.deepEqual([...p.rows.entries()].sort(), [['p1', { state: 'prepared', apps: ['a'] }], ['p2', { state: 'running', apps: [] }]]);

    // The checkpoint moved (someone else saved at 5): a save computed from 0 fails and writes nothing.
    t.false(await save(0, 9, [['p1', { state: 'garbage', apps: [] }], ['p9', { state: 'x', apps: [] }]], { reset: true }));
    t.false(await save(4, 9, [['p9', { state: 'x', apps: [] }]]));
    p = await store.loadProjection<Pod>('pods');
    t.is(p.checkpoint, 5);
    t.deepEqual([...p.rows.keys()].sort(), ['p1', 'p2']);
    t.is(p.rows.get('p1')?.state, 'prepared');

    // Upsert one, add one, keep the rest, delete one.
    t.true(await save(5, 8, [['p1', { state: 'running', apps: ['a'] }], ['p3', { state: 'embryo', apps: [] }]], { deletes: ['p2', 'nope'] }));
    p = await store.loadProjection<Pod>('pods');
    t.is(p.checkpoint, 8);
    t.deepEqual(Object.fromEntries(p.rows), { p1: { state: 'running', apps: ['a'] }, p3: { state: 'embryo', apps: [] } });

    // A key both deleted and upserted ends up upserted.
    t.true(await save(8, 9, [['p3', { state: 'prepared', apps: [] }]], { deletes: ['p3'] }));
    t.is((await store.loadProjection<Pod>('pods')).rows.get('p3')?.state, 'prepared');
  });

  it('projections: reset drops every row and can change the schema', async (t, { store }) => {
    t.true(await store.saveProjection({ name: 'pods', schema: 'v1', expectedCheckpoint: 0, checkpoint: 3, upserts: new Map([['a', 1], ['b', 2]]) }));
    t.true(await store.saveProjection({ name: 'pods', schema: 'v2', expectedCheckpoint: 3, checkpoint: 10, upserts: new Map([['c', 3]]), reset: true }));
    const p = await store.loadProjection<number>('pods');
    t.is(p.schema, 'v2');
    t.is(p.checkpoint, 10);
    t.deepEqual(Object.fromEntries(p.rows), { c: 3 });
    // A reset to nothing.
    t.true(await store.saveProjection({ name: 'pods', schema: 'v2', expectedCheckpoint: 10, checkpoint: 10, upserts: new Map(), reset: true }));
    t.is((await store.loadProjection('pods')).rows.size, 0);
  });

  it('projections are independent by name', async (t, { store }) => {
    t.true(await store.saveProjection({ name: 'a', schema: 'x', expectedCheckpoint: 0, checkpoint: 1, upserts: new Map([['k', 'from a']]) }));
    t.true(await store.saveProjection({ name: 'b', schema: 'y', expectedCheckpoint: 0, checkpoint: 7, upserts: new Map([['k', 'from b']]) }));
    t.true(await store.saveProjection({ name: 'b', schema: 'y', expectedCheckpoint: 7, checkpoint: 8, upserts: new Map(), reset: true }));
    const a = await store.loadProjection<string>('a');
    t.deepEqual([a.checkpoint, a.schema, a.rows.get('k')], [1, 'x', 'from a']);
    const b = await store.loadProjection<string>('b');
    t.deepEqual([b.checkpoint, b.schema, b.rows.size], [8, 'y', 0]);
  });

  it('projections: concurrent saves from one checkpoint, exactly one wins', async (t, { store }) => {
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        store.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 0, checkpoint: 1, upserts: new Map([[`w${i}`, i]]) }),
      ),
    );
    t.is(results.filter(Boolean).length, 1);
    t.is((await store.loadProjection('pods')).rows.size, 1);
  });

  const tombstone = (n: number) => ({ type: 'Compacted', schema: 2, data: { had: n } });

  it('compactStreams leaves one tombstone per stream, in place of its last event; every other event keeps its position', async (t, { store }) => {
    // a1 b1 a2 c1 a3 b2 | positions 1..6
    await store.append('pod-a', events(1, 'A'), 'no_stream');
    await store.append('pod-b', events(1, 'B'), 'no_stream');
    await store.append('pod-a', events(1, 'A'), 1);
    await store.append('img-c', events(1, 'C'), 'no_stream');
    await store.append('pod-a', [newEvent('Deleted', {}, { causationId: 'x' })], 2);
    await store.append('pod-b', events(1, 'B'), 1);
    const before = await store.readAll();
    const lastOfA = before[4]!;
    const streamsBefore = await store.listStreams();

    t.deepEqual(await store.compactStreams([{ stream: 'pod-a', expected: 3, tombstone: tombstone(3) }]), [{ stream: 'pod-a', removed: 2 }]);

    const stone = { ...lastOfA, type: 'Compacted', schema: 2, data: { had: 3 } };
    t.deepEqual(await store.readStream('pod-a'), [stone], 'same stream, version, position and metadata');
    t.deepEqual(await store.readAll(), [before[1], before[3], stone, before[5]]);
    t.deepEqual(await store.listStreams(), streamsBefore);
    t.is(await store.streamVersion('pod-a'), 3);
    t.is(await store.headPosition(), 6);
    // A catch-up reader that had stopped inside the removed range goes on with what is left.
    t.deepEqual((await store.readAll({ after: 2 })).map((e) => e.position), [4, 5, 6]);
    t.deepEqual((await store.readAll({ types: ['Compacted'] })).map((e) => e.position), [5]);
    // The log goes on after the compaction: new events come after every position ever written.
    t.deepEqual(await store.append('pod-b', events(1), 2), { version: 3, position: 7 });
    t.deepEqual(await store.append('pod-a', events(1), 3), { version: 4, position: 8 });
  });

  it('compactStreams: the last event of the log compacted, several streams in one call, a one-event stream', async (t, { store }) => {
    await store.append('pod-a', events(2), 'no_stream');
    await store.append('pod-b', events(1), 'no_stream');
    await store.append('pod-a', events(1), 2);
    t.deepEqual(
      await store.compactStreams([
        { stream: 'pod-a', expected: 3, tombstone: tombstone(3) },
        { stream: 'pod-b', expected: 1, tombstone: tombstone(1) },
      ]),
      [{ stream: 'pod-a', removed: 2 }, { stream: 'pod-b', removed: 0 }],
    );
    t.deepEqual((await store.readAll()).map((e) => [e.stream, e.version, e.position, e.type]), [['pod-b', 1, 3, 'Compacted'], ['pod-a', 3, 4, 'Compacted']]);
    t.is(await store.headPosition(), 4);
    t.deepEqual(await store.append('pod-c', events(1), 'no_stream'), { version: 1, position: 5 });
  });

  it('compactStreams is all or nothing: a stream not at its expected version (or missing) refuses the whole call', async (t, { store }) => {
    await store.append('pod-a', events(3), 'no_stream');
    await store.append('pod-b', events(2), 'no_stream');
    const before = await store.readAll();
    for (const [stream, expected, actual] of [['pod-b', 1, 2], ['pod-b', 3, 2], ['pod-z', 1, 0]] as const) {
      const e = await t.throwsAsync(store.compactStreams([
        { stream: 'pod-a', expected: 3, tombstone: tombstone(3) },
        { stream, expected, tombstone: tombstone(expected) },
      ]));
      t.true(isWrongVersion(stream, expected, actual)(e), String(e));
    }
    t.deepEqual(await store.readAll(), before);
    t.deepEqual(await store.compactStreams([]), []);
  });

  it('reclaimSpace after a compaction changes nothing a reader sees, and does not grow the log', async (t, { store }) => {
    for (let i = 0; i < 20; i++) await store.append(`pod-${i}`, events(20), 'no_stream');
    await store.compactStreams(Array.from({ length: 10 }, (_, i) => ({ stream: `pod-${i}`, expected: 20, tombstone: tombstone(20) })));
    const before = { all: await store.readAll(), streams: await store.listStreams(), head: await store.headPosition() };
    const size = await store.reclaimSpace();
    t.true(size.before > 0 && size.after <= size.before, JSON.stringify(size));
    t.deepEqual({ all: await store.readAll(), streams: await store.listStreams(), head: await store.headPosition() }, before);
    t.deepEqual(await store.append('pod-0', events(1), 20), { version: 21, position: 401 });
  });

  it('compactStreams refuses bad input with ESTORE_BAD_INPUT and changes nothing', async (t, { store }) => {
    await store.append('pod-a', events(2), 'no_stream');
    const before = await store.readAll();
    const bad: unknown[] = [
      [{ stream: '', expected: 1, tombstone: tombstone(1) }],
      [{ stream: 'pod-a', expected: 0, tombstone: tombstone(0) }],
      [{ stream: 'pod-a', expected: 2, tombstone: { type: '', schema: 1, data: {} } }],
      [{ stream: 'pod-a', expected: 2, tombstone: { type: 'T', schema: 1, data: [] } }],
      [{ stream: 'pod-a', expected: 2, tombstone: tombstone(2) }, { stream: 'pod-a', expected: 2, tombstone: tombstone(2) }],
    ];
    for (const compactions of bad) {
      const e = await t.throwsAsync(store.compactStreams(compactions as Parameters<EventStore['compactStreams']>[0]));
      t.true(e instanceof PodlogError && e.code === 'ESTORE_BAD_INPUT', String(e));
    }
    t.deepEqual(await store.readAll(), before);
  });

  it('everything persists across a reopen', async (t, h) => {
    if (h.reopen === undefined) {
      t.pass('the adapter cannot reopen');
      return;
    }
    const meta = newEvent('PodCreated', { image: 'busybox' }, { causationId: 'c-1' });
    await h.store.append('pod-a', [meta, newEvent('PodPrepared')], 'no_stream');
    await h.store.append('pod-b', events(3), 'no_stream');
    await h.store.saveProjection({ name: 'pods', schema: 's', expectedCheckpoint: 0, checkpoint: 5, upserts: new Map([['pod-a', { state: 'prepared' }]]) });
    const before = { all: await h.store.readAll(), streams: await h.store.listStreams() };
    const store = await h.reopen();
    t.deepEqual(await store.readAll(), before.all);
    t.deepEqual(await store.listStreams(), before.streams);
    t.is(await store.headPosition(), 5);
    t.is(await store.streamVersion('pod-a'), 2);
    t.deepEqual(written((await store.readStream('pod-a'))[0]!), meta);
    const p = await store.loadProjection<{ state: string }>('pods');
    t.deepEqual([p.checkpoint, p.schema, p.rows.get('pod-a')], [5, 's', { state: 'prepared' }]);
    t.deepEqual(await store.append('pod-a', events(1), 2), { version: 3, position: 6 });
    await t.throwsAsync(store.append('pod-b', events(1), 'no_stream'), { instanceOf: WrongExpectedVersion });
  });
};
