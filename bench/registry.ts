/**
 * Registry pulls: a 100 MB image of 5 gzip layers in a local docker-registry (test/helpers/registry.ts),
 * pulled by podlog into a fresh store (manifest, blobs verified as they are written, import and
 * render) against `skopeo copy` of the same image into an OCI layout (download and write only), in
 * alternating runs; target ≤ 1.2× (issue 13), and beside it podlog's import of skopeo's layout (the
 * checking and rendering that skopeo does not do). Then the same tag pulled again into the store that
 * has it: one manifest request, target ≤ 20 ms.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { commandContext } from '../src/events/metadata.js';
import { defaultFetchPolicy } from '../src/images/policy.js';
import { pull } from '../src/images/registry/pull.js';
import { Store } from '../src/images/store.js';
import { openStore } from '../src/store/open.js';
import { push, startRegistry } from '../test/helpers/registry.js';
import { makeOciLayout, tarDir } from '../test/images/helpers.js';
import { listRuns, timed } from './peers.js';
import { median, report } from './report.js';

const RUNS = 5;
const AGAIN = 20;
const LAYERS = 5;
const LAYER_MB = 20;

const execFileAsync = promisify(execFile);

/** An OCI layout of LAYERS gzip layers of LAYER_MB MB each of random data (it does not compress: 100 MB to move). */
const benchLayout = (dir: string): string => {
  const layers = Array.from({ length: LAYERS }, (_, i) => {
    const tree = join(dir, `layer-${i}`);
    mkdirSync(tree, { recursive: true });
    for (let f = 0; f < LAYER_MB; f++) writeFileSync(join(tree, `data-${i}-${f}`), randomBytes(1 << 20));
    const tar = tarDir(tree, join(dir, `layer-${i}.tar`));
    rmSync(tree, { recursive: true });
    return { tar, compression: 'gzip' as const };
  });
  const layout = join(dir, 'layout');
  makeOciLayout(layout, { layers, config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [] } } });
  return layout;
};

/** podlog's import of the layout skopeo wrote, into a fresh store: the checking and rendering a pull does beyond the download. */
const importOnce = async (data: string, layout: string): Promise<number> => {
  const events = await openStore(data);
  try {
    const images = new Store(data, events, commandContext(['bench']));
    return await timed(() => images.importFile(layout, { tag: 'v1', quiet: true }));
  } finally {
    await events.close();
    rmSync(data, { recursive: true, force: true });
  }
};

export const run = async (): Promise<void> => {
  const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'podlog-bench-registry-'));
  const registry = await startRegistry();
  try {
    await push(benchLayout(dir), registry, 'bench:v1');
    const ref = `docker://${registry.host}/bench:v1`;
    const policy = { ...defaultFetchPolicy(join(dir, 'config')), allowHttp: true };
    const pullMs: number[] = [];
    const skopeoMs: number[] = [];
    const importMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const data = join(dir, `data-${i}`);
      const events = await openStore(data);
      try {
        const images = new Store(data, events, commandContext(['bench']));
        pullMs.push(await timed(() => pull(images, ref, { policy, quiet: true })));
        if (i === RUNS - 1) {
          const again: number[] = [];
          for (let j = 0; j < AGAIN; j++) again.push(await timed(() => pull(images, ref, { policy, quiet: true })));
          console.log(`  pull of the same tag again: ${listRuns(again)} ms`);
          report('second pull of an unchanged tag, ms', median(again), { target: '≤ 20', ok: median(again) <= 20 });
        }
      } finally {
        await events.close();
      }
      rmSync(data, { recursive: true, force: true });
      const out = join(dir, `skopeo-${i}`);
      skopeoMs.push(await timed(() => execFileAsync('/usr/bin/skopeo', ['copy', '--insecure-policy', '--src-tls-verify=false', `docker://${registry.host}/bench:v1`, `oci:${out}:v1`])));
      importMs.push(await importOnce(join(dir, `import-${i}`), out));
      rmSync(out, { recursive: true, force: true });
    }
    const [p, s] = [median(pullMs), median(skopeoMs)];
    console.log(`  podlog pull ${p.toFixed(0)} ms [${listRuns(pullMs)}], skopeo copy to an OCI layout ${s.toFixed(0)} ms [${listRuns(skopeoMs)}]`);
    const i = median(importMs);
    console.log(`  what skopeo does not do: podlog's import (check and render) of skopeo's layout ${i.toFixed(0)} ms [${listRuns(importMs)}]; the pull takes ${(p / (s + i)).toFixed(2)} of copy + import`);
    report(`pull of a ${LAYERS * LAYER_MB} MB, ${LAYERS}-layer image / skopeo copy`, p / s, { target: '≤ 1.20', ok: p / s <= 1.2, reference: `skopeo ${s.toFixed(0)} ms` });
  } finally {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};
