/**
 * `podlog log copy` and `podlog log migrate` through bin/podlog: a SQLite log written by real pod runs
 * moved onto a real PostgreSQL server (test/helpers/postgres.ts) and back, and a second host's log merged
 * into the shared log the first one moved to (--merge).
 */
import test from 'ava';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { usePostgres } from '../helpers/postgres.js';
import { podlogBin } from '../stage0/podlog.js';
import { newEvent } from '../store/events.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { RecordedEvent } from '../../src/store/port.js';

const pg = usePostgres(test);
const HOST = 'host-a';
const HOST_B = 'host-b';
const IMAGE = aciPath('busybox-gzip');
const IMAGE_STREAM = /^(image|tree|layer)-/;

/** podlog as `host`; `store` names the log (the data dir's SQLite file without it). */
const podlogAs =
  (host: string) =>
  (dir: string, args: string[], store?: string): SpawnSyncReturns<string> =>
    spawnSync(podlogBin, ['--dir', dir, '--host-id', host, ...(store === undefined ? [] : ['--store', store]), ...args], { encoding: 'utf8', timeout: 120_000 });
const podlog = podlogAs(HOST);
const podlogB = podlogAs(HOST_B);

const ok = (r: ReturnType<typeof podlog>): string => {
  if (r.status !== 0) throw new Error(`podlog exited ${String(r.status)}: ${r.stderr}`);
  return r.stdout;
};

/** podlog as the data dir's own host (a data dir is bound to the host that first wrote to it). */
const podlogInDir = (dir: string, args: string[], store?: string): SpawnSyncReturns<string> =>
  spawnSync(podlogBin, ['--dir', dir, ...(store === undefined ? [] : ['--store', store]), ...args], { encoding: 'utf8', timeout: 120_000 });

/** Every event of the log, whichever host recorded it. */
const eventsIn = (dir: string, store?: string): RecordedEvent[] =>
  ok(podlogInDir(dir, ['events', '--json', '--all-hosts'], store))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as RecordedEvent);

const listIn = (dir: string, store?: string, as = podlog, flags: string[] = []): unknown => JSON.parse(ok(as(dir, ['list', '--format', 'json', ...flags], store)));

const uuidsIn = (pods: unknown): string[] => (pods as Array<{ uuid: string }>).map((p) => p.uuid).sort();

const pgUrl = (schema = pg().schema()): string => `${pg().url}?schema=${schema}`;

/** What the copy onto a shared log makes of a one-host log's event: its image-store streams under the host. */
const adoptedBy =
  (host: string) =>
  (e: RecordedEvent): RecordedEvent => ({ ...e, stream: IMAGE_STREAM.test(e.stream) ? `host/${host}/${e.stream}` : e.stream });
const adopted = adoptedBy(HOST);

const withoutPositions = (es: RecordedEvent[]): Array<Omit<RecordedEvent, 'position'>> => es.map(({ position: _, ...e }) => e);

/** A data dir whose SQLite log holds two real pods (exited 3 and 0), and a copy of the log after the first. */
interface Source {
  dir: string;
  uuids: string[];
  firstPodLog: string;
}

/** A Source written by podlog as `host`. */
const runSource = (host: string): Source => {
  const dir = mkdtempSync(join(tmpdir(), `podlog-log-copy-${host}-`));
  const uuids: string[] = [];
  const run = (code: number): void => {
    const file = join(dir, `uuid-${uuids.length}`);
    const r = podlogAs(host)(dir, ['run', `--uuid-file-save=${file}`, IMAGE, '--exec', '/bin/sh', '--', '-c', `exit ${code}`]);
    if (r.status !== code) throw new Error(`run exited ${String(r.status)}: ${r.stderr}`);
    uuids.push(readFileSync(file, 'utf8').trim());
  };
  run(3);
  const firstPodLog = join(dir, 'first-pod.db');
  copyFileSync(join(dir, 'events.db'), firstPodLog);
  run(0);
  return { dir, uuids, firstPodLog };
};

/** Host A's log (the fleet's first host) and host B's (the second, with the same image). */
let source: Source;
let sourceB: Source;

test.before(() => {
  source = runSource(HOST);
  sourceB = runSource(HOST_B);
});

test.after.always(() => {
  for (const s of [source, sourceB]) if (s !== undefined) rmSync(s.dir, { recursive: true, force: true });
});

