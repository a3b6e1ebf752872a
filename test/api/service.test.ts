/**
 * `podlog api-service` over real HTTP: a unix socket and 127.0.0.1, real pods run by bin/podlog (an
 * effect made to fail, a run killed after an intent and reconciled by `list`), the service started
 * in-process by its factory and once as the real CLI, and an SSE client that reconnects.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiService, type ApiService } from '../../src/api/http/server.js';
import { podStream } from '../../src/engine/streams.js';
import { commandContext, newMetadata } from '../../src/events/metadata.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore, RecordedEvent } from '../../src/store/port.js';
import { fakeEffects } from '../engine/fake-effects.js';
import { prepareData, preparePod } from '../engine/samples.js';
import { PodEngine } from '../../src/engine/engine.js';
import { aciPath } from '../helpers/fixtures.js';
import { get, targetOf, type HttpTarget } from '../helpers/http.js';
import { SseClient } from '../helpers/sse.js';
import { dataDir, podlogBin, type DataDir } from '../stage0/podlog.js';

/** What parse-prometheus-text-format (untyped CommonJS) returns: one family per metric name. */
interface MetricFamily {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; count?: string; sum?: string; buckets?: Record<string, string> }>;
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => MetricFamily[];

const HOST = 'h1';
const OTHER = 'h2';

/** `podlog run` of busybox exiting with `code`; the pod's UUID, and how run ended. */
const runPod = (d: DataDir, code: number, flags: string[] = [], env: Record<string, string> = {}) => {
  const uuidFile = join(d.dir, `uuid-${Math.random().toString(36).slice(2)}`);
  const r = d.podlog(['run', `--uuid-file-save=${uuidFile}`, ...flags, aciPath('busybox-gzip'), '--exec', '/bin/sh', '--', '-c', `exit ${code}`], { PODLOG_HOST_ID: HOST, ...env });
  return { uuid: existsSync(uuidFile) ? readFileSync(uuidFile, 'utf8').trim() : '', status: r.status, stderr: r.stderr };
};

/** A pod that is preparing, appended straight to the log (a synthetic history, for UUIDs chosen by the test). */
const appendPreparing = async (store: EventStore, uuid: string, host = HOST): Promise<void> => {
  const meta = newMetadata(commandContext(['test', 'prepare'], host));
  await store.append(podStream(uuid), [{ type: 'PrepareRequested', schema: 4, data: { ...prepareData(uuid), host }, meta }], 'no_stream');
};

const scratch = () => mkdtempSync(join(tmpdir(), 'podlog-api-'));

type Pod = { uuid: string; state: string; host?: string; apps: Array<{ name: string; exit_code?: number }>; exit_code?: number; user_labels: Record<string, string>; user_annotations: Record<string, string> };

interface Fleet {
  d: DataDir;
  web: string;
  db: string;
  other: string;
  failed: string;
  crashed: string;
  service: ApiService;
  socket: HttpTarget;
  store: EventStore;
}
let fleet: Fleet | undefined;
const f = (): Fleet => fleet!;

test.before(async () => {
  const d = dataDir();
  const web = runPod(d, 0, ['--user-label=app=web']).uuid;
  const db = runPod(d, 3, ['--user-label=app=db', '--user-annotation=team=storage']).uuid;
  // A pod another host prepared: recorded by an engine of that host (a data dir is one host's, and the
  // host's pods are on its own disk, so the world here is the fake effects').
  const other = await (async () => {
    const writer = await openStore(d.dir);
    try {
      return await preparePod(new PodEngine(writer, fakeEffects(join(d.dir, 'other-world')), commandContext(['test', 'prepare'], OTHER)), undefined, OTHER);
    } finally {
      await writer.close();
    }
  })();
  const failed = runPod(d, 0, [], { PODLOG_FAIL_AT: 'effect:prepareOverlay' });
  if (failed.status !== 254) throw new Error(`a run whose overlay fails exits 254, not ${failed.status}: ${failed.stderr}`);
  const crashed = runPod(d, 0, [], { PODLOG_CRASH_AT: 'after-intent:OverlayPrepareRequested' });
  // `list` finds the intent the killed run left open and the preparation it owned: the reconciler's work.
  d.podlog(['list'], { PODLOG_HOST_ID: HOST });
  const store = await openStore(d.dir, { access: 'inspect' });
  const service = await startApiService({ store, dataDir: d.dir, hostId: HOST, listen: { socket: join(d.dir, 'api.sock') } });
  fleet = { d, web, db, other, failed: failed.uuid, crashed: crashed.uuid, service, socket: targetOf(service.address), store };
});

