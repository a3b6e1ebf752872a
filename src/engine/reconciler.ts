/**
 * The reconciler finishes what a dead process left open. An intent with no outcome, whose recording
 * process is gone, is handed to the effect interpreter's `reconcile`, which looks at the world and
 * returns the outcomes that make the log true (finish) or the failure that closes it (compensate).
 * A pod left in `preparing` by a dead preparer is an aborted prepare, as in rkt.
 */
import { recorderAlive } from './liveness.js';
import { failureData, type PodEngine, type PodView } from './engine.js';
import type { EffectInterpreter } from './effects.js';

export interface ReconcileResult {
  uuid: string;
  before: PodView['state'];
  after: PodView['state'];
  /** What was done, for logs and `--debug`. */
  action: 'none' | 'finished' | 'compensated' | 'aborted-prepare';
}

const reconcileOnce = async (engine: PodEngine, effects: EffectInterpreter, uuid: string): Promise<ReconcileResult> => {
  const view = await engine.load(uuid);
  const result = (after: PodView, action: ReconcileResult['action']): ReconcileResult => ({ uuid, before: view.state, after: after.state, action });
  const { pending } = view.context;
  const history = pending !== undefined || view.state === 'preparing' ? await engine.history(uuid) : [];

  if (pending !== undefined) {
    const intent = history.find((e) => e.version === pending.version);
    if (intent === undefined || recorderAlive(intent.meta.host, intent.meta.pid, intent.meta.time)) return result(view, 'none');
    try {
      const outcomes = await effects.reconcile({ effect: pending.effect, uuid, intent, pod: view.context });
      const after = await engine.recordOutcomes(uuid, outcomes, intent.meta.id);
      return result(after, outcomes.some((o) => o.type === 'EffectFailed') ? 'compensated' : 'finished');
    } catch (e) {
      const after = await engine.recordOutcomes(uuid, [{ type: 'EffectFailed', data: failureData(pending.effect, e) }], intent.meta.id);
      return result(after, 'compensated');
    }
  }

  if (view.state === 'preparing') {
    const owner = history[0]!;
    if (recorderAlive(owner.meta.host, owner.meta.pid, owner.meta.time)) return result(view, 'none');
    const { view: after } = await engine.record(uuid, 'PrepareAborted', {
      reason: `the preparing process (pid ${owner.meta.pid} on ${owner.meta.host}) is gone`,
    }, owner.meta.id);
    return result(after, 'aborted-prepare');
  }
  return result(view, 'none');
};

/** Reconciles until nothing is left to do (a finished render can leave an orphaned preparation). */
export const reconcilePod = async (engine: PodEngine, effects: EffectInterpreter, uuid: string): Promise<ReconcileResult> => {
  const first = await reconcileOnce(engine, effects, uuid);
  if (first.action === 'none') return first;
  const rest = await reconcilePod(engine, effects, uuid);
  return { ...first, after: rest.after, action: rest.action === 'none' ? first.action : rest.action };
};
