/**
 * cgroup limits (issue 9), in the same run:
 * - `run` with a memory and a CPU limit against the same pod without (pod-pairs, library, median of
 *   30 interleaved pairs): the cost of the app's cgroups and their limit files. Target: ≤ 2 ms more.
 * - crun with the same limits in its config.json (`linux.resources`) against crun without, beside it
 *   (through the helper mount namespace bench/stage1.ts explains).
 *
 *   BENCH=limits node --import=tsx bench/run.ts
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../test/helpers/fixtures.js';
import { podPairs } from './pod-pairs.js';
import { median, report } from './report.js';
import { measureAll, ociBundle, startCrunNamespace } from './stage1.js';

const RUNS = Number(process.env.BENCH_LIMITS_RUNS ?? 30);
const MEMORY = 256 * 1e6;
const MILLICORES = 500;

/** crun's start to exit of /bin/true without and with the limits, medians in ms. */
const crunPair = async (): Promise<{ plain: number; limited: number }> => {
  const work = mkdtempSync(join(tmpdir(), 'podlog-bench-limits-'));
  const helper = await startCrunNamespace();
  try {
    const plain = ociBundle(join(work, 'plain'));
    const limited = ociBundle(join(work, 'limited'));
    const config = JSON.parse(readFileSync(join(limited, 'config.json'), 'utf8'));
    config.linux.resources = { ...config.linux.resources, memory: { limit: MEMORY }, cpu: { quota: MILLICORES * 100, period: 100_000 } };
    writeFileSync(join(limited, 'config.json'), JSON.stringify(config));
    const crun = (bundle: string, tag: string) => ({
      name: tag,
      prepare: (i: number) => ({ argv: ['nsenter', helper.mntns, '--', 'crun', 'run', '--bundle', bundle, `podlog-bench-${process.pid}-${tag}${i}`] }),
    });
    const results = await measureAll([crun(plain, 'plain'), crun(limited, 'limited')]);
    return { plain: median(results.get('plain')!), limited: median(results.get('limited')!) };
  } finally {
    helper.kill();
    rmSync(work, { recursive: true, force: true });
  }
};

export const run = async (): Promise<void> => {
  const app = [aciPath('busybox-gzip'), '--exec', '/bin/true'];
  const { base, variant } = await podPairs('limits', RUNS, () => ({ base: app, variant: [...app, `--memory=${MEMORY}`, `--cpu=${MILLICORES}m`] }));
  const crun = await crunPair();
  report('run --memory --cpu − run, ms', variant - base, {
    target: '≤ 2', ok: variant - base <= 2,
    reference: `${variant.toFixed(1)} ms vs ${base.toFixed(1)} ms, medians; crun with the same limits ${crun.limited.toFixed(1)} ms vs ${crun.plain.toFixed(1)} ms (a difference of ${(crun.limited - crun.plain).toFixed(1)} ms)`,
  });
};
