/**
 * Concurrent writers on one SQLite log, the question behind "group commit": do several processes
 * appending at once commit more events per second than one? Each writer is a process with its own
 * connection (bench/writer.ts), as each `podlog` is. They append single-event commits to their own
 * streams, durably (synchronous=FULL), all starting at one time; the figure is the total rate of 2
 * and 4 writers, and its ratio to one writer's.
 *
 *   BENCH=writers node --import=tsx bench/run.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { eventLogPath } from '../src/config.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { median, report } from './report.js';

const COMMITS = Number(process.env.BENCH_WRITER_COMMITS ?? 300);
const ROUNDS = 3;

/** Events per second of `writers` writers appending at once to a new log. */
const rate = async (writers: number): Promise<number> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-writers-'));
  const file = eventLogPath(dir);
  await (await openSqliteStore(file)).close();
  const start = Date.now() + 2000; // after every writer has started Node and opened the log
  try {
    const times = await Promise.all(
      Array.from({ length: writers }, (_, id) =>
        new Promise<number>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import=tsx', new URL('./writer.ts', import.meta.url).pathname, file, String(id), String(COMMITS), String(start)], { stdio: ['pipe', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.on('error', reject);
          child.on('close', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`writer ${id} exited ${code}`))));
        }),
      ),
    );
    return (writers * COMMITS) / (Math.max(...times) / 1000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

export async function run(): Promise<void> {
  const rates = new Map<number, number[]>([[1, []], [2, []], [4, []]]);
  for (let round = 0; round < ROUNDS; round++) for (const [writers, xs] of rates) xs.push(await rate(writers));
  const one = median(rates.get(1)!);
  for (const [writers, xs] of rates) {
    if (writers === 1) continue;
    const r = median(xs);
    report(`durable single-event commits, ${writers} writers at once over 1 writer (ratio of events/s)`, r / one, {
      target: 'printed', ok: true,
      reference: `${writers} writers ${Math.round(r).toLocaleString('en-US')}/s, 1 writer ${Math.round(one).toLocaleString('en-US')}/s; ${ROUNDS} rounds of ${COMMITS} commits a writer`,
    });
  }
}