test.serial('SQLite to PostgreSQL: the same pods, events, ids, versions and order; image streams adopted under the host', async (t) => {
  const { dir, uuids } = source;
  const to = pgUrl();
  const r = podlog(dir, ['log', 'copy', '--from', `sqlite:${join(dir, 'events.db')}`, '--to', to]);
  t.is(r.status, 0, r.stderr);
  const events = eventsIn(dir);
  t.regex(r.stdout, new RegExp(`copy: ${events.length} events copied .* in \\d+ transaction`));
  t.regex(r.stdout, /every event has the same global position/);
  t.regex(r.stdout, new RegExp(`adopted for host ${HOST}: [1-9]\\d* image-store streams \\([1-9]\\d* events\\) moved under host/${HOST}/, 0 pod`));
  t.regex(r.stdout, /projections were not copied/);

  const copied = eventsIn(dir, to);
  t.deepEqual(copied, events.map(adopted), 'every event as it was, in order, at the same position; image streams under the host');
  t.true(events.some((e) => IMAGE_STREAM.test(e.stream)), 'the source has image-store streams');
  t.deepEqual(listIn(dir, to), listIn(dir));
  for (const uuid of uuids) t.is(ok(podlog(dir, ['status', uuid], to)), ok(podlog(dir, ['status', uuid])));

  const store = await openPostgresStore(to, { readonly: true });
  try {
    t.deepEqual((await store.listStreams()).filter((s) => IMAGE_STREAM.test(s.stream)), [], 'no image-store stream left unscoped');
    const prepares = await store.readAll({ types: ['PrepareRequested'] });
    t.deepEqual(prepares.map((e) => e.data['host']), [HOST, HOST]);
  } finally {
    await store.close();
  }

  const again = podlog(dir, ['log', 'copy', '--from', `sqlite:${join(dir, 'events.db')}`, '--to', to]);
  t.is(again.status, 254);
  t.regex(again.stderr, /already holds events .* only copies into an empty log unless --merge.*--resume.*add --merge/s);
  t.deepEqual(eventsIn(dir, to), copied, 'the refused copy wrote nothing');

  // The moved host goes on on the shared log: its image is found in its scoped index, not fetched again.
  const imports = copied.filter((e) => e.type === 'ImageImported').length;
  const run = podlog(dir, ['run', IMAGE, '--exec', '/bin/true'], to);
  t.is(run.status, 0, run.stderr);
  const after = eventsIn(dir, to);
  t.is(after.filter((e) => e.type === 'ImageImported').length, imports, 'no new ImageImported');
  t.deepEqual(after.filter((e) => e.position > copied.at(-1)!.position && !e.stream.startsWith('pod-')), [], 'nothing recorded but the new pod');
  t.is((listIn(dir, to) as unknown[]).length, 3);
});

test.serial('--resume: goes on from a prefix of the source, and refuses a target that is not one', (t) => {
  const { dir, firstPodLog } = source;
  const to = pgUrl();
  t.is(podlog(dir, ['log', 'copy', '--from', `sqlite:${firstPodLog}`, '--to', to]).status, 0);
  const prefix = eventsIn(dir, to);
  const r = podlog(dir, ['log', 'copy', '--from', `sqlite:${join(dir, 'events.db')}`, '--to', to, '--resume']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`after the ${prefix.length} already there`));
  t.deepEqual(eventsIn(dir, to), eventsIn(dir).map(adopted));

  // A target that is not the start of the source: another log's copy.
  const other = pgUrl();
  t.is(podlog(dir, ['log', 'copy', '--from', to, '--to', other]).status, 0);
  const wrong = podlog(dir, ['log', 'copy', '--from', `sqlite:${firstPodLog}`, '--to', other, '--resume']);
  t.is(wrong.status, 254);
  t.regex(wrong.stderr, /cannot resume: the target .* is not a copy of the start of/);
});

test.serial('PostgreSQL to SQLite: the same events, ids, versions and positions (nothing adopted)', (t) => {
  const { dir } = source;
  const to = pgUrl();
  t.is(podlog(dir, ['log', 'copy', '--from', `sqlite:${join(dir, 'events.db')}`, '--to', to]).status, 0);
  const back = join(dir, 'back', 'events.db');
  const r = podlog(dir, ['log', 'copy', '--from', to, '--to', `sqlite:${back}`]);
  t.is(r.status, 0, r.stderr);
  t.notRegex(r.stdout, /adopted/);
  t.deepEqual(eventsIn(dir, `sqlite:${back}`), eventsIn(dir, to));
});