test.after.always(async () => {
  await fleet?.service.close();
  await fleet?.store.close();
  fleet?.d.cleanup();
});

test('GET /v1/pods over the unix socket (mode 0660) lists every pod in the shape of list --format=json', async (t) => {
  t.is(statSync(f().service.address).mode & 0o777, 0o660);
  const r = await get(f().socket, '/v1/pods');
  t.is(r.status, 200);
  t.regex(String(r.headers['content-type']), /^application\/json/);
  const pods = r.json<Pod[]>();
  const cli = JSON.parse(f().d.podlog(['list', '--format=json', '--all-hosts'], { PODLOG_HOST_ID: HOST }).stdout) as Pod[];
  const byUuid = (ps: Pod[]) => [...ps].sort((a, b) => (a.uuid < b.uuid ? -1 : 1));
  t.deepEqual(byUuid(pods), byUuid(cli));
  t.is(pods.length, 5);
  const web = pods.find((p) => p.uuid === f().web)!;
  t.like(web, { state: 'exited', host: HOST, exit_code: 0, user_labels: { app: 'web' } });
  t.like(pods.find((p) => p.uuid === f().db)!, { exit_code: 3, user_annotations: { team: 'storage' } });
  t.like(pods.find((p) => p.uuid === f().other)!, { state: 'prepared', host: OTHER });
});

test('GET /v1/pods filters by state, host, label and annotation; a bad filter is 400', async (t) => {
  const uuids = async (query: string) => (await get(f().socket, `/v1/pods?${query}`)).json<Pod[]>().map((p) => p.uuid).sort();
  const sorted = (...u: string[]) => u.sort();
  t.deepEqual(await uuids('state=exited'), sorted(f().web, f().db));
  t.deepEqual(await uuids('state=prepared,aborted%20prepare'), sorted(f().other, f().failed, f().crashed));
  t.deepEqual(await uuids('state=exited&state=prepared'), sorted(f().web, f().db, f().other));
  t.deepEqual(await uuids(`host=${OTHER}`), [f().other]);
  t.deepEqual(await uuids('label=app=web'), [f().web]);
  t.deepEqual(await uuids('label=app'), sorted(f().web, f().db));
  t.deepEqual(await uuids('label=app&annotation=team=storage'), [f().db]);
  t.deepEqual(await uuids('label=app=nothing'), []);
  for (const [query, message] of [['state=bogus', /unknown state "bogus"/], ['label==x', /label/], ['colour=red', /additional properties/]] as const) {
    const r = await get(f().socket, `/v1/pods?${query}`);
    t.is(r.status, 400, query);
    t.deepEqual(Object.keys(r.json<object>()).sort(), ['error', 'statusCode']);
    t.regex(r.json<{ error: string }>().error, message);
  }
});

test('GET /v1/pods/{uuid} by a unique prefix: state, apps, exit codes and the manifest; unknown 404', async (t) => {
  const r = await get(f().socket, `/v1/pods/${f().db.slice(0, 8)}`);
  t.is(r.status, 200);
  const pod = r.json<{ uuid: string; state: string; version: number; host: string; exitCode: number; apps: Array<{ name: string; exitCode: number }>; manifest: { acKind: string; apps: unknown[] }; userLabels: object }>();
  const status = JSON.parse(f().d.podlog(['status', '--format=json', f().db], { PODLOG_HOST_ID: HOST }).stdout) as Record<string, unknown>;
  t.like(pod, { uuid: f().db, state: 'exited', version: status.version as number, host: HOST, exitCode: 3, userLabels: { app: 'db' } });
  t.deepEqual(pod.apps.map((a) => [a.name, a.exitCode]), [['busybox', 3]]);
  t.is(pod.manifest.acKind, 'PodManifest');
  t.is(pod.manifest.apps.length, 1);
  const missing = await get(f().socket, '/v1/pods/0123456789');
  t.is(missing.status, 404);
  t.deepEqual(missing.json(), { error: 'no matches found for "0123456789"', statusCode: 404 });
  t.is((await get(f().socket, '/v1/nothing')).status, 404);
});

