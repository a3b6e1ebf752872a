/**
 * The image store against GNU tar: importing and rendering a ~100 MB ACI (fetch: copy, id, checks,
 * render, tree hash, events) against `tar -xf` of the same uncompressed tar, medians of alternating
 * runs each started with no dirty pages; on disk, then with everything on tmpfs (/dev/shm), where the
 * disk's writeback (and other processes' use of it) is out of the picture and what is left is CPU.
 * Target: ≤ 1.2× tar (issue 11.6), each side's min/median/max printed, and the ratios of the runs
 * paired in time. Then the same image imported and resolved + rendered again, as every
 * `podlog run image.aci` does: no re-render, milliseconds. Last, two OCI images over one ~100 MB base
 * layer: the second import stores and renders only its own small layer (target ≤ 10% of the first).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandContext } from '../src/events/metadata.js';
import { openImageStore } from '../src/images/index.js';
import { openStore } from '../src/store/open.js';
import { makeTaggedLayout, tarDir } from '../test/images/helpers.js';
import { alternateWithTar, listRuns, makeImage, timed } from './peers.js';
import { median, report } from './report.js';

const RUNS = 7;
const AGAIN = 20;

/** Milliseconds as min/median/max. */
const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}/${median(xs).toFixed(0)}/${Math.max(...xs).toFixed(0)}`;

/** Alternating timed runs of the store and of tar in `dir`; prints the ratio of medians. */
const compare = async (dir: string, aci: string, where: string): Promise<void> => {
  const { subjectMs: importMs, tarMs } = await alternateWithTar({
    dir,
    aci,
    runs: RUNS,
    name: 'data',
    subject: async (data) => {
      const events = await openStore(data);
      try {
        const images = openImageStore(data, events, commandContext(['bench']));
        await images.render((await images.importFile(aci, { quiet: true })).id);
      } finally {
        await events.close();
      }
    },
  });
  const store = median(importMs);
  const tar = median(tarMs);
  const paired = importMs.map((x, i) => x / tarMs[i]!);
  console.log(`  ${where}: image store ${store.toFixed(1)} ms [${listRuns(importMs)}], GNU tar -xf ${tar.toFixed(1)} ms [${listRuns(tarMs)}]`);
  console.log(
    `  ${where}: min/median/max ms: image store ${spread(importMs)}, tar ${spread(tarMs)}; ratio of runs paired in time ` +
      `${Math.min(...paired).toFixed(2)}/${median(paired).toFixed(2)}/${Math.max(...paired).toFixed(2)}`,
  );
  report(`import + render time / tar -xf time, ${where}`, store / tar, { target: '≤ 1.20', ok: store / tar <= 1.2, reference: `tar ${tar.toFixed(0)} ms` });
};

/** A layout tagged `first` and `second`: the bench image's rootfs as a base layer, and a small layer of each one's own. */
const sharedBaseLayout = (dir: string, aci: string): string => {
  const unpacked = join(dir, 'unpacked');
  mkdirSync(unpacked);
  const r = spawnSync('tar', ['-xf', aci, '-C', unpacked]);
  if (r.status !== 0) throw new Error(`tar -xf failed: ${r.stderr.toString()}`);
  const base = tarDir(join(unpacked, 'rootfs'), join(dir, 'base.tar'));
  rmSync(unpacked, { recursive: true });
  const own = (name: string): string => {
    const tree = join(dir, `${name}-tree`);
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc', 'which'), `${name}\n`);
    return tarDir(tree, join(dir, `${name}.tar`));
  };
  const layout = join(dir, 'layout');
  const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/cat', '/etc/which'] }, rootfs: { type: 'layers', diff_ids: [] } };
  makeTaggedLayout(layout, {
    first: { layers: [{ tar: base, compression: 'none' }, { tar: own('first'), compression: 'none' }], config },
    second: { layers: [{ tar: base, compression: 'none' }, { tar: own('second'), compression: 'none' }], config },
  });
  return layout;
};

/** Imports of two images sharing a base layer, each pair into a fresh store: the second costs its own layer only. */
const sharedLayers = async (dir: string, aci: string): Promise<void> => {
  const layout = sharedBaseLayout(dir, aci);
  const firstMs: number[] = [];
  const secondMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const data = join(dir, `shared-${i}`);
    const events = await openStore(data);
    try {
      const images = openImageStore(data, events, commandContext(['bench']));
      firstMs.push(await timed(() => images.importFile(layout, { quiet: true, tag: 'first' })));
      secondMs.push(await timed(() => images.importFile(layout, { quiet: true, tag: 'second' })));
    } finally {
      await events.close();
      rmSync(data, { recursive: true });
    }
  }
  const first = median(firstMs);
  const second = median(secondMs);
  console.log(`  first image ${first.toFixed(1)} ms [${listRuns(firstMs)}], second image ${second.toFixed(1)} ms [${listRuns(secondMs)}]`);
  report('import of a second OCI image sharing a ~100 MB base layer / import of the first', second / first, {
    target: '≤ 0.10',
    ok: second / first <= 0.1,
    reference: `first ${first.toFixed(0)} ms`,
  });
};

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-images-'));
  const shm = mkdtempSync(join('/dev/shm', 'podlog-bench-images-'));
  try {
    const labels = [
      { name: 'os', value: 'linux' },
      { name: 'arch', value: 'amd64' },
    ];
    const { aci, bytes } = makeImage(dir, 'bench/images', labels);
    console.log(`import + render of a ${(bytes / 1e6).toFixed(0)} MB ACI, median of ${RUNS}:`);
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
        reference: `[${listRuns(againMs)}]`,
      });
    } finally {
      await events.close();
    }
    console.log(`two OCI images over one ${(bytes / 1e6).toFixed(0)} MB base layer, median of ${RUNS}:`);
    await sharedLayers(dir, aci);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  }
}