test.serial('a compacted source: its tombstones start at version 1, positions are the target own, the pods are the same', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-log-copy-compacted-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [gone, kept] = [0, 3].map((code) => {
    const file = join(dir, `uuid-${code}`);
    t.is(podlog(dir, ['run', `--uuid-file-save=${file}`, IMAGE, '--exec', '/bin/sh', '--', '-c', `exit ${code}`]).status, code);
    return readFileSync(file, 'utf8').trim();
  }) as [string, string];
  ok(podlog(dir, ['rm', gone]));
  t.regex(ok(podlog(dir, ['log', 'compact'])), /1 pod\(s\) compacted/);
  const compacted = eventsIn(dir);
  const tombstone = compacted.find((e) => e.type === 'PodCompacted')!;
  t.true(tombstone.version > 1);

  const to = pgUrl();
  const r = podlog(dir, ['log', 'copy', '--from', `sqlite:${join(dir, 'events.db')}`, '--to', to]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`compacted stream pod-${gone} \\(its first event at version ${tombstone.version}\\) starts at version 1`));
  t.regex(r.stdout, /positions are the target's own, in the source's order/);
  const copied = eventsIn(dir, to);
  const expected = withoutPositions(compacted.map(adopted).map((e) => (e.stream === `pod-${gone}` ? { ...e, version: 1 } : e)));
  t.deepEqual(withoutPositions(copied), expected);
  t.deepEqual(copied.map((e) => e.position), copied.map((_, i) => i + 1), 'the target has no gaps');
  // The source's own list may still show the compacted pod (its saved row, older than the tombstone, does
  // not fold on with it): the copy's list is built from the log alone.
  t.deepEqual(listIn(dir, to), (listIn(dir) as Array<{ uuid: string }>).filter((p) => p.uuid !== gone));
  t.is(ok(podlog(dir, ['status', kept], to)), ok(podlog(dir, ['status', kept])));
});

test.serial('a pod recorded before hosts were is given the host --host-id names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-log-copy-legacy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const legacy = await openSqliteStore(join(dir, 'events.db'));
  const uuid = '0190c1d2-0000-7000-8000-0000000000aa';
  await legacy.append(`pod-${uuid}`, [{ ...newEvent('PrepareRequested', { uuid, apps: [], mutable: false, overlay: false, stage1: {} }), schema: 3 }], 'no_stream');
  await legacy.append('image-sha512-aa', [newEvent('ImageImported', { id: 'sha512-aa' })], 'no_stream');
  await legacy.close();
  const to = pgUrl();
  const r = podlog(dir, ['log', 'copy', '--from', `sqlite:${join(dir, 'events.db')}`, '--to', to]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`1 image-store streams \\(1 events\\) moved under host/${HOST}/, 1 pod\\(s\\) given host ${HOST}`));
  const store = await openPostgresStore(to, { readonly: true });
  try {
    const [prepare, image] = await store.readAll();
    t.deepEqual(prepare!.data, { uuid, apps: [], mutable: false, overlay: false, stage1: {}, host: HOST });
    t.is(prepare!.schema, 3, 'the event is otherwise as it was');
    t.is(image!.stream, `host/${HOST}/image-sha512-aa`);
  } finally {
    await store.close();
  }
});

test.serial('log migrate: a fresh PostgreSQL schema gets every migration, an up-to-date one none; a fresh SQLite log too', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-log-migrate-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const to = pgUrl();
  t.regex(ok(podlog(dir, ['log', 'migrate'], to)), /schema at version 3; applied: 1, 2, 3$/m);
  t.regex(ok(podlog(dir, ['log', 'migrate'], to)), /already at schema version 3$/m);
  t.regex(ok(podlog(dir, ['log', 'migrate'])), /events\.db: schema at version 2; applied: 1, 2$/m);
  t.regex(ok(podlog(dir, ['log', 'migrate'])), /already at schema version 2$/m);
});

test.serial('log copy refuses what it cannot do: missing flags, an empty source, a stray flag', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-log-copy-usage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = podlog(dir, ['log', 'copy', '--to', pgUrl()]);
  t.is(missing.status, 254);
  t.regex(missing.stderr, /give both --from URL and --to URL/);
  const empty = podlog(dir, ['log', 'copy', '--from', `sqlite:${join(dir, 'none.db')}`, '--to', pgUrl()]);
  t.is(empty.status, 254);
  t.regex(empty.stderr, /holds no events: nothing to copy/);
  const stray = podlog(dir, ['log', 'migrate', '--from', 'sqlite:x']);
  t.is(stray.status, 254);
  t.regex(stray.stderr, /--from is not one of its flags/);
});

