/**
 * A host's own part of a shared log (src/store/scoped.ts), on a real PostgreSQL: two hosts' image stores
 * use the same stream and projection names without meeting, each sees the pods' streams as they are, and
 * reads that drop the other host's events still return full batches.
 */
import test from 'ava';
import { openPostgresStore } from '../../src/store/postgres.js';
import { scopedToHost, type ScopeRules } from '../../src/store/scoped.js';
import { openMemorySqliteStore } from '../../src/store/sqlite.js';
import { usePostgres } from '../helpers/postgres.js';
import { newEvent } from './events.js';

const server = usePostgres(test);
const RULES: ScopeRules = { streamPrefixes: ['image-'], projections: ['images'] };

test('two hosts: the same image stream and projection names, each its own; pod streams shared', async (t) => {
  const { url, schema } = server();
  const store = await openPostgresStore(url, { schema: schema() });
  try {
    const [a, b] = [scopedToHost(store, 'a', RULES), scopedToHost(store, 'b', RULES)];
    await a.append('image-x', [newEvent('ImageImported', { host: 'a' })], 'no_stream');
    await b.append('image-x', [newEvent('ImageImported', { host: 'b' }), newEvent('ImageTagged')], 'no_stream');
    await a.append('pod-1', [newEvent('PrepareRequested')], 'no_stream');
    t.is(await a.streamVersion('image-x'), 1);
    t.is(await b.streamVersion('image-x'), 2);
    t.deepEqual((await store.listStreams()).map((s) => s.stream), ['host/a/image-x', 'host/b/image-x', 'pod-1']);
    t.deepEqual((await a.listStreams('image-')).map((s) => s.stream), ['image-x']);
    t.deepEqual((await b.listStreams()).map((s) => [s.stream, s.version]), [['image-x', 2], ['pod-1', 1]]);
    const readByA = await a.readAll({ types: ['ImageImported', 'PrepareRequested'] });
    t.deepEqual(readByA.map((e) => [e.stream, e.data['host']]), [['image-x', 'a'], ['pod-1', undefined]]);
    t.deepEqual((await b.readStream('image-x')).map((e) => e.stream), ['image-x', 'image-x']);
    t.deepEqual((await b.readAll({ streamPrefix: 'image-' })).map((e) => e.type), ['ImageImported', 'ImageTagged']);
    t.deepEqual((await a.readAll({ streams: ['image-x', 'pod-1'] })).map((e) => e.stream), ['image-x', 'pod-1']);

    t.true(await a.saveProjection({ name: 'images', schema: 's', expectedCheckpoint: 0, checkpoint: 3, upserts: new Map([['k', 'a']]) }));
    t.true(await b.saveProjection({ name: 'images', schema: 's', expectedCheckpoint: 0, checkpoint: 1, upserts: new Map([['k', 'b']]) }));
    t.deepEqual((await a.loadProjection<string>('images')).rows, new Map([['k', 'a']]));
    t.is((await b.loadProjectionRow<string>('images', 'k'))?.row, 'b');
  } finally {
    await store.close();
  }
});

test("a read that drops the other host's events reads on: `limit` events unless the log ends", async (t) => {
  const { url, schema } = server();
  const store = await openPostgresStore(url, { schema: schema() });
  try {
    const [a, b] = [scopedToHost(store, 'a', RULES), scopedToHost(store, 'b', RULES)];
    for (let i = 0; i < 30; i++) await (i % 3 === 0 ? a : b).append(`image-${i}`, [newEvent('ImageImported')], 'no_stream');
    const first = await a.readAll({ limit: 4 });
    t.deepEqual(first.map((e) => e.stream), ['image-0', 'image-3', 'image-6', 'image-9']);
    const rest = await a.readAll({ after: first.at(-1)!.position, limit: 100 });
    t.is(rest.length, 6);
  } finally {
    await store.close();
  }
});

test('a one-host log (SQLite) is not scoped: the view is the store itself', (t) => {
  const store = openMemorySqliteStore('test');
  t.is(scopedToHost(store, 'a', RULES), store);
});
