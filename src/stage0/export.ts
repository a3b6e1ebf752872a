/**
 * export (rkt's `rkt export`): an exited pod's app, its image with what the app wrote, as an ACI
 * with the app's image manifest, which `fetch` imports and `run` runs. stage1 reads the app's root
 * through a read-only overlay of its own (docs/stage1.md: export); the pod is left as it was.
 */
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
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
  if (existsSync(out)) {
    if (!o.overwrite) throw new PodlogError('EEXIST', `${out} already exists (--overwrite replaces it)`);
    rmSync(out, { force: true });
  }
  const dir = podDir(s.dataDir, uuid);
  const args = ['--tree-store', s.images.layout.trees, '--app', app, '--manifest', `${podPaths(dir).appInfo(app)}/manifest`, '--out', out];
  const { code, output } = await new CrossingEntrypoint(dir, 'export', args).run();
  if (code !== 0) throw new PodlogError('ESTAGE1', `export of app ${app} of pod ${uuid} failed (stage1 exit ${code}): ${output.trim()}`);
};