test.serial("log compact on a shared log: only this host's deleted pods, and this host's image index keeps their use", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-log-compact-shared-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = pgUrl();
  const as = (host: string, args: string[]) =>
    spawnSync(podlogBin, ['--dir', join(dir, host), '--host-id', host, '--store', store, ...args], { encoding: 'utf8', timeout: 120_000 });
  for (const host of ['host-a', 'host-b']) {
    const file = join(dir, `uuid-${host}`);
    const r = as(host, ['run', `--uuid-file-save=${file}`, IMAGE, '--exec', '/bin/true']);
    t.is(r.status, 0, r.stderr);
    t.is(as(host, ['rm', readFileSync(file, 'utf8').trim()]).status, 0);
  }
  const lastUsed = (host: string): unknown => (JSON.parse(as(host, ['image', 'list', '--format', 'json']).stdout) as Array<{ lastUsed?: unknown }>)[0]?.lastUsed;
  const used = lastUsed('host-b');
  t.truthy(used);
  t.regex(as('host-a', ['log', 'compact']).stdout, /1 pod\(s\) compacted/);
  t.regex(as('host-b', ['log', 'compact']).stdout, /1 pod\(s\) compacted/, "host-a left host-b's pod to host-b");
  t.deepEqual(lastUsed('host-b'), used);
});

/** A shared log that host A's log was copied into (the fleet's first host), with what it then held. */
const sharedWithA = (): { to: string; copied: RecordedEvent[] } => {
  const to = pgUrl();
  ok(podlog(source.dir, ['log', 'copy', '--from', `sqlite:${join(source.dir, 'events.db')}`, '--to', to]));
  return { to, copied: eventsIn(source.dir, to) };
};

/** `log copy --merge` as host B from `from` (a log URL). */
const mergeB = (from: string, to: string, flags: string[] = []): SpawnSyncReturns<string> =>
  podlogB(sourceB.dir, ['log', 'copy', '--from', from, '--to', to, '--merge', ...flags]);

/** The events of `log` whose ids are among those of `source`, in the log's order. */
const eventsOf = (log: RecordedEvent[], source: RecordedEvent[]): RecordedEvent[] => {
  const ids = new Set(source.map((e) => e.meta.id));
  return log.filter((e) => ids.has(e.meta.id));
};

test.serial("--merge: host B's log joins the shared log host A copied into; B's pods, events and image as they were; a second merge is refused", (t) => {
  const { to, copied } = sharedWithA();
  const fromB = `sqlite:${join(sourceB.dir, 'events.db')}`;
  const eventsB = eventsIn(sourceB.dir);
  const r = mergeB(fromB, to);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`copy: ${eventsB.length} events copied .* in \\d+ transaction`));
  t.regex(r.stdout, /global positions were not kept: the events were merged at the target's head/);
  t.regex(r.stdout, new RegExp(`adopted for host ${HOST_B}: [1-9]\\d* image-store streams \\([1-9]\\d* events\\) moved under host/${HOST_B}/, 0 pod`));

  const merged = eventsIn(sourceB.dir, to);
  t.deepEqual(merged.slice(0, copied.length), copied, "host A's events as they were");
  t.is(merged.length, copied.length + eventsB.length);
  t.deepEqual(
    withoutPositions(eventsOf(merged, eventsB)),
    withoutPositions(eventsB.map(adoptedBy(HOST_B))),
    "each of B's events once, with its id, version and data, in B's order; its image streams under host/host-b/",
  );
  t.deepEqual(uuidsIn(listIn(sourceB.dir, to, podlogB)), [...sourceB.uuids].sort(), "host-b's list: its pods");
  t.deepEqual(uuidsIn(listIn(sourceB.dir, to, podlogB, ['--all-hosts'])), [...source.uuids, ...sourceB.uuids].sort());
  for (const uuid of sourceB.uuids) t.is(ok(podlogB(sourceB.dir, ['status', uuid], to)), ok(podlogB(sourceB.dir, ['status', uuid])));

  // B goes on on the shared log: its image is found in its own scope, not imported again.
  const imports = merged.filter((e) => e.type === 'ImageImported').length;
  const run = podlogB(sourceB.dir, ['run', IMAGE, '--exec', '/bin/true'], to);
  t.is(run.status, 0, run.stderr);
  const after = eventsIn(sourceB.dir, to);
  t.is(after.filter((e) => e.type === 'ImageImported').length, imports, 'no new ImageImported');
  t.deepEqual(after.filter((e) => e.position > merged.at(-1)!.position && !e.stream.startsWith('pod-')), [], 'nothing recorded but the new pod');

  const again = mergeB(fromB, to);
  t.is(again.status, 254);
  t.regex(again.stderr, new RegExp(`host ${HOST_B} already has image records in the target .*\\(host/${HOST_B}/(image|tree|layer)-.*\\): was this log merged before\\? .*--resume`));
  t.deepEqual(eventsIn(sourceB.dir, to), after, 'the refused merge wrote nothing');

  const done = mergeB(fromB, to, ['--resume']);
  t.is(done.status, 0, done.stderr);
  t.regex(done.stdout, new RegExp(`copy: 0 events copied .* after the ${eventsB.length} already there`), 'a finished merge resumed has nothing left to copy');
  t.deepEqual(eventsIn(sourceB.dir, to), after);
});

