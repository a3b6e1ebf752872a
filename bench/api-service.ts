/**
 * The api-service under load, over its unix socket: GET /v1/pods of 10,000 pods (a synthetic SQLite log
 * of `podlog run` histories, its pod list saved as `list` leaves it), and 100 SSE watchers that must each
 * receive every event of a 10,000-event burst, in order, with none missing. The burst is appended by
 * another process, as pods' own processes append: a writer in the service's process would stall it
 * during each synchronous commit.
 *
 *   BENCH=api-service node --import=tsx bench/run.ts
 *
 * Targets: GET /v1/pods of 10,000 pods ≤ 50 ms (median); every watcher gets all 10,000 events.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { v4 as uuidv4 } from 'uuid';
import { startApiService } from '../src/api/http/server.js';
import { eventLogPath } from '../src/config.js';
import { catchUpPodList } from '../src/engine/pod-list.js';
import { podStream } from '../src/engine/streams.js';
import { POD_EVENTS } from '../src/events/catalogue.js';
import { commandContext, newMetadata } from '../src/events/metadata.js';
import { openStore } from '../src/store/open.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { history } from './histories.js';
import { median, report } from './report.js';
import { generate } from './stage0.js';

const PODS = 10_000;
const REQUESTS = 30;
const WATCHERS = 100;
/** The burst: 2,500 preparations that abort, 4 events each (one append per pod). */
const BURST_PODS = 2_500;
const BURST_EVENTS = BURST_PODS * history(uuidv4(), 'aborted', 0).length;

const CHILD_ENV = 'PODLOG_BENCH_API_BURST';
const here = fileURLToPath(import.meta.url);

const fmt = (n: number, digits = 1): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** One GET over the socket, timed from the request to the last byte of the body. */
const timedGet = (socketPath: string, path: string): Promise<{ ms: number; bytes: number; status: number }> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ socketPath, path }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve({ ms: performance.now() - t0, bytes, status: res.statusCode! }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });

const ID = Buffer.from('\nid: ');

/**
 * An SSE watcher that keeps nothing but its count: it checks that the ids it receives are the
 * positions after `from`, one after another (the burst's log has no gaps), and notes when the last
 * arrives. It reads bytes, not text: the watchers share this process with the service.
 */
