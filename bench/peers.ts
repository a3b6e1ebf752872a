/**
 * GNU tar as the peer of image extraction: the ~100 MB test ACI that the native and image store
 * benchmarks render, and alternating timed runs of what they measure against `tar -xf` of the same tar.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageLabel } from '../src/events/images.js';

const FILES = 2_000;
const FILE_SIZE = 50 * 1024;

/** Milliseconds since `start` (a `process.hrtime.bigint()`). */
export const msSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/** The runs' times, whole milliseconds, for a line of output. */
export const listRuns = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' ');

/**
 * Writes the benchmark image into `dir`: the busybox tree plus FILES files of 50 KB of random-looking
 * data, as an uncompressed ACI named `name`. Returns its path, how many data files and the bytes of them.
 */
export const makeImage = (dir: string, name: string, labels?: ImageLabel[]): { aci: string; files: number; bytes: number } => {
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
  const manifest = { acKind: 'ImageManifest', acVersion: '0.8.11', name, ...(labels ? { labels } : {}) };
  writeFileSync(join(stage, 'manifest'), JSON.stringify(manifest));
  const aci = join(dir, 'bench.aci');
  const r = spawnSync('tar', ['--format=gnu', '-C', stage, '-cf', aci, 'manifest', 'rootfs']);
  if (r.status !== 0) throw new Error(`tar -cf failed: ${r.stderr.toString()}`);
  rmSync(stage, { recursive: true });
  return { aci, files: FILES, bytes: FILES * FILE_SIZE };
};

/** Times `f`, started with no dirty pages (sync), so that it does not pay for an earlier run's writeback. */
export const timed = async (f: () => Promise<unknown> | unknown): Promise<number> => {
  spawnSync('sync');
  const start = process.hrtime.bigint();
  await f();
  return msSince(start);
};

/**
 * `runs` timed runs of `subject` and of `tar -xf aci`, in alternating order so that neither side pays for
 * the other's writeback. Run i of the subject writes into `<dir>/<name>-i` (which it creates), tar into
 * `<dir>/tar-i`; each is removed after its run, except the subject's first, `<dir>/<name>-0`, which is
 * left for the caller. Returns the times of each side, in milliseconds.
 */
export const alternateWithTar = async (o: {
  dir: string;
  aci: string;
  runs: number;
  name: string;
  subject: (out: string) => Promise<void>;
}): Promise<{ subjectMs: number[]; tarMs: number[] }> => {
  const subjectMs: number[] = [];
  const tarMs: number[] = [];
  const viaSubject = (i: number) => (): Promise<void> => o.subject(join(o.dir, `${o.name}-${i}`));
  const viaTar = (i: number) => (): void => {
    mkdirSync(join(o.dir, `tar-${i}`));
    const r = spawnSync('tar', ['-xf', o.aci, '-C', join(o.dir, `tar-${i}`)]);
    if (r.status !== 0) throw new Error(`tar -xf failed: ${r.stderr.toString()}`);
  };
  for (let i = 0; i < o.runs; i++) {
    if (i % 2 === 0) {
      subjectMs.push(await timed(viaSubject(i)));
      tarMs.push(await timed(viaTar(i)));
    } else {
      tarMs.push(await timed(viaTar(i)));
      subjectMs.push(await timed(viaSubject(i)));
    }
    rmSync(join(o.dir, `tar-${i}`), { recursive: true });
    if (i > 0) rmSync(join(o.dir, `${o.name}-${i}`), { recursive: true });
  }
  return { subjectMs, tarMs };
};
