/**
 * Benchmarks of the embedded SQLite event store, each printed next to a physical reference measured in the
 * same run on the same disk: a bare better-sqlite3 INSERT into a plain table with the same pragmas
 * (WAL, synchronous=FULL), one transaction per row, and batched.
 *
 *   node --import=tsx -e "import('./bench/store.ts').then(m=>m.run())"
 *
 * Printed figures, never timed tests. Targets on the 2-core VM: ≥ 4,000 durable single-event appends/s,
 * ≥ 50,000 events/s in batches of 100, cross-process notification p50 ≤ 60 ms, loading a 10,000-row
 * projection ≤ 20 ms.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { NewEvent } from '../src/store/port.js';
import { newEvent } from '../test/store/events.js';

const CHILD_ENV = 'PODLOG_BENCH_STORE_CHILD';
const here = fileURLToPath(import.meta.url);
const repoRoot = join(dirname(here), '..');

const SINGLE = 2000;
const BATCHES = 500;
const BATCH_SIZE = 100;
const NOTIFY_COUNT = 60;
const PROJECTION_ROWS = 10_000;
const ROUNDS = 4;

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const wallMs = (): number => performance.timeOrigin + performance.now();

const event = (type: string, data: Record<string, unknown>): NewEvent =>
  newEvent(type, data, { host: 'bench-host', command: ['run', '--net=host', 'busybox.aci'], correlationId: '0190c1d2-0000-7000-8000-000000000000' });

/** A payload shaped like a lifecycle event's data. */
const podData = (i: number): Record<string, unknown> => ({
  uuid: `0190c1d2-${(i & 0xffff).toString(16).padStart(4, '0')}-7000-8000-00000000abcd`,
  app: 'busybox',
  image: 'sha512-6e1b0f0c5ad5c8b7a6d3f2e1',
  pid: 4242 + i,
  exitCode: 0,
});

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
const median = (xs: number[]): number => pct([...xs].sort((a, b) => a - b), 50);

/**
 * Appends through the store and bare better-sqlite3 inserts with the same pragmas (the physical
 * reference), interleaved in ROUNDS so that both see the same disk and CPU weather.
 */
