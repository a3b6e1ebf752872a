/** status (rkt's `rkt status [--wait]`): a pod's recorded state, made true first by observing its lock. */
import type { PodView } from '../engine/engine.js';
import { PodlogError } from '../errors.js';
import { waitExit } from '../native.js';
import { ownsPod } from '../engine/hosts.js';
import { reconcilePod } from '../engine/reconciler.js';
import { observeAppExits, observeExit } from './observe.js';
import type { Stage0 } from './session.js';

/** rkt's IsFinished: nothing more will happen to the pod without a command. */
export const isFinished = (view: PodView): boolean => view.snapshot.hasTag('finished');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The pod's state; with `waitMs`, once it has finished or the time is up (rkt: "timeout while waiting").
 * Another host's pod is as the log says: that host observes it.
 *
 * On this host's pod it first makes the log true: an exit not yet recorded is observed, an intent
 * whose process died is finished or undone (so a status may append events).
 *
 * @param uuid - The pod's full UUID.
 * @param waitMs - How long to wait for the pod to finish (exited, aborted, garbage…); undefined: no wait.
 * @returns The pod as the log says it is: its state, version and context.
 * @throws `PodlogError` ENOPOD for a pod the log does not have, ETIMEDOUT when `waitMs` passed first.
 */
export const podStatus = async (s: Stage0, uuid: string, waitMs?: number): Promise<PodView> => {
  const deadline = Date.now() + (waitMs ?? 0);
  const own = ownsPod(s.hostId, (await s.engine.load(uuid)).context);
  for (;;) {
    if (own) {
      await reconcilePod(s.engine, s.effects, uuid);
      await observeExit(s.engine, s.dataDir, uuid);
    }
    const view = own ? await observeAppExits(s.engine, s.dataDir, uuid) : await s.engine.load(uuid);
    if (waitMs === undefined || isFinished(view)) return view;
    const left = deadline - Date.now();
    if (left <= 0) throw new PodlogError('ETIMEDOUT', `timeout while waiting for pod ${uuid} to finish`);
    // Woken by the pod's stage1 ending (a pidfd); a pod not yet started is polled as rkt does (100 ms).
    const pid = view.context.pid;
    if (own && view.state === 'running' && pid) await waitExit({ pid }, Math.min(left, 1000)).catch(() => sleep(100));
    else await sleep(Math.min(left, 100));
  }
};
