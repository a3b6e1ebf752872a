/**
 * The image store against GNU tar: importing and rendering a ~100 MB ACI (fetch: copy, id, checks,
 * render, tree hash, events) against `tar -xf` of the same uncompressed tar, medians of alternating
 * runs each started with no dirty pages; on disk, then with everything on tmpfs (/dev/shm), where the
 * disk's writeback (and other processes' use of it) is out of the picture and what is left is CPU.
 * Target: ≤ 1.3× tar. Then the same image imported and resolved + rendered again, as every
 * `podlog run image.aci` does: no re-render, milliseconds.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandContext } from '../src/events/metadata.js';
import { openImageStore } from '../src/images/index.js';
import { openStore } from '../src/store/open.js';
import { median, report } from './report.js';

const FILES = 2_000;
const FILE_SIZE = 50 * 1024;
const RUNS = 7;
const AGAIN = 20;

const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

/** A ~100 MB ACI: the busybox tree plus FILES files of random-looking data, with os/arch labels. */
const makeImage = (dir: string): string => {
  const stage = join(dir, 'stage');
  cpSync(join(import.meta.dirname, '..', 'fixtures', 'build', 'rootfs', 'busybox'), join(stage, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  const blocks = Array.from({ length: 16 }, () => randomBytes(FILE_SIZE));
  for (let i = 0; i < FILES; i++) {
    const sub = join(stage, 'rootfs', 'data', String(i % 50));
    mkdirSync(sub, { recursive: true });
    const content = Buffer.from(blocks[i % blocks.length]!);
    content.writeUInt32LE(i, 0);
    writeFileSync(join(sub, `f${i}.bin`), content);
  }
  const labels = [
    { name: 'os', value: 'linux' },
    { name: 'arch', value: 'amd64' },
  ];
  writeFileSync(join(stage, 'manifest'), JSON.stringify({ acKind: 'ImageManifest', acVersion: '0.8.11', name: 'bench/images', labels }));
  const aci = join(dir, 'bench.aci');
  const r = spawnSync('tar', ['--format=gnu', '-C', stage, '-cf', aci, 'manifest', 'rootfs']);
  if (r.status !== 0) throw new Error(`tar -cf failed: ${r.stderr.toString()}`);
  rmSync(stage, { recursive: true });
  return aci;
};

const timed = async (f: () => Promise<unknown> | unknown): Promise<number> => {
  spawnSync('sync');
  const start = process.hrtime.bigint();
  await f();
  return ms(start);
};

const runs = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' ');

/** Alternating timed runs of the store and of tar in `dir`; prints and returns the ratio of medians. */
const compare = async (dir: string, aci: string, where: string): Promise<void> => {
  const importMs: number[] = [];
  const tarMs: number[] = [];
  const viaStore = (i: number) => async (): Promise<void> => {
    const events = await openStore(join(dir, `data-${i}`));
    try {
      const images = openImageStore(join(dir, `data-${i}`), events, commandContext(['bench']));
      await images.render((await images.importFile(aci, { quiet: true })).id);
    } finally {
      await events.close();
    }
  };
  const viaTar = (i: number) => (): void => {
    mkdirSync(join(dir, `tar-${i}`));
    const r = spawnSync('tar', ['-xf', aci, '-C', join(dir, `tar-${i}`)]);
    if (r.status !== 0) throw new Error(`tar -xf failed: ${r.stderr.toString()}`);
  };
  for (let i = 0; i < RUNS; i++) {
    if (i % 2 === 0) {
      importMs.push(await timed(viaStore(i)));
      tarMs.push(await timed(viaTar(i)));
    } else {
      tarMs.push(await timed(viaTar(i)));
      importMs.push(await timed(viaStore(i)));
    }
    rmSync(join(dir, `tar-${i}`), { recursive: true });
    if (i > 0) rmSync(join(dir, `data-${i}`), { recursive: true });
  }
  const store = median(importMs);
  const tar = median(tarMs);
  console.log(`  ${where}: image store ${store.toFixed(1)} ms [${runs(importMs)}], GNU tar -xf ${tar.toFixed(1)} ms [${runs(tarMs)}]`);
  report(`import + render time / tar -xf time, ${where}`, store / tar, { target: '≤ 1.30', ok: store / tar <= 1.3, reference: `tar ${tar.toFixed(0)} ms` });
};

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-images-'));
  const shm = mkdtempSync(join('/dev/shm', 'podlog-bench-images-'));
  try {
    const aci = makeImage(dir);
    console.log(`import + render of a ${((FILES * FILE_SIZE) / 1e6).toFixed(0)} MB ACI, median of ${RUNS}:`);
    await compare(dir, aci, 'on disk');
    await compare(shm, aci, 'on tmpfs');

    // The same image again, as `podlog run bench.aci` resolves and renders it: the store is data-0.
    const events = await openStore(join(dir, 'data-0'));
    try {
      const images = openImageStore(join(dir, 'data-0'), events, commandContext(['bench']));
      const againMs: number[] = [];
      for (let i = 0; i < AGAIN; i++) {
        againMs.push(
          await timed(async () => {
            const image = await images.resolve(aci, { quiet: true });
            await images.render(image.id);
            await images.manifest(image.id);
          }),
        );
      }
      report('second import + render (resolve, render, manifest), ms', median(againMs), {
        target: 'milliseconds, no re-render',
        ok: median(againMs) < 50,
        reference: `[${runs(againMs)}]`,
      });
    } finally {
      await events.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  }
}
