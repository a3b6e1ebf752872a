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
  /** What was done, in order (empty: nothing was left open). */
  actions: Array<'finished' | 'compensated' | 'aborted-prepare'>;
}

type Step = { after: PodView; action: ReconcileResult['actions'][number] | 'none' };

const reconcileOnce = async (engine: PodEngine, effects: EffectInterpreter, uuid: string, view: PodView): Promise<Step> => {
  const { pending } = view.context;
  const history = pending !== undefined || view.state === 'preparing' ? await engine.history(uuid) : [];

  if (pending !== undefined) {
    const intent = history.find((e) => e.version === pending.version);
    if (intent === undefined || recorderAlive(intent.meta)) return { after: view, action: 'none' };
    try {
      const outcomes = await effects.reconcile({ effect: pending.effect, uuid, intent, pod: view.context });
      const { view: after } = await engine.record(uuid, outcomes, { intent });
      return { after, action: outcomes.some((o) => o.type === 'EffectFailed') ? 'compensated' : 'finished' };
    } catch (e) {
      const { view: after } = await engine.record(uuid, [{ type: 'EffectFailed', data: failureData(pending.effect, e) }], { intent });
      return { after, action: 'compensated' };
    }
  }

  if (view.state === 'preparing') {
    const owner = history[0]!;
    if (recorderAlive(owner.meta)) return { after: view, action: 'none' };
    const reason = `the preparing process (pid ${owner.meta.pid} on ${owner.meta.host}) is gone`;
    const { view: after } = await engine.record(uuid, [{ type: 'PrepareAborted', data: { reason } }], { intent: owner });
    return { after, action: 'aborted-prepare' };
  }
  return { after: view, action: 'none' };
};

/** Reconciles until nothing is left to do (a finished render can leave an orphaned preparation). */
export const reconcilePod = async (engine: PodEngine, effects: EffectInterpreter, uuid: string): Promise<ReconcileResult> => {
  const before = await engine.load(uuid);
  const actions: ReconcileResult['actions'] = [];
  let view = before;
  for (;;) {
    const { after, action } = await reconcileOnce(engine, effects, uuid, view);
    if (action === 'none') return { uuid, before: before.state, after: after.state, actions };
    actions.push(action);
    view = after;
  }
};