test.serial("--merge --resume: goes on after an interrupted merge with other hosts' events between, and refuses a target that is not the source's start", (t) => {
  const { to, copied } = sharedWithA();
  const eventsB = eventsIn(sourceB.dir);
  // The interrupted merge: B's log up to its first pod; then host A writes on.
  t.is(mergeB(`sqlite:${sourceB.firstPodLog}`, to).status, 0);
  const prefix = eventsIn(sourceB.dir, to).length - copied.length;
  t.true(prefix > 0 && prefix < eventsB.length);
  const other = podlog(source.dir, ['run', IMAGE, '--exec', '/bin/true'], to);
  t.is(other.status, 0, other.stderr);
  const between = eventsIn(sourceB.dir, to).length - copied.length - prefix;
  t.true(between > 0, "host A's pod is recorded between the merge's two parts");

  const r = mergeB(`sqlite:${join(sourceB.dir, 'events.db')}`, to, ['--resume']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`copy: ${eventsB.length - prefix} events copied .* after the ${prefix} already there`));
  const merged = eventsIn(sourceB.dir, to);
  t.is(merged.length, copied.length + eventsB.length + between);
  t.deepEqual(withoutPositions(eventsOf(merged, eventsB)), withoutPositions(eventsB.map(adoptedBy(HOST_B))));
  t.deepEqual(uuidsIn(listIn(sourceB.dir, to, podlogB)), [...sourceB.uuids].sort());

  // Merged as another host, B's image streams would be under host/host-c/, which the target does not have.
  // (From a data dir of host-c's own: B's is bound to host-b.)
  const dirC = mkdtempSync(join(tmpdir(), 'podlog-log-copy-host-c-'));
  t.teardown(() => rmSync(dirC, { recursive: true, force: true }));
  const wrong = podlogAs('host-c')(dirC, ['log', 'copy', '--from', `sqlite:${join(sourceB.dir, 'events.db')}`, '--to', to, '--merge', '--resume']);
  t.is(wrong.status, 254);
  t.regex(wrong.stderr, /cannot resume: the target .* \(its events in the source's streams\) is not a copy of the start of .*the same --host-id as the first merge/);
  t.deepEqual(eventsIn(sourceB.dir, to), merged, 'the refused resume wrote nothing');
});

test.serial('--merge refuses an empty target, a one-host (SQLite) target and a shared source, writing nothing', (t) => {
  const fromB = `sqlite:${join(sourceB.dir, 'events.db')}`;
  const empty = pgUrl();
  const intoEmpty = mergeB(fromB, empty);
  t.is(intoEmpty.status, 254);
  t.regex(intoEmpty.stderr, /log copy --merge: the target .* holds no events: copy without --merge/);
  t.deepEqual(eventsIn(sourceB.dir, empty), []);

  const sqliteTarget = join(sourceB.dir, 'a-first-pod.db');
  copyFileSync(source.firstPodLog, sqliteTarget);
  t.teardown(() => rmSync(sqliteTarget, { force: true }));
  const before = eventsIn(sourceB.dir, `sqlite:${sqliteTarget}`);
  const intoSqlite = mergeB(fromB, `sqlite:${sqliteTarget}`);
  t.is(intoSqlite.status, 254);
  t.regex(intoSqlite.stderr, /log copy --merge: the target .* is a one-host \(sqlite\) log: only a shared \(PostgreSQL\) log takes in another host's log/);
  t.deepEqual(eventsIn(sourceB.dir, `sqlite:${sqliteTarget}`), before);

  const { to, copied } = sharedWithA();
  const fromShared = mergeB(sharedWithA().to, to);
  t.is(fromShared.status, 254);
  t.regex(fromShared.stderr, /log copy --merge: the source .* is a shared \(postgres\) log/);
  t.deepEqual(eventsIn(sourceB.dir, to), copied);
});
