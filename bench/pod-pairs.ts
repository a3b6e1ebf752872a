/**
 * Two kinds of pod against each other in the same run: `run` through the library (one long-running
 * process, the image already imported), the kinds interleaved (in turn first) so that load changes
 * hit both alike,
 * exited pods collected as they come so that the log and the pods directory stay small.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFrom, parseRunFlags } from '../src/cli/run-flags.js';
import { commandContext } from '../src/events/metadata.js';
import { gc, openStage0, run as runPod, type Stage0 } from '../src/stage0/index.js';
import { median } from './report.js';

const WARMUP = 3;

/** One pod start to exit, in milliseconds. */
const once = async (s: Stage0, argv: string[]): Promise<number> => {
  const t0 = process.hrtime.bigint();
  const code = await runPod(s, configFrom(parseRunFlags(argv)));
  if (code !== 0) throw new Error(`run ${argv.join(' ')}: ${code}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
};

/**
 * The median start-to-exit time of `base` and of `variant` (`run` arguments), over `runs` pairs
 * after warm-ups, in a data dir of their own; `args` may make what they name in `work`.
 */
export const podPairs = async (name: string, runs: number, args: (work: string) => { base: string[]; variant: string[] }): Promise<{ base: number; variant: number }> => {
  const work = mkdtempSync(join(tmpdir(), `podlog-bench-${name}-`));
  const s = await openStage0(join(work, 'data'), commandContext(['bench', name]));
  try {
    const { base, variant } = args(work);
    const times = { base: [] as number[], variant: [] as number[] };
    for (let i = 0; i < WARMUP + runs; i++) {
      // Which goes first alternates: the second of a pair pays for what the first leaves running
      // (measured at +20 ms with the same pod twice).
      const pair = { base: 0, variant: 0 };
      for (const kind of i % 2 === 0 ? (['base', 'variant'] as const) : (['variant', 'base'] as const)) {
        pair[kind] = await once(s, kind === 'base' ? base : variant);
      }
      if (i >= WARMUP) {
        times.base.push(pair.base);
        times.variant.push(pair.variant);
      }
      await gc(s, { gracePeriodMs: 0, expirePreparedMs: 24 * 3600_000, markOnly: false });
    }
    console.log(`run --exec /bin/true start to exit, library; ${runs} interleaved pairs after ${WARMUP} warm-ups; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    return { base: median(times.base), variant: median(times.variant) };
  } finally {
    await s.close();
    rmSync(work, { recursive: true, force: true });
  }
};
