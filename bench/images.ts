/**
 * The image store against GNU tar: importing and rendering a ~100 MB ACI (fetch: copy, id, checks,
 * render, tree hash, events) against `tar -xf` of the same uncompressed tar, medians of alternating
 * runs each started with no dirty pages; on disk, then with everything on tmpfs (/dev/shm), where the
 * disk's writeback (and other processes' use of it) is out of the picture and what is left is CPU.
 * Target: ≤ 1.3× tar. Then the same image imported and resolved + rendered again, as every
 * `podlog run image.aci` does: no re-render, milliseconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandContext } from '../src/events/metadata.js';
import { openImageStore } from '../src/images/index.js';
import { openStore } from '../src/store/open.js';
import { alternateWithTar, listRuns, makeImage, timed } from './peers.js';
import { median, report } from './report.js';

const RUNS = 7;
const AGAIN = 20;

/** Alternating timed runs of the store and of tar in `dir`; prints and returns the ratio of medians. */
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
  console.log(`  ${where}: image store ${store.toFixed(1)} ms [${listRuns(importMs)}], GNU tar -xf ${tar.toFixed(1)} ms [${listRuns(tarMs)}]`);
  report(`import + render time / tar -xf time, ${where}`, store / tar, { target: '≤ 1.30', ok: store / tar <= 1.3, reference: `tar ${tar.toFixed(0)} ms` });
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  }
}