test('GET /v1/events pages through the whole log; GET /v1/pods/{uuid}/events is one pod\'s history', async (t) => {
  const head = await f().store.headPosition();
  const positions: number[] = [];
  for (let from = 0; ; ) {
    const page = (await get(f().socket, `/v1/events?from=${from}&limit=7`)).json<{ events: RecordedEvent[]; next: number; head: number }>();
    t.true(page.events.length <= 7);
    positions.push(...page.events.map((e) => e.position));
    t.is(page.head, head);
    if (page.next === from) break;
    from = page.next;
  }
  t.deepEqual(positions, (await f().store.readAll({ limit: 100_000 })).map((e) => e.position));
  for (const query of ['from=-1', 'from=x', 'limit=0', 'limit=5001', 'from=1.5']) t.is((await get(f().socket, `/v1/events?${query}`)).status, 400, query);
  const history = (await get(f().socket, `/v1/pods/${f().failed}/events`)).json<RecordedEvent[]>();
  t.deepEqual(history.map((e) => e.version), history.map((_, i) => i + 1));
  t.true(history.some((e) => e.type === 'EffectFailed' && e.data.effect === 'prepareOverlay'));
});

test('GET /metrics in the Prometheus text format: pods, events, effect durations, failures and reconciler actions from the log', async (t) => {
  const r = await get(f().socket, '/metrics');
  t.is(r.status, 200);
  t.regex(String(r.headers['content-type']), /^text\/plain/);
  const families = new Map(parsePrometheus(r.body).map((m) => [m.name, m]));
  const samples = (name: string) => families.get(name)?.metrics ?? [];
  const sum = (name: string, labels: Record<string, string> = {}) =>
    samples(name).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)).reduce((n, m) => n + Number(m.value), 0);
  t.is(sum('podlog_pods'), 5);
  t.is(sum('podlog_pods', { state: 'exited', host: HOST }), 2);
  t.is(sum('podlog_pods', { state: 'prepared', host: OTHER }), 1);
  t.is(sum('podlog_events_total'), await f().store.headPosition());
  t.is(sum('podlog_events_total', { type: 'PodExited', host: HOST }), 2);
  t.is(sum('podlog_effect_failures_total', { effect: 'prepareOverlay' }), 1);
  // The run killed after OverlayPrepareRequested: `list` finished (or compensated) its intent and aborted its preparation.
  t.is(sum('podlog_reconciler_actions_total', { action: 'aborted-prepare' }), 1);
  t.is(sum('podlog_reconciler_actions_total', { action: 'finished' }) + sum('podlog_reconciler_actions_total', { action: 'compensated' }), 1);
  // Every pod created by its own run: one createPod duration each (the crashed run's too: it died later).
  // The parser merges a histogram's label sets into one, so its per-effect count is read from its line.
  t.is(families.get('podlog_effect_duration_seconds')?.type, 'HISTOGRAM');
  t.regex(r.body, /^podlog_effect_duration_seconds_count\{effect="createPod"\} 5$/m);
  t.regex(r.body, /^podlog_effect_duration_seconds_count\{effect="startStage1"\} 2$/m);
  t.is(families.get('podlog_process_store_write_seconds')?.type, 'HISTOGRAM');
  t.true(families.has('process_cpu_user_seconds_total'));
});

