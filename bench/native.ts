/**
 * Benchmarks of the native addon: rendering a ~100 MB ACI (2,000 files of 50 KB plus the busybox tree)
 * against GNU `tar -xf` of the same uncompressed tar (medians; both read the image from the page cache);
 * and tree hash throughput. Target: render ≤ 1.3× tar.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractImage, treeHash } from '../src/native.js';
import { median, report } from './report.js';

const FILES = 2_000;
const FILE_SIZE = 50 * 1024;
const RUNS = 5;

const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/** Writes the benchmark image into `dir` and returns its path and the bytes of file data in it. */
const makeImage = (dir: string): { aci: string; bytes: number } => {
  const stage = join(dir, 'stage');
  const data = join(stage, 'rootfs', 'data');
  cpSync(join(import.meta.dirname, '..', 'fixtures', 'build', 'rootfs', 'busybox'), join(stage, 'rootfs'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  // Random blocks reused with a per-file header: incompressible-looking content without generating 100 MB.
  const blocks = Array.from({ length: 16 }, () => randomBytes(FILE_SIZE));
  for (let i = 0; i < FILES; i++) {
    const sub = join(data, String(i % 50));
    if (i < 50) mkdirSync(sub, { recursive: true });
    const content = Buffer.from(blocks[i % blocks.length]!);
    content.writeUInt32LE(i, 0);
    writeFileSync(join(sub, `f${i}.bin`), content);
  }
  writeFileSync(join(stage, 'manifest'), JSON.stringify({ acKind: 'ImageManifest', acVersion: '0.8.11', name: 'bench/data' }));
  const aci = join(dir, 'bench.aci');
  const r = spawnSync('tar', ['--format=gnu', '-C', stage, '-cf', aci, 'manifest', 'rootfs']);
  if (r.status !== 0) throw new Error(`tar -cf failed: ${r.stderr.toString()}`);
  rmSync(stage, { recursive: true });
  return { aci, bytes: FILES * FILE_SIZE };
};

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-native-'));
  try {
    const { aci, bytes } = makeImage(dir);
    const addonMs: number[] = [];
    const tarMs: number[] = [];
    // Each timed run starts with no dirty pages (sync), and the order alternates, so neither side
    // pays for the other's writeback.
    const timed = async (f: () => Promise<void> | void): Promise<number> => {
      spawnSync('sync');
      const start = process.hrtime.bigint();
      await f();
      return ms(start);
    };
    const viaAddon = (i: number) => async (): Promise<void> => {
      mkdirSync(join(dir, `tree-${i}`));
      await extractImage(aci, join(dir, `tree-${i}`, 'rootfs'));
    };
    const viaTar = (i: number) => (): void => {
      mkdirSync(join(dir, `tar-${i}`));
      const r = spawnSync('tar', ['-xf', aci, '-C', join(dir, `tar-${i}`)]);
      if (r.status !== 0) throw new Error(`tar -xf failed: ${r.stderr.toString()}`);
    };
    for (let i = 0; i < RUNS; i++) {
      if (i % 2 === 0) {
        addonMs.push(await timed(viaAddon(i)));
        tarMs.push(await timed(viaTar(i)));
      } else {
        tarMs.push(await timed(viaTar(i)));
        addonMs.push(await timed(viaAddon(i)));
      }
      rmSync(join(dir, `tar-${i}`), { recursive: true });
      if (i > 0) rmSync(join(dir, `tree-${i}`), { recursive: true });
    }
    const addon = median(addonMs);
    const tar = median(tarMs);
    const mb = bytes / 1e6;
    console.log(`render of a ${mb.toFixed(0)} MB ACI (${FILES} files + busybox), median of ${RUNS}:`);
    const runs = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' ');
    console.log(`  addon extractImage ${addon.toFixed(1)} ms [${runs(addonMs)}], GNU tar -xf ${tar.toFixed(1)} ms [${runs(tarMs)}]`);
    report('render time / tar -xf time', addon / tar, { target: '≤ 1.30', ok: addon / tar <= 1.3, reference: `tar ${tar.toFixed(0)} ms` });

    const hashMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const start = process.hrtime.bigint();
      await treeHash(join(dir, 'tree-0'));
      hashMs.push(ms(start));
    }
    const hashRate = mb / (median(hashMs) / 1000);
    report('tree hash throughput, MB/s', hashRate, { target: 'informational', ok: true, reference: `${median(hashMs).toFixed(0)} ms for ${mb.toFixed(0)} MB` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
