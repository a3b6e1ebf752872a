/**
 * stopPod (rkt's StopPod): asks stage1 to stop a running pod (SIGTERM, then SIGKILL after its grace
 * period; --force: SIGKILL at once). It does not wait: the exit is observed and recorded by whoever
 * waits for the pod or looks at it next, as in rkt.
 */
import type { PodView } from '../engine/engine.js';
import { isPodlogError } from '../errors.js';
import { observeExit } from './observe.js';
import type { Stage0 } from './session.js';

/** `stopping`: the stop was asked for (the exit is recorded when it is seen); `already stopped`: its stage1 had ended. */
export type StopResult = 'stopping' | 'already stopped';

const afterRun = (view: PodView): boolean => view.snapshot.hasTag('afterRun');

/**
 * Asks stage1 to stop a running pod, without waiting for it to exit ({@link podStatus} with a wait does).
 *
 * @param uuid - The pod's full UUID.
 * @param force - SIGKILL at once, instead of SIGTERM and SIGKILL after the grace period.
 * @throws `PodlogError` ENOPOD for a pod the log does not have, EWRONG_STATE for one that never ran
 * (prepared, aborted), ECONFLICT when other processes kept changing it.
 */
export const stopPod = async (s: Stage0, uuid: string, force: boolean): Promise<StopResult> => {
  // A pod whose stage1 already ended is stopped, whatever was recorded last.
  if (afterRun(await observeExit(s.engine, s.dataDir, uuid))) return 'already stopped';
  try {
    await s.engine.request(uuid, 'StopRequested', { force });
  } catch (e) {
    // It ended (and somebody recorded that) between the look above and the stop's intent.
    if (isPodlogError(e) && e.code === 'EWRONG_STATE' && afterRun(await s.engine.load(uuid))) return 'already stopped';
    throw e;
  }
  return 'stopping';
};
