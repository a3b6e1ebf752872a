/**
 * prepare (rkt's `rkt prepare` + stage0.Prepare): images resolved (a file path imported first),
 * the pod created and locked while it is prepared, each app's image rendered into the tree store,
 * the overlay, stage1 and the pod manifest written, then PodPrepared. Any failure records
 * PrepareAborted, so a failed prepare is never a zombie (rkt issue #3029).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { crashPoint } from '../engine/faults.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { withPrepareLock } from '../images/locks.js';
import { closeFd, lockDir } from '../native.js';
import { checkPrepareSupported, type PrepareConfig } from './config.js';
import { debug } from './debug.js';
import { createPodDir, podPaths } from './pod-dir.js';
import { generatePodManifest, nameApps } from './pod-manifest.js';
import type { Stage0 } from './session.js';
import { installStage1, stage1Image } from './stage1.js';

export interface PrepareHooks {
  /** Called as soon as the pod exists (rkt's --uuid-file-save). */
  created?: (uuid: string) => void;
}

export const prepare = async (s: Stage0, cfg: PrepareConfig, hooks: PrepareHooks = {}): Promise<string> => {
  checkPrepareSupported(cfg);
  if (cfg.apps.length === 0) throw new PodlogError('EUSAGE', 'pod must contain at least one application');
  const stage1 = stage1Image(cfg.stage1Image);
  // Shared with other prepares, exclusive with `image gc`: no tree disappears under a preparing pod.
  return withPrepareLock(s.dataDir, async () => {
    const resolved = [];
    for (const config of cfg.apps) {
      const record = await s.images.resolve(config.image);
      resolved.push({ config, imageId: record.id, manifest: await s.images.manifest(record.id) });
    }
    const apps = nameApps(resolved);
    const uuid = cfg.uuid ?? randomUUID();
    await s.engine.record(uuid, 'PrepareRequested', {
      uuid,
      apps: apps.map((a) => ({ name: a.name, image: a.imageId, imageName: a.manifest.name, ...(a.config.exec !== undefined ? { exec: [a.config.exec, ...a.config.args] } : {}) })),
      mutable: cfg.mutable,
      overlay: cfg.useOverlay,
    });
    hooks.created?.(uuid);
    crashPoint('after-intent:PrepareRequested');
    debug(`pod ${uuid}: preparing`);
    try {
      const dir = createPodDir(s.dataDir, uuid);
      // rkt: a pod being prepared is locked; an unlocked one in preparing was abandoned.
      const fd = await lockDir(dir);
      try {
        for (const app of apps) await s.engine.request(uuid, 'ImageRenderRequested', { app: app.name, image: app.imageId });
        await s.engine.request(uuid, 'OverlayPrepareRequested', {});
        installStage1(dir, stage1);
        writeFileSync(podPaths(dir).manifest, JSON.stringify(generatePodManifest(apps, cfg)), { mode: 0o640 });
        crashPoint('before-outcome:PodPrepared');
        await s.engine.record(uuid, 'PodPrepared', {});
      } finally {
        closeFd(fd);
      }
      debug(`pod ${uuid}: prepared`);
      return uuid;
    } catch (e) {
      await abortPrepare(s, uuid, e);
      throw e;
    }
  });
};

const abortPrepare = async (s: Stage0, uuid: string, cause: unknown): Promise<void> => {
  const reason = isPodlogError(cause) ? `${cause.code}: ${cause.message}` : String(cause);
  try {
    if ((await s.engine.load(uuid)).state === 'preparing') await s.engine.record(uuid, 'PrepareAborted', { reason });
  } catch (e) {
    // The reconciler aborts it later (the preparer is gone then); the original error is what matters.
    debug(`pod ${uuid}: could not record PrepareAborted: ${(e as Error).message}`);
  }
};
