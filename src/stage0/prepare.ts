/**
 * prepare (rkt's `rkt prepare` + stage0.Prepare): the input checked and the images resolved (a file
 * path imported first) before the pod exists; then every step is an effect the engine journals: the
 * pod's directory with its stage1, each app's image rendered into the tree store, the overlay
 * directories, the pod manifest; then PodPrepared. Any failure records PrepareAborted, so a failed
 * prepare is never a zombie (rkt issue #3029); a preparer that dies is found out by the reconciler.
 */
import { randomUUID } from 'node:crypto';
import { isPodlogError } from '../errors.js';
import type { PrivateUsers } from '../events/catalogue.js';
import { withPrepareLock } from '../images/locks.js';
import { checkPrepareConfig, type PrepareConfig } from './config.js';
import { debug } from './debug.js';
import { ignoredIsolators } from './isolators.js';
import { generatePodManifest, nameApps } from './pod-manifest.js';
import { checkPortsFree, portMappings } from './networks.js';
import { withPrivateUsers } from './private-users.js';
import type { Stage0 } from './session.js';
import { stage1Image } from './stage1.js';

export interface PrepareHooks {
  /** Called as soon as the pod exists (rkt's --uuid-file-save). */
  created?: (uuid: string) => void;
}

export const prepare = async (s: Stage0, input: PrepareConfig, hooks: PrepareHooks = {}): Promise<string> => {
  const cfg = checkPrepareConfig(input);
  const stage1 = stage1Image(cfg.stage1Image);
  // Shared with other prepares, exclusive with `image gc`: no tree disappears under a preparing pod.
  return withPrepareLock(s.dataDir, async () => {
    const resolved = [];
    const images = await s.images();
    for (const config of cfg.apps) {
      const record = await images.resolve(config.image);
      resolved.push({ config, imageId: record.id, manifest: await images.manifest(record.id) });
    }
    const apps = nameApps(resolved);
    const uuid = cfg.uuid ?? randomUUID();
    const manifest = generatePodManifest(apps, cfg);
    // Before the pod exists: a host port another pod publishes is refused (run checks again).
    await checkPortsFree(s, uuid, portMappings(manifest));
    try {
      const requestPrepare = async (privateUsers?: PrivateUsers): Promise<boolean> => {
        // Files shifted by chown are a copy's: such a pod has no overlay (rkt refuses the two together).
        const overlay = cfg.useOverlay && privateUsers?.ownership !== 'chown';
        await s.engine.request(uuid, 'PrepareRequested', {
          uuid,
          apps: apps.map((a) => ({ name: a.name, image: a.imageId, imageName: a.manifest.name, ...(a.config.exec !== undefined ? { exec: [a.config.exec, ...a.config.args] } : {}) })),
          mutable: cfg.mutable,
          overlay,
          stage1,
          ...(privateUsers !== undefined ? { privateUsers } : {}),
        });
        return overlay;
      };
      const overlay = cfg.privateUsers ? await withPrivateUsers(s.dataDir, s.store, requestPrepare) : await requestPrepare();
      hooks.created?.(uuid);
      debug(`pod ${uuid}: preparing`);
      for (const app of apps) await s.engine.request(uuid, 'ImageRenderRequested', { app: app.name, image: app.imageId });
      if (overlay) await s.engine.request(uuid, 'OverlayPrepareRequested', {});
      else for (const app of apps) await s.engine.request(uuid, 'AppRootCopyRequested', { app: app.name });
      await s.engine.request(uuid, 'PodManifestWriteRequested', {}, { manifest });
      const ignored = ignoredIsolators(manifest.apps);
      for (const i of ignored) process.stderr.write(`podlog: app ${i.app}: isolator ${i.name} is not supported by podlog and is ignored\n`);
      await s.engine.record(uuid, [{ type: 'PodPrepared', data: ignored.length > 0 ? { ignoredIsolators: ignored } : {} }]);
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
    if ((await s.engine.load(uuid)).state === 'preparing') await s.engine.record(uuid, [{ type: 'PrepareAborted', data: { reason } }]);
  } catch (e) {
    // The reconciler aborts it later (the preparer is gone then); the original error is what matters.
    debug(`pod ${uuid}: could not record PrepareAborted: ${(e as Error).message}`);
  }
};