test('GET /openapi.json is an OpenAPI 3 document naming every route', async (t) => {
  const doc = (await get(f().socket, '/openapi.json')).json<{ openapi: string; paths: Record<string, unknown> }>();
  t.regex(doc.openapi, /^3\./);
  t.deepEqual(Object.keys(doc.paths).sort(), ['/metrics', '/v1/events', '/v1/pods', '/v1/pods/{uuid}', '/v1/pods/{uuid}/events', '/v1/watch']);
});

test('over 127.0.0.1 with --token-file: 401 without the bearer token or with another, 200 with it', async (t) => {
  const dir = scratch();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 's3cret-token\n', { mode: 0o644 });
  const options = { store: f().store, dataDir: f().d.dir, hostId: HOST, listen: { host: '127.0.0.1', port: 0 }, tokenFile };
  await t.throwsAsync(startApiService(options), { message: /only its owner may have access/ });
  const open = await t.throwsAsync(startApiService({ ...options, listen: { host: '0.0.0.0', port: 0 }, tokenFile: undefined as never }));
  t.regex(open!.message, /needs --token-file/);
  chmodSync(tokenFile, 0o600);
  const service = await startApiService(options);
  t.teardown(() => service.close());
  const target = targetOf(service.address);
  t.regex(service.address, /^127\.0\.0\.1:\d+$/);
  const refused: Array<Record<string, string>> = [{}, { Authorization: 'Bearer wrong' }, { Authorization: 's3cret-token' }];
  for (const headers of refused) {
    const r = await get(target, '/v1/pods', headers);
    t.is(r.status, 401);
    t.is(r.json<{ statusCode: number }>().statusCode, 401);
  }
  t.is((await get(target, '/metrics')).status, 401);
  const ok = await get(target, '/v1/pods', { Authorization: 'Bearer s3cret-token' });
  t.is(ok.status, 200);
  t.is(ok.json<Pod[]>().length, 5);
});

test('an ambiguous UUID prefix is 400, naming the ambiguity', async (t) => {
  const dir = scratch();
  const store = await openStore(dir);
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await appendPreparing(store, 'abcdef00-0000-4000-8000-000000000001');
  await appendPreparing(store, 'abcdef00-0000-4000-8000-000000000002');
  const service = await startApiService({ store, dataDir: dir, hostId: HOST, listen: { socket: join(dir, 'api.sock') } });
  t.teardown(() => service.close());
  const r = await get(targetOf(service.address), '/v1/pods/abcdef');
  t.is(r.status, 400);
  t.regex(r.json<{ error: string }>().error, /ambiguous uuid, 2 matches/);
  t.is((await get(targetOf(service.address), '/v1/pods/abcdef00-0000-4000-8000-000000000002')).json<Pod>().state, 'preparing');
});