const appendRates = async (
  dir: string,
): Promise<{ single: number; batched: number; rawSingle: number; rawBatched: number }> => {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE raw (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, data TEXT NOT NULL, meta TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO raw (stream, data, meta) VALUES (?, ?, ?)');
  const rawOne = db.transaction((e: NewEvent, stream: string) => insert.run(stream, JSON.stringify(e.data), JSON.stringify(e.meta)));
  const rawMany = db.transaction((es: NewEvent[], stream: string) => {
    for (const e of es) insert.run(stream, JSON.stringify(e.data), JSON.stringify(e.meta));
  });
  const store = await openSqliteStore(join(dir, 'appends.db'));
  const versions = new Map<string, number>();
  const append = async (stream: string, events: NewEvent[]): Promise<void> => {
    const v = versions.get(stream) ?? 0;
    await store.append(stream, events, v);
    versions.set(stream, v + events.length);
  };
  // The events are built before the clock starts: this measures the store, not uuid generation.
  const singles = Array.from({ length: SINGLE }, (_, i) => event('AppStarted', podData(i)));
  const batches = Array.from({ length: BATCHES }, (_, b) =>
    Array.from({ length: BATCH_SIZE }, (_, i) => event('AppStarted', podData(b * BATCH_SIZE + i))),
  );
  const ms = { single: 0, rawSingle: 0, batched: 0, rawBatched: 0 };
  const time = async (key: keyof typeof ms, fn: () => Promise<void> | void): Promise<void> => {
    const t0 = performance.now();
    await fn();
    ms[key] += performance.now() - t0;
  };
  const perRound = SINGLE / ROUNDS;
  const batchesPerRound = BATCHES / ROUNDS;
  for (let r = 0; r < ROUNDS; r++) {
    await time('rawSingle', () => {
      for (let i = r * perRound; i < (r + 1) * perRound; i++) rawOne.immediate(singles[i]!, `pod-${i % 50}`);
    });
    await time('single', async () => {
      for (let i = r * perRound; i < (r + 1) * perRound; i++) await append(`pod-${i % 50}`, [singles[i]!]);
    });
    await time('rawBatched', () => {
      for (let b = r * batchesPerRound; b < (r + 1) * batchesPerRound; b++) rawMany.immediate(batches[b]!, `pod-${b % 50}`);
    });
    await time('batched', async () => {
      for (let b = r * batchesPerRound; b < (r + 1) * batchesPerRound; b++) await append(`pod-${b % 50}`, batches[b]!);
    });
  }
  await store.close();
  db.close();
  const rate = (n: number, t: number): number => n / (t / 1000);
  return {
    single: rate(SINGLE, ms.single),
    rawSingle: rate(SINGLE, ms.rawSingle),
    batched: rate(BATCHES * BATCH_SIZE, ms.batched),
    rawBatched: rate(BATCHES * BATCH_SIZE, ms.rawBatched),
  };
};

/** The child appends NOTIFY_COUNT events at random intervals; this process waits with waitForChange. */
const notificationLatency = async (file: string, pollMs: number): Promise<{ p50: number; p95: number; max: number; commitP50: number }> => {
  const store = await openSqliteStore(file, { pollMs });
  const child = spawn(process.execPath, ['--import=tsx', here], {
    cwd: repoRoot,
    env: { ...process.env, [CHILD_ENV]: file },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const latencies: number[] = [];
  const commits: number[] = [];
  let after = await store.headPosition();
  const ac = new AbortController();
  void done.then(() => ac.abort());
  while (latencies.length < NOTIFY_COUNT && !ac.signal.aborted) {
    await store.waitForChange(after, ac.signal);
    const events = await store.readAll({ after, streams: ['bench-notify'] });
    const now = wallMs();
    for (const e of events) {
      latencies.push(now - (e.data['sentAt'] as number));
      commits.push(e.data['n'] as number);
    }
    after = Math.max(after, await store.headPosition());
  }
  await done;
  await store.close();
  const commitTimes = out.trim().split('\n').filter(Boolean).map(Number);
  const sorted = latencies.sort((a, b) => a - b);
  return { p50: pct(sorted, 50), p95: pct(sorted, 95), max: sorted[sorted.length - 1] ?? Number.NaN, commitP50: median(commitTimes) };
};

const projectionLoad = async (
  file: string,
): Promise<{ load: number; loadP95: number; rawQuery: number; parse: number; bytes: number; summarised: number[]; summaryBytes: number }> => {
  const store = await openSqliteStore(file);
  const upserts = new Map<string, Record<string, unknown> & { context: Record<string, unknown> }>();
  for (let i = 0; i < PROJECTION_ROWS; i++) {
    const uuid = `0190c1d2-${i.toString(16).padStart(4, '0')}-7000-8000-00000000abcd`;
    upserts.set(uuid, {
      uuid,
      state: i % 3 === 0 ? 'running' : 'exited',
      version: 7,
      position: i * 7,
      context: {
        uuid,
        createdAt: new Date(1_790_000_000_000 + i * 1000).toISOString(),
        startedAt: new Date(1_790_000_001_000 + i * 1000).toISOString(),
        apps: [{ name: 'busybox', image: 'sha512-6e1b0f0c5ad5c8b7a6d3f2e1', exitCode: i % 3 === 0 ? null : 0 }],
        pid: 4242 + i,
      },
    });
  }
  await store.saveProjection({ name: 'pods', schema: 'bench', expectedCheckpoint: 0, checkpoint: 70_000, upserts });
  // The same rows with a summary of what a list shows (the pod list's PodListRow leaves out as much).
  const summarise = ({ context: { pid: _pid, uuid: _uuid, ...context }, ...row }: { context: Record<string, unknown> }) => ({ ...row, context });
  await store.saveProjection({ name: 'pods-summarised', schema: 'bench', expectedCheckpoint: 0, checkpoint: 70_000, upserts, summarise });
  let bytes = 0;
  let summaryBytes = 0;
  for (const row of upserts.values()) {
    bytes += JSON.stringify(row).length;
    summaryBytes += JSON.stringify(summarise(row)).length;
  }
  const loadTimes = async (name: string): Promise<number[]> => {
    const times: number[] = [];
    for (let run = 0; run < 22; run++) {
      const t0 = performance.now();
      const p = await store.loadProjection(name);
      const dt = performance.now() - t0;
      if (p.rows.size !== PROJECTION_ROWS) throw new Error(`loaded ${p.rows.size} rows`);
      if (run >= 2) times.push(dt);
    }
    return times;
  };
  const times = await loadTimes('pods');
  const summarised = await loadTimes('pods-summarised');
  await store.close();
  // Reference: the same rows read by a bare query, without JSON.parse or building a Map.
  const db = new Database(file, { readonly: true });
  const q = db.prepare('SELECT key, row FROM projection_rows WHERE name = ?').raw();
  const raw: number[] = [];
  const parse: number[] = [];
  for (let run = 0; run < 22; run++) {
    let t0 = performance.now();
    const rows = q.all('pods') as [string, string][];
    if (run >= 2) raw.push(performance.now() - t0);
    t0 = performance.now();
    for (const r of rows) JSON.parse(r[1]);
    if (run >= 2) parse.push(performance.now() - t0);
  }
  db.close();
  const sorted = [...times].sort((a, b) => a - b);
  return { load: median(times), loadP95: pct(sorted, 95), rawQuery: median(raw), parse: median(parse), bytes, summarised, summaryBytes };
};

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-store-'));
  try {
    const load = loadavg().map((l) => l.toFixed(2)).join(' ');
    const mem = new Database(':memory:');
    const version = mem.prepare('SELECT sqlite_version()').pluck().get() as string;
    mem.close();
    console.log(`# event store (SQLite ${version}, WAL, synchronous=FULL), ${cpus().length} CPUs, load average ${load}`);
    const r = await appendRates(dir);
    const line = (label: string, value: string, reference: string, ratio: number, target: string): void =>
      console.log(`${label.padEnd(44)} ${value.padStart(14)}   ${reference}, ratio ${ratio.toFixed(2)}; target ${target}`);
    line('durable single-event appends (1 txn each)', `${fmt(r.single)}/s`, `raw SQLite 1-row txn ${fmt(r.rawSingle)}/s`, r.single / r.rawSingle, '≥ 4,000/s');
    line(
      `batched appends (${BATCH_SIZE} events/append)`,
      `${fmt(r.batched)} ev/s`,
      `raw SQLite ${BATCH_SIZE}-row txn ${fmt(r.rawBatched)} rows/s`,
      r.batched / r.rawBatched,
      '≥ 50,000 ev/s',
    );
    const pollMs = 15;
    const n = await notificationLatency(join(dir, 'notify.db'), pollMs);
    console.log(
      `${'cross-process notification (waitForChange)'.padEnd(44)} ${`p50 ${fmt(n.p50, 1)} ms`.padStart(14)}   ` +
        `p95 ${fmt(n.p95, 1)} ms, max ${fmt(n.max, 1)} ms; poll every ${pollMs} ms, the child's commit p50 ${fmt(n.commitP50, 1)} ms ` +
        `(from the child's append call to this process having read the event); target p50 ≤ 60 ms`,
    );
    const p = await projectionLoad(join(dir, 'projection.db'));
    line(
      `loadProjection, ${fmt(PROJECTION_ROWS)} rows of ${fmt(p.bytes / PROJECTION_ROWS)} B`,
      `${fmt(p.load, 1)} ms`,
      `p95 ${fmt(p.loadP95, 1)} ms; raw SELECT of the rows ${fmt(p.rawQuery, 1)} ms + JSON.parse of them alone ${fmt(p.parse, 1)} ms`,
      p.load / (p.rawQuery + p.parse),
      '≤ 20 ms',
    );
    const minMax = (xs: number[]): string => `min ${fmt(Math.min(...xs), 1)}, median ${fmt(median(xs), 1)}, max ${fmt(Math.max(...xs), 1)} ms`;
    line(
      `loadProjection, the same rows with ${fmt(p.summaryBytes / PROJECTION_ROWS)} B summaries`,
      `${fmt(median(p.summarised), 1)} ms`,
      `${minMax(p.summarised)}; whole rows in the same run ${fmt(p.load, 1)} ms`,
      median(p.summarised) / p.load,
      '≤ 15 ms',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Child mode (spawned by notificationLatency): appends events stamped with the wall-clock time of the call. */
const child = async (file: string): Promise<void> => {
  const store = await openSqliteStore(file);
  const commitMs: number[] = [];
  for (let n = 0; n < NOTIFY_COUNT; n++) {
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 60));
    const sentAt = wallMs();
    await store.append('bench-notify', [event('Ping', { n, sentAt })], 'any');
    commitMs.push(wallMs() - sentAt);
  }
  await store.close();
  process.stdout.write(`${commitMs.join('\n')}\n`);
};

const childFile = process.env[CHILD_ENV];
if (childFile !== undefined && process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await child(childFile);
}
