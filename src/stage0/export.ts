/**
 * export (rkt's `rkt export`): an exited pod's app, its image with what the app wrote, as an ACI
 * with the app's image manifest, which `fetch` imports and `run` runs. stage1 reads the app's root
 * through a read-only overlay of its own (docs/stage1.md: export); the pod is left as it was.
 */
import { lstatSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { PodlogError } from '../errors.js';
import { RKT_STATE_NAMES } from '../../machines/pod.js';
import { chooseApp } from './enter.js';
import { podDir, podPaths } from './pod-dir.js';
import type { Stage0 } from './session.js';
import { CrossingEntrypoint } from './stage1.js';
import { podStatus } from './status.js';

export interface ExportOptions {
  app?: string;
  overwrite: boolean;
}

export const exportPod = async (s: Stage0, uuid: string, file: string, o: ExportOptions): Promise<void> => {
  // The exit of a pod whose stage1 has ended is observed first, as `status` does.
  const view = await podStatus(s, uuid);
  if (!view.snapshot.hasTag('ranAndExited')) {
    throw new PodlogError('EWRONG_STATE', `cannot export pod ${uuid}: it is ${RKT_STATE_NAMES[view.state]}; only an exited pod can be exported`);
  }
  const app = chooseApp(view.context.apps.map((a) => a.name), o.app);
  const out = resolve(file);
  const existing = lstatSync(out, { throwIfNoEntry: false });
  if (existing !== undefined && !o.overwrite) throw new PodlogError('EEXIST', `${out} already exists (--overwrite replaces it)`);
  if (existing?.isDirectory() === true) throw new PodlogError('EEXIST', `${out} is a directory`);
  const dir = podDir(s.dataDir, uuid);
  const work = mkdtempSync(join(tmpdir(), 'podlog-export-'));
  // Written beside the file and renamed over it once whole: a failed export leaves the old file as it was.
  const staged = join(dirname(out), `.${basename(out)}.export-${process.pid}`);
  try {
    // The root is every layer merged: the image's dependencies and whitelist are in it already.
    const { dependencies: _d, pathWhitelist: _w, ...manifest } = JSON.parse(readFileSync(join(podPaths(dir).appInfo(app), 'manifest'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(work, 'manifest'), JSON.stringify(manifest));
    rmSync(staged, { force: true });
    const args = ['--tree-store', (await s.images()).layout.trees, '--app', app, '--manifest', join(work, 'manifest'), '--out', staged];
    const { code, output } = await new CrossingEntrypoint(dir, 'export', args).run();
    if (code !== 0) throw new PodlogError('ESTAGE1', `export of app ${app} of pod ${uuid} failed (stage1 exit ${code}): ${output.trim()}`);
    renameSync(staged, out);
  } finally {
    rmSync(staged, { force: true });
    rmSync(work, { recursive: true, force: true });
  }
};