test('SSE: a client resumes with Last-Event-ID across a restart of the service on the same socket, with no gap and no repeat', async (t) => {
  const dir = scratch();
  const writer = await openStore(dir);
  const store = await openStore(dir, { access: 'inspect' });
  const socket = join(dir, 'api.sock');
  // Only the last 4 to 8 events kept in memory: the client catches up from the log, then from memory.
  const options = { store, dataDir: dir, hostId: HOST, listen: { socket }, heartbeatMs: 50, recentEvents: 4 };
  let service = await startApiService(options);
  const client = new SseClient({ socketPath: socket }, '/v1/watch?from=0', { retryMs: 50 });
  t.teardown(async () => {
    client.close();
    await service.close();
    await Promise.all([store.close(), writer.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const pods = Array.from({ length: 30 }, (_, i) => `0190c1d2-0000-4000-8000-${String(i).padStart(12, '0')}`);
  for (const uuid of pods.slice(0, 10)) await appendPreparing(writer, uuid);
  await client.until((c) => c.messages.length >= 10);
  // Heartbeats come while nothing is appended.
  await client.until((c) => c.comments >= 3);
  await service.close();
  for (const uuid of pods.slice(10, 20)) await appendPreparing(writer, uuid);
  service = await startApiService(options);
  for (const uuid of pods.slice(20)) await appendPreparing(writer, uuid);
  await client.until((c) => c.messages.length >= 30);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.true(client.connections >= 2, 'the client reconnected');
  t.deepEqual(client.messages.map((m) => Number(m.id)), Array.from({ length: 30 }, (_, i) => i + 1));
  const events = client.messages.map((m) => JSON.parse(m.data) as RecordedEvent);
  t.deepEqual(events.map((e) => e.stream), pods.map(podStream));
  t.true(client.messages.every((m, i) => m.event === 'PrepareRequested' && events[i]!.position === Number(m.id)));
});

test('SSE filters: ?types, ?host and ?pod; a live watch starts at the head; a bad Last-Event-ID is 400', async (t) => {
  const dir = scratch();
  const store = await openStore(dir);
  const service = await startApiService({ store, dataDir: dir, hostId: HOST, listen: { socket: join(dir, 'api.sock') } });
  const target = targetOf(service.address);
  const clients: SseClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await service.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await appendPreparing(store, '11111111-0000-4000-8000-000000000000');
  const watch = (path: string) => {
    const c = new SseClient(target, path);
    clients.push(c);
    return c;
  };
  const live = watch('/v1/watch');
  const other = watch(`/v1/watch?from=0&host=${OTHER}`);
  const first = watch('/v1/watch?from=0&pod=11111111');
  const typed = watch('/v1/watch?from=0&types=PodCreated,PrepareRequested');
  await live.until((c) => c.connections === 1);
  await appendPreparing(store, '22222222-0000-4000-8000-000000000000', OTHER);
  await Promise.all([live.until((c) => c.messages.length === 1), other.until((c) => c.messages.length === 1), first.until((c) => c.messages.length === 1), typed.until((c) => c.messages.length === 2)]);
  t.is(JSON.parse(live.messages[0]!.data).stream, podStream('22222222-0000-4000-8000-000000000000'));
  t.is(JSON.parse(other.messages[0]!.data).meta.hostId, OTHER);
  t.is(JSON.parse(first.messages[0]!.data).stream, podStream('11111111-0000-4000-8000-000000000000'));
  for (const [path, headers] of [['/v1/watch?from=x', {}], ['/v1/watch', { 'Last-Event-ID': 'nope' }], ['/v1/watch?pod=99999999', {}]] as const) {
    const r = await get(target, path, headers);
    t.is(r.status, path.includes('pod=') ? 404 : 400, path);
    t.is(r.json<{ statusCode: number }>().statusCode, r.status);
  }
});

test('the CLI: podlog api-service serves a unix socket, refuses a second one on it, and exits 0 on SIGTERM, removing its socket; a deleted pod is 404 but keeps its history', async (t) => {
  const d = dataDir();
  t.teardown(() => d.cleanup());
  const uuid = runPod(d, 0).uuid;
  const socket = join(d.dir, 'cli.sock');
  const child = spawn(podlogBin, ['--dir', d.dir, '--host-id', HOST, 'api-service', '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  for (let i = 0; i < 200 && !stderr.includes('listening'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const target = { socketPath: socket };
  t.deepEqual((await get(target, '/v1/pods')).json<Pod[]>().map((p) => p.uuid), [uuid]);
  const second = d.podlog(['api-service', '--socket', socket]);
  t.is(second.status, 254);
  t.regex(second.stderr, /an API service already listens on/);
  const usage = d.podlog(['api-service', '--listen', '0.0.0.0:0']);
  t.is(usage.status, 254);
  t.regex(usage.stderr, /needs --token-file/);
  t.is(d.podlog(['rm', uuid], { PODLOG_HOST_ID: HOST }).status, 0);
  let status = 200;
  for (let i = 0; i < 100 && status === 200; i++) {
    status = (await get(target, `/v1/pods/${uuid}`)).status;
    if (status === 200) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.is(status, 404);
  t.deepEqual((await get(target, '/v1/pods')).json(), []);
  const history = (await get(target, `/v1/pods/${uuid}/events`)).json<RecordedEvent[]>();
  t.is(history.at(-1)!.type, 'PodDeleted');
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.false(existsSync(socket));
});
