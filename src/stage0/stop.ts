/**
 * stopPod (rkt's StopPod): asks stage1 to stop a running pod (SIGTERM, then SIGKILL after its grace
 * period; --force: SIGKILL at once). It does not wait: the exit is observed and recorded by whoever
 * waits for the pod or looks at it next, as in rkt.
 */
import { observeExit } from './observe.js';
import type { Stage0 } from './session.js';

export type StopResult = 'stopping' | 'already stopped';

export const stopPod = async (s: Stage0, uuid: string, force: boolean): Promise<StopResult> => {
  // A pod whose stage1 already ended is stopped, whatever was recorded last.
  const view = await observeExit(s.engine, s.dataDir, uuid);
  const afterRun = ['exited', 'exitedGarbage', 'garbage', 'deleting', 'deleted'].includes(view.state);
  if (afterRun) return 'already stopped';
  await s.engine.request(uuid, 'StopRequested', { force });
  return 'stopping';
};
