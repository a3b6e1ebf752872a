/**
 * rm (rkt's `rkt rm`): an exited, aborted or prepared pod marked as garbage and deleted at once; a
 * pod whose delete failed before is deleted again.
 */
import { RKT_STATE_NAMES } from '../../machines/pod.js';
import type { PodView } from '../engine/engine.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { observeExit } from './observe.js';
import { releasePod } from './release.js';
import type { Stage0 } from './session.js';

const REFUSED: Partial<Record<string, string>> = {
  running: 'currently running',
  embryo: 'currently being prepared',
  preparing: 'currently being prepared',
  deleting: 'currently being deleted',
  deleted: 'already removed',
};

const refuse = (view: PodView): void => {
  // A failed delete is closed: the pod is deleting with nothing in progress, and rm tries again.
  if (view.state === 'deleting' && view.context.pending === undefined) return;
  const refused = REFUSED[view.state];
  if (refused !== undefined) throw new PodlogError('EWRONG_STATE', `pod ${view.uuid} is ${refused} (${RKT_STATE_NAMES[view.state]})`);
};

const marked = (view: PodView) => view.state === 'exitedGarbage' || view.state === 'garbage' || view.state === 'deleting';

/**
 * Removes a pod that is not running (rkt rm): marks it as garbage and deletes it now, without gc's grace period.
 *
 * @param uuid - The pod's full UUID.
 * @throws `PodlogError` ENOPOD for a pod the log does not have, EWRONG_STATE for one that is running,
 * being prepared, being deleted by another process, or gone; the delete effect's code when it fails
 * (the pod stays `deleting`, and a later rm or gc tries again).
 */
export const removePod = async (s: Stage0, uuid: string): Promise<void> => {
  const view = await observeExit(s.engine, s.dataDir, uuid);
  refuse(view);
  /** A gc that marked or deleted the pod first is no error of rm's: it goes on, or says what happened. */
  const raced = async (e: unknown): Promise<void> => {
    if (!isPodlogError(e) || e.code !== 'EWRONG_STATE') throw e;
    const now = await s.engine.load(uuid);
    refuse(now);
    if (!marked(now)) throw e;
  };
  if (!marked(view)) await s.engine.record(uuid, [{ type: 'PodMarkedGarbage', data: { reason: 'rm' } }]).catch(raced);
  await releasePod(s, uuid);
  await s.engine.request(uuid, 'GcRequested', {}).catch(async (e: unknown) => {
    await raced(e);
    throw e;
  });
};
