/**
 * Benchmarks of the native addon: rendering a ~100 MB ACI (2,000 files of 50 KB plus the busybox tree)
 * against GNU `tar -xf` of the same uncompressed tar (medians; both read the image from the page cache);
 * the same for an import (importImage: one read for the image id, the render, the tree hash and the
 * copy the store keeps); and tree hash throughput. Target: render ≤ 1.3× tar.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractImage, importImage, treeHash } from '../src/native.js';
import { alternateWithTar, listRuns, makeImage, msSince } from './peers.js';
import { median, report } from './report.js';

const RUNS = 5;

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-native-'));
  try {
    const { aci, files, bytes } = makeImage(dir, 'bench/data');
    const { subjectMs: addonMs, tarMs } = await alternateWithTar({
      dir,
      aci,
      runs: RUNS,
      name: 'tree',
      subject: async (tree) => {
        mkdirSync(tree);
        await extractImage(aci, join(tree, 'rootfs'));
      },
    });
    const addon = median(addonMs);
    const tar = median(tarMs);
    const mb = bytes / 1e6;
    console.log(`render of a ${mb.toFixed(0)} MB ACI (${files} files + busybox), median of ${RUNS}:`);
    console.log(`  addon extractImage ${addon.toFixed(1)} ms [${listRuns(addonMs)}], GNU tar -xf ${tar.toFixed(1)} ms [${listRuns(tarMs)}]`);
    report('render time / tar -xf time', addon / tar, { target: '≤ 1.30', ok: addon / tar <= 1.3, reference: `tar ${tar.toFixed(0)} ms` });

    const imported = await alternateWithTar({
      dir,
      aci,
      runs: RUNS,
      name: 'imported',
      subject: async (tree) => {
        mkdirSync(tree);
        await importImage(aci, tree, `${tree}.copy`);
        rmSync(`${tree}.copy`);
      },
    });
    const importMedian = median(imported.subjectMs);
    const importTar = median(imported.tarMs);
    console.log(`  addon importImage ${importMedian.toFixed(1)} ms [${listRuns(imported.subjectMs)}], GNU tar -xf ${importTar.toFixed(1)} ms [${listRuns(imported.tarMs)}]`);
    report('import (id, render, tree hash, copy) time / tar -xf time', importMedian / importTar, {
      target: 'informational',
      ok: true,
      reference: `tar ${importTar.toFixed(0)} ms`,
    });

    const hashMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const start = process.hrtime.bigint();
      await treeHash(join(dir, 'tree-0'));
      hashMs.push(msSince(start));
    }
    const hashRate = mb / (median(hashMs) / 1000);
    report('tree hash throughput, MB/s', hashRate, { target: 'informational', ok: true, reference: `${median(hashMs).toFixed(0)} ms for ${mb.toFixed(0)} MB` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
