/**
 * --private-users, in the same run:
 * - with idmapped mounts against without, start to exit (pod-pairs). Target: under 5 ms more.
 * - the chown fallback's cost: the addon's shiftOwners over a tree of 10,000 files, against GNU
 *   `chown -R -h` giving the same tree back to root (a walk that changes every owner too).
 *
 *   BENCH=private-users node --import=tsx bench/run.ts
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shiftOwners, stage1Path } from '../src/native.js';
import { aciPath } from '../test/helpers/fixtures.js';
import { podPairs } from './pod-pairs.js';
import { median, report } from './report.js';

const RUNS = Number(process.env.BENCH_PRIVATE_USERS_RUNS ?? 20);
const FILES = 10_000;
const SHIFT_RUNS = 7;

const chownTree = async (): Promise<{ shift: number; chown: number }> => {
  const work = mkdtempSync(join(tmpdir(), 'podlog-bench-shift-'));
  try {
    // 100 directories of 100 files: the shape of a small image's tree.
    for (let d = 0; d < FILES / 100; d++) {
      mkdirSync(join(work, `d${d}`));
      for (let f = 0; f < 100; f++) writeFileSync(join(work, `d${d}`, `f${f}`), '');
    }
    const times = { shift: [] as number[], chown: [] as number[] };
    for (let i = 0; i < SHIFT_RUNS; i++) {
      let t0 = process.hrtime.bigint();
      const changed = await shiftOwners(work, 0x80000, 0x10000);
      times.shift.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (changed !== FILES + FILES / 100 + 1) throw new Error(`shiftOwners changed ${changed} entries`);
      t0 = process.hrtime.bigint();
      const r = spawnSync('chown', ['-R', '-h', '0:0', work], { stdio: ['pipe', 'inherit', 'inherit'] });
      times.chown.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.status !== 0) throw new Error('chown -R failed');
    }
    return { shift: median(times.shift), chown: median(times.chown) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
};

export const run = async (): Promise<void> => {
  const app = [aciPath('busybox-gzip'), '--exec', '/bin/true'];
  const { base, variant } = await podPairs('private-users', RUNS, () => ({ base: app, variant: ['--private-users', ...app] }));
  const ownership = execFileSync(stage1Path(), ['idmap-probe', '--dir', tmpdir()], { encoding: 'utf8' }).trim();
  report('run --private-users − run, ms', variant - base, {
    target: '< 5 with idmapped mounts', ok: variant - base < 5,
    reference: `${variant.toFixed(1)} ms vs ${base.toFixed(1)} ms, medians; ownership here: ${ownership}`,
  });
  const { shift, chown } = await chownTree();
  report(`chown fallback: shiftOwners per ${FILES.toLocaleString('en-US')} files, ms`, shift, {
    target: 'printed', ok: true,
    reference: `GNU chown -R -h on the same tree ${chown.toFixed(1)} ms (×${(shift / chown).toFixed(2)}); medians of ${SHIFT_RUNS}`,
  });
};