const watcher = (socketPath: string, from: number, last: number) => {
  let expected = from + 1;
  let count = 0;
  let error: string | undefined;
  let resolveDone: (ms: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  const connected = new Promise<void>((resolve, reject) => {
    const req = request({ socketPath, path: `/v1/watch?from=${from}` }, (res) => {
      // The bytes after the last complete id line of the previous chunk (an id line may be cut in two).
      let tail: Buffer = Buffer.alloc(0);
      res.on('data', (chunk: Buffer) => {
        const buf = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
        let at = buf.indexOf(ID);
        let end = 0;
        while (at !== -1) {
          const eol = buf.indexOf(10, at + ID.length);
          if (eol === -1) break;
          const id = Number(buf.toString('latin1', at + ID.length, eol));
          if (id !== expected) error ??= `expected id ${expected}, got ${id}`;
          expected = id + 1;
          end = eol;
          if (++count === last - from) {
            resolveDone(performance.now());
            req.destroy();
          }
          at = buf.indexOf(ID, eol);
        }
        tail = buf.subarray(Math.max(end, buf.length - 32));
      });
      resolve();
    });
    req.on('error', (e) => (count === last - from ? undefined : reject(e)));
    req.end();
  });
  return { connected, done, count: () => count, error: () => error };
};

/** Appends the burst: BURST_PODS pods' histories, one append per pod, as fast as the log takes them. */
const burst = async (file: string): Promise<void> => {
  const store = await openSqliteStore(file);
  const ctx = commandContext(['bench', 'burst']);
  const pods = Array.from({ length: BURST_PODS }, () => uuidv4());
  const appends = pods.map((uuid) => history(uuid, 'aborted', 0).map(({ type, data }) => ({ type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta: newMetadata(ctx) })));
  process.stdout.write('start\n');
  const t0 = performance.now();
  let position = 0;
  for (const [i, events] of appends.entries()) position = (await store.append(podStream(pods[i]!), events, 'no_stream')).position;
  process.stdout.write(`${position} ${performance.now() - t0}\n`);
  await store.close();
};

/** Runs the burst in a child process: when it starts appending, and its last position and time once it is done. */
const burstInChild = (file: string): { started: Promise<number>; done: Promise<{ position: number; ms: number }> } => {
  const child = spawn(process.execPath, ['--import=tsx', here], { env: { ...process.env, [CHILD_ENV]: file }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const started = lines.next().then(() => performance.now());
  const done = started.then(async () => {
    const [position, ms] = String((await lines.next()).value).split(' ').map(Number);
    return { position: position!, ms: ms! };
  });
  return { started, done };
};

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-api-'));
  const socket = join(dir, 'api.sock');
  try {
    await generate(dir, Array.from({ length: PODS }, (_, i) => (i % 10 === 0 ? 'running' : 'exited')));
    // The pod list as `list` leaves it saved: the service starts from it.
    const writer = await openSqliteStore(eventLogPath(dir));
    await catchUpPodList(writer);
    const store = await openStore(dir, { access: 'inspect' });
    const t0 = performance.now();
    const service = await startApiService({ store, dataDir: dir, hostId: 'bench', listen: { socket } });
    const startMs = performance.now() - t0;
    try {
      console.log(`# api-service, ${PODS.toLocaleString('en-US')} pods (${(await store.headPosition()).toLocaleString('en-US')} events), over a unix socket; started in ${fmt(startMs, 0)} ms (pod table and metrics from the log)`);
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < REQUESTS + 3; i++) {
        const r = await timedGet(socket, '/v1/pods');
        if (r.status !== 200) throw new Error(`GET /v1/pods answered ${r.status}`);
        // The first requests compile the serialiser and warm the JIT.
        if (i >= 3) times.push(r.ms);
        bytes = r.bytes;
      }
      const med = median(times);
      report(`GET /v1/pods of ${PODS.toLocaleString('en-US')} pods, median of ${REQUESTS} (ms)`, med, {
        target: '≤ 50', ok: med <= 50, reference: `min ${fmt(Math.min(...times))}, max ${fmt(Math.max(...times))} ms; ${fmt(bytes / 1e6)} MB of JSON`,
      });
      const filtered: number[] = [];
      for (let i = 0; i < 5; i++) filtered.push((await timedGet(socket, '/v1/pods?state=running')).ms);
      console.log(`     GET /v1/pods?state=running (${(PODS / 10).toLocaleString('en-US')} pods), median of 5: ${fmt(median(filtered))} ms`);

      const from = await store.headPosition();
      const last = from + BURST_EVENTS;
      const watchers = Array.from({ length: WATCHERS }, () => watcher(socket, from, last));
      await Promise.all(watchers.map((w) => w.connected));
      const child = burstInChild(eventLogPath(dir));
      const burstStart = await child.started;
      const { position: appended, ms: appendMs } = await child.done;
      if (appended !== last) throw new Error(`the burst ended at position ${appended}, not ${last}`);
      const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 120_000).unref());
      const finished = await Promise.race([Promise.all(watchers.map((w) => w.done)), deadline]);
      const complete = watchers.filter((w) => w.count() === BURST_EVENTS && w.error() === undefined).length;
      const allMs = finished === 'timeout' ? Number.NaN : Math.max(...finished) - burstStart;
      report(`SSE: ${WATCHERS} watchers, each every event of a ${BURST_EVENTS.toLocaleString('en-US')}-event burst (watchers complete)`, complete, {
        target: `${WATCHERS}`,
        ok: complete === WATCHERS,
        reference: `the last watcher had the last event ${finished === 'timeout' ? 'never (120 s)' : `${fmt(allMs, 0)} ms`} after the burst began; another process appended the burst in ${fmt(appendMs, 0)} ms (${BURST_PODS.toLocaleString('en-US')} appends of ${BURST_EVENTS / BURST_PODS}); ${watchers.find((w) => w.error() !== undefined)?.error() ?? 'ids in order, none missing'}`,
      });
    } finally {
      await service.close();
      await store.close();
      await writer.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const childFile = process.env[CHILD_ENV];
if (childFile !== undefined && process.argv[1] === here) await burst(childFile);
