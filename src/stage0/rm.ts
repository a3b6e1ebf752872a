/** rm (rkt's `rkt rm`): an exited, aborted or prepared pod marked as garbage and deleted at once. */
import { RKT_STATE_NAMES } from '../../machines/pod.js';
import { PodlogError } from '../errors.js';
import { observeExit } from './observe.js';
import type { Stage0 } from './session.js';

const REFUSED: Partial<Record<string, string>> = {
  running: 'currently running',
  embryo: 'currently being prepared',
  preparing: 'currently being prepared',
  deleting: 'currently being deleted',
  deleted: 'already removed',
};

export const removePod = async (s: Stage0, uuid: string): Promise<void> => {
  const view = await observeExit(s.engine, s.dataDir, uuid);
  const refused = REFUSED[view.state];
  if (refused !== undefined) throw new PodlogError('EWRONG_STATE', `pod ${uuid} is ${refused} (${RKT_STATE_NAMES[view.state]})`);
  if (view.state !== 'exitedGarbage' && view.state !== 'garbage') await s.engine.record(uuid, 'PodMarkedGarbage', { reason: 'rm' });
  await s.engine.request(uuid, 'GcRequested', {});
};
