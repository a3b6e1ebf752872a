import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firstValueFrom, take, toArray } from 'rxjs';
import { consume } from '../../src/api/subscribe.js';
import { watch, type PodStateChange } from '../../src/api/watch.js';
import { openStore } from '../../src/store/open.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { aciPath, repoRoot } from '../helpers/fixtures.js';
import { tempDataDir } from '../helpers/store.js';

/** A real pod run by `podlog run` in another process (its app exits 0); resolves to its UUID. */
const runPod = (dir: string) =>
  new Promise<string>((resolve, reject) => {
    const uuidFile = join(dir, `uuid-${process.hrtime.bigint()}`);
    const args = ['--dir', dir, 'run', '--uuid-file-save', uuidFile, aciPath('busybox-gzip'), '--exec', '/bin/true'];
    const child = spawn(join(repoRoot, 'bin', 'podlog'), args, { stdio: 'inherit' });
    child.on('exit', (code) => (code === 0 ? resolve(readFileSync(uuidFile, 'utf8').trim()) : reject(new Error(`podlog run exited ${code}`))));
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
    const seen = firstValueFrom(watch(store).pipe(take(LIFECYCLE.length), toArray()));
    const uuid = await runPod(dir);
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
    const first = await runPod(dir);
    const second = await runPod(dir);
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
    await runPod(dir);
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
