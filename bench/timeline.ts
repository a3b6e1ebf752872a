/**
 * `podlog timeline` over a large log (issue 17): 10,000 pods and about 120,000 events written through the
 * store's append API (test/timeline/synthetic.ts: `podlog run` histories, most collected by a gc, some
 * with a failed start, a few still running), then `--format trace` and `--format html` from the CLI,
 * each the median of RUNS whole processes after a warm-up, against the target of 1 s. Beside them, what
 * the parts cost in this process: reading every event through the store alone (the floor of any view of
 * the whole log), reading and folding each pod through the machine (the floor of any timeline, which
 * draws what the fold says), and Node's own start-up.
 *
 *   BENCH=timeline npm run bench, or node --import=tsx -e "import('./bench/timeline.ts').then(m => m.run())"
 *
 * Sizes: TIMELINE_PODS (10,000), TIMELINE_RUNS (5).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBatches } from '../src/api/subscribe.js';
import { foldingFrom, foldOnto, type FoldedPod } from '../src/engine/pod-list.js';
import { POD_STREAM_PREFIX, uuidOfStream } from '../src/engine/streams.js';
import { openStore } from '../src/store/open.js';
import type { RecordedEvent } from '../src/store/port.js';
import { repoRoot } from '../test/helpers/fixtures.js';
import { writeSyntheticLog } from '../test/timeline/synthetic.js';
import { median, report } from './report.js';

const PODS = Number(process.env.TIMELINE_PODS ?? 10_000);
const RUNS = Number(process.env.TIMELINE_RUNS ?? 5);
const HOST = 'bench-host';
const TARGET_MS = 1000;
const podlogBin = join(repoRoot, 'bin', 'podlog');

const exec = (argv: string[]): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: exit ${code}`))));
  });

const timed = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/** Medians of RUNS, after one run that warms the page cache and the code cache. */
const medianOf = async (fn: () => Promise<unknown>): Promise<number> => {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await timed(fn));
  return median(times);
};

/** What a run does with each event it reads: nothing, by default. */
type Consumer = () => (e: RecordedEvent) => void;
const nothing: Consumer = () => () => undefined;

/** Every pod event of the log read through the store, as the timeline reads them, each handed to a consumer made for the run. */
const readAlone = async (dir: string, consumer: Consumer = nothing): Promise<number> => {
  const store = await openStore(dir, { access: 'inspect' });
  try {
    return await medianOf(async () => {
      const see = consumer();
      for await (const batch of readBatches(store, { streamPrefix: POD_STREAM_PREFIX, batchSize: 500, stopAtHead: true })) for (const e of batch) see(e);
    });
  } finally {
    await store.close();
  }
};

/** Each event folded onto its pod, as the timeline folds them, and nothing drawn. */
const folding: Consumer = () => {
  const pods = new Map<string, FoldedPod>();
  return (e) => {
    let pod = pods.get(e.stream);
    if (pod === undefined) pods.set(e.stream, (pod = foldingFrom(uuidOfStream(e.stream))));
    foldOnto(pod, e);
  };
};

export const run = async (): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-timeline-'));
  try {
    const t0 = performance.now();
    const { events } = await writeSyntheticLog(dir, PODS, { hostId: HOST });
    const size = `${PODS.toLocaleString('en-US')} pods / ${events.toLocaleString('en-US')} events`;
    console.log(`(a log of ${size} written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const node = await medianOf(() => exec([process.execPath, '-e', '']));
    const read = await readAlone(dir);
    const folded = await readAlone(dir, folding);
    for (const format of ['trace', 'html'] as const) {
      const output = join(dir, `timeline.${format}`);
      const ms = await medianOf(() => exec([podlogBin, '--dir', dir, '--host-id', HOST, 'timeline', '--format', format, '--output', output]));
      report(`timeline --format ${format}, ${size}, CLI (ms)`, ms, {
        target: `≤ ${TARGET_MS.toLocaleString('en-US')}`,
        ok: ms <= TARGET_MS,
        reference: `median of ${RUNS}; ${(statSync(output).size / 1e6).toFixed(1)} MB written; in process: reading the log alone through the store ${read.toFixed(0)} ms, reading and folding every pod ${folded.toFixed(0)} ms; node -e '' ${node.toFixed(0)} ms`,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
