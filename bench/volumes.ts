/**
 * Volumes against no volumes, in the same run (pod-pairs): once with 4 host volumes and 1 empty
 * volume mounted and once with none. Target: the pod with volumes takes at most 10% longer, start
 * to exit.
 *
 *   BENCH=volumes node --import=tsx bench/run.ts
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { aciPath } from '../test/helpers/fixtures.js';
import { podPairs } from './pod-pairs.js';
import { report } from './report.js';

const RUNS = Number(process.env.BENCH_VOLUMES_RUNS ?? 20);

export const run = async (): Promise<void> => {
  const app = [aciPath('busybox-gzip'), '--exec', '/bin/true'];
  const { base, variant } = await podPairs('volumes', RUNS, (work) => {
    const hosts = [1, 2, 3, 4].map((i) => join(work, `host${i}`));
    for (const h of hosts) mkdirSync(h);
    return {
      base: app,
      variant: [
        ...hosts.flatMap((h, i) => [`--volume=h${i},kind=host,source=${h}`, `--mount=volume=h${i},target=/h${i}`]),
        '--volume=e,kind=empty', '--mount=volume=e,target=/e',
        ...app,
      ],
    };
  });
  report('pod with 4 host volumes + 1 empty volume / pod with none', variant / base, {
    target: '≤ 1.10', ok: variant <= base * 1.1,
    reference: `${variant.toFixed(1)} ms vs ${base.toFixed(1)} ms, medians`,
  });
};
