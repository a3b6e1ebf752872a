/**
 * Volumes against no volumes, in the same run: `run IMAGE --exec /bin/true` through the library
 * (one long-running process, the image already imported), once with 4 host volumes and 1 empty
 * volume mounted and once with none, interleaved so that load changes hit both alike. Target: the
 * pod with volumes takes at most 10% longer, start to exit.
 *
 *   BENCH=volumes node --import=tsx bench/run.ts
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFrom, parseRunFlags } from '../src/cli/run-flags.js';
import { commandContext } from '../src/events/metadata.js';
import { gc, openStage0, run as runPod, type Stage0 } from '../src/stage0/index.js';
import { aciPath } from '../test/helpers/fixtures.js';
import { median, report } from './report.js';

const RUNS = Number(process.env.BENCH_VOLUMES_RUNS ?? 20);
const WARMUP = 3;

/** One pod start to exit, in milliseconds. */
const once = async (s: Stage0, argv: string[]): Promise<number> => {
  const t0 = process.hrtime.bigint();
  const code = await runPod(s, configFrom(parseRunFlags(argv)));
  if (code !== 0) throw new Error(`run ${argv.join(' ')}: ${code}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
};

export const run = async (): Promise<void> => {
  const work = mkdtempSync(join(tmpdir(), 'podlog-bench-volumes-'));
  const s = await openStage0(join(work, 'data'), commandContext(['bench', 'volumes']));
  try {
    const hosts = [1, 2, 3, 4].map((i) => join(work, `host${i}`));
    for (const h of hosts) mkdirSync(h);
    const app = ['--exec', '/bin/true'];
    const none = [aciPath('busybox-gzip'), ...app];
    const volumes = [
      ...hosts.flatMap((h, i) => [`--volume=h${i},kind=host,source=${h}`, `--mount=volume=h${i},target=/h${i}`]),
      '--volume=e,kind=empty', '--mount=volume=e,target=/e',
      aciPath('busybox-gzip'), ...app,
    ];
    const times = { none: [] as number[], volumes: [] as number[] };
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const [a, b] = [await once(s, none), await once(s, volumes)];
      if (i >= WARMUP) {
        times.none.push(a);
        times.volumes.push(b);
      }
      // Exited pods are collected as they come, so the log and the pods directory stay small.
      await gc(s, { gracePeriodMs: 0, expirePreparedMs: 24 * 3600_000, markOnly: false });
    }
    const [without, withVolumes] = [median(times.none), median(times.volumes)];
    console.log(`run --exec /bin/true start to exit, library; ${RUNS} interleaved pairs after ${WARMUP} warm-ups; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    report('pod with 4 host volumes + 1 empty volume / pod with none', withVolumes / without, {
      target: '≤ 1.10', ok: withVolumes <= without * 1.1,
      reference: `${withVolumes.toFixed(1)} ms vs ${without.toFixed(1)} ms, medians`,
    });
  } finally {
    await s.close();
    rmSync(work, { recursive: true, force: true });
  }
};
