/**
 * prepare (rkt's `rkt prepare` + stage0.Prepare): the input checked and the images resolved (a file
 * path imported first) before the pod exists; then every step is an effect the engine journals: the
 * pod's directory with its stage1, each app's image rendered into the tree store, the overlay
 * directories, the pod manifest; then PodPrepared. Any failure records PrepareAborted, so a failed
 * prepare is never a zombie (rkt issue #3029); a preparer that dies is found out by the reconciler.
 */
import { randomUUID } from 'node:crypto';
import type { Step } from '../engine/engine.js';
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

/** What a caller of {@link prepare} is told while it runs. */
export interface PrepareHooks {
  /** Called as soon as the pod exists (rkt's --uuid-file-save). */
  created?: (uuid: string) => void;
}

/**
 * Prepares a pod (see the top of this module): its images resolved (a path imported, a name found in
 * the store or fetched as the policy allows), its directory, trees and manifest made.
 *
 * @returns The new pod's UUID; it is `prepared`, to be run with {@link runPrepared}.
 * @throws `PodlogError`: {@link checkPrepareConfig}'s codes for the config; ENOENT (no such image),
 * EBADNAME or EBADMANIFEST (an app's name or image); EPORT_BUSY (a host port another pod publishes);
 * an effect's code when a step fails, after PrepareAborted is recorded.
 */
export const prepare = async (s: Stage0, input: PrepareConfig, hooks: PrepareHooks = {}): Promise<string> => {
  const cfg = checkPrepareConfig(input);
  const stage1 = stage1Image(cfg.stage1Image);
  // Shared with other prepares, exclusive with `image gc`: no tree disappears under a preparing pod.
  return withPrepareLock(s.dataDir, async () => {
    const resolved = [];
    const images = await s.images();
    for (const config of cfg.apps) {
      const record = await images.resolve(config.image, { policy: cfg.fetchPolicy });
      resolved.push({ config, imageId: record.id, manifest: await images.manifest(record.id) });
    }
    const apps = nameApps(resolved);
    const uuid = cfg.uuid ?? randomUUID();
    const manifest = generatePodManifest(apps, cfg);
    // Before the pod exists: a host port another pod publishes is refused (run checks again).
    await checkPortsFree(s, uuid, portMappings(manifest));
    try {
      const prepareStep = (privateUsers?: PrivateUsers): Step & { type: 'PrepareRequested' } => ({
        type: 'PrepareRequested',
        data: {
          uuid,
          apps: apps.map((a) => ({ name: a.name, image: a.imageId, imageName: a.manifest.name, ...(a.config.exec !== undefined ? { exec: [a.config.exec, ...a.config.args] } : {}) })),
          mutable: cfg.mutable,
          // Files shifted by chown are a copy's: such a pod has no overlay (rkt refuses the two together).
          overlay: cfg.useOverlay && privateUsers?.ownership !== 'chown',
          stage1,
          ...(privateUsers !== undefined ? { privateUsers } : {}),
          host: s.hostId,
          ...(Object.keys(cfg.userLabels).length > 0 ? { userLabels: cfg.userLabels } : {}),
          ...(Object.keys(cfg.userAnnotations).length > 0 ? { userAnnotations: cfg.userAnnotations } : {}),
        },
        // The pod exists from here: its UUID can be handed out (--uuid-file-save).
        recorded: () => hooks.created?.(uuid),
      });
      const ignored = ignoredIsolators(manifest.apps);
      const preparing = (overlay: boolean): Step[] => [
        ...apps.map((app): Step => ({ type: 'ImageRenderRequested', data: { app: app.name, image: app.imageId } })),
        ...(overlay ? [{ type: 'OverlayPrepareRequested', data: {} } as const] : apps.map((app): Step => ({ type: 'AppRootCopyRequested', data: { app: app.name } }))),
        { type: 'PodManifestWriteRequested', data: {}, input: { manifest } },
        { type: 'PodPrepared', data: ignored.length > 0 ? { ignoredIsolators: ignored } : {} },
      ];
      // Each outcome is committed with the next step's event (see PodEngine.requestAll). A uid range
      // is taken under a lock held until the PrepareRequested that records it is committed.
      if (cfg.privateUsers) {
        const first = await withPrivateUsers(s, async (users) => {
          const step = prepareStep(users);
          await s.engine.requestAll(uuid, [step]);
          return step;
        });
        await s.engine.requestAll(uuid, preparing(first.data.overlay));
      } else {
        const first = prepareStep();
        await s.engine.requestAll(uuid, [first, ...preparing(first.data.overlay)]);
      }
      for (const i of ignored) process.stderr.write(`podlog: app ${i.app}: isolator ${i.name} is not supported by podlog and is ignored\n`);
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
