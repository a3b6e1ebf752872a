import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { firstValueFrom, take, toArray } from 'rxjs';
import { v4 as uuidv4 } from 'uuid';
import { consume } from '../../src/api/subscribe.js';
import { watch, type PodStateChange } from '../../src/api/watch.js';
import { openStore } from '../../src/store/open.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDataDir } from '../helpers/store.js';

const writePod = (dir: string, uuid: string, delayMs: number) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'test/api/pod-writer.ts'), dir, uuid, String(delayMs)], { stdio: 'inherit' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pod-writer exited ${code}`))));
  });

const LIFECYCLE: Array<[string, string, string]> = [
  ['embryo', 'preparing', 'PrepareRequested'],
  ['preparing', 'prepared', 'PodPrepared'],
  ['prepared', 'running', 'PodStarted'],
  ['running', 'exited', 'PodExited'],
];
const steps = (changes: PodStateChange[]) => changes.map((c) => [c.from, c.to, c.event]);

test('watch() in one process sees, in order, the state changes another process appends', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const uuid = uuidv4();
    const seen = firstValueFrom(watch(store).pipe(take(LIFECYCLE.length), toArray()));
    await writePod(dir, uuid, 30);
    const changes = await seen;
    t.deepEqual(steps(changes), LIFECYCLE);
    t.true(changes.every((c) => c.pod === uuid));
    t.deepEqual(changes.map((c) => c.position), [...changes.map((c) => c.position)].sort((a, b) => a - b));
  } finally {
    await cleanup();
  }
});

test('watch() from a position mid-history starts from the state the pod had there', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const [first, second] = [uuidv4(), uuidv4()];
    await writePod(dir, first, 0);
    await writePod(dir, second, 0);
    const history = await store.readAll({ limit: 100 });
    const prepared = history.find((e) => e.stream.endsWith(first) && e.type === 'PodPrepared')!;
    const changes = await firstValueFrom(watch(store, { fromPosition: prepared.position }).pipe(take(2 + LIFECYCLE.length), toArray()));
    t.deepEqual(steps(changes.filter((c) => c.pod === first)), LIFECYCLE.slice(2));
    t.deepEqual(steps(changes.filter((c) => c.pod === second)), LIFECYCLE);
    const only = await firstValueFrom(watch(store, { pod: second }).pipe(take(LIFECYCLE.length), toArray()));
    t.true(only.every((c) => c.pod === second));
  } finally {
    await cleanup();
  }
});

test('consume() hands every event to the handler once and resumes after its checkpoint', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    await writePod(dir, uuidv4(), 0);
    const total = await store.headPosition();
    const seen: RecordedEvent[] = [];
    const firstRun = new AbortController();
    await consume(store, 'exporter', async (batch) => {
      seen.push(...batch);
      if (seen.length >= 4) firstRun.abort();
    }, { batchSize: 2, signal: firstRun.signal });
    t.is(seen.length, 4);
    const again = await openStore(dir);
    const rest: RecordedEvent[] = [];
    const second = new AbortController();
    await consume(again, 'exporter', async (batch) => {
      rest.push(...batch);
      if (seen.length + rest.length >= total) second.abort();
    }, { batchSize: 3, signal: second.signal });
    await again.close();
    t.deepEqual([...seen, ...rest].map((e) => e.position), Array.from({ length: total }, (_, i) => i + 1));
  } finally {
    await cleanup();
  }
});
