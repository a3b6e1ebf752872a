/**
 * Folding: a pod's state is its stream's events run through the machine's pure transition.
 * Nothing runs during a fold; the effects a transition names come back as data.
 *
 * xstate's exported `transition()` and `initialTransition()` build a throw-away actor per call, which
 * made folds several times slower than the machine itself; one inert actor scope per process, whose
 * action executor only collects, gives the same pure result (`machine.transition` and
 * `machine.getInitialSnapshot` are the StateMachine API those functions wrap).
 */
import { createActor, type SnapshotFrom } from 'xstate';
import { podMachine, type PodContext, type PodMachineEvent, type PodStateName, RKT_STATE_NAMES } from '../../machines/pod.js';
import { checkPodEvent, type EffectName, type PodEventData, type PodEventType, POD_EVENTS } from '../events/catalogue.js';
import { PodlogError } from '../errors.js';
import type { RecordedEvent } from '../store/port.js';

export type PodSnapshot = SnapshotFrom<typeof podMachine>;

interface CollectedAction {
  type: string;
}

const collected: CollectedAction[] = [];
const self = createActor(podMachine, { input: { uuid: '' } });
const scope = {
  self,
  defer: () => {},
  id: '',
  logger: () => {},
  sessionId: '',
  stopChild: () => {},
  system: self.system,
  emit: () => {},
  actionExecutor: (action: CollectedAction) => {
    collected.push({ type: action.type });
  },
};

const EFFECTS: ReadonlySet<string> = new Set(Object.values(POD_EVENTS).flatMap((e) => (e.effect === undefined ? [] : [e.effect])));

export const initialPod = (uuid: string): PodSnapshot => {
  const snapshot = podMachine.getInitialSnapshot(scope as never, { uuid });
  collected.length = 0;
  return snapshot;
};

/** Rebuilds a snapshot from a stored state value and context (a projection row or snapshot). */
export const restorePod = (state: PodStateName, context: PodContext): PodSnapshot =>
  podMachine.resolveState({ value: state, context });

export const stateOf = (snapshot: PodSnapshot): PodStateName => snapshot.value as PodStateName;
export const rktStateOf = (snapshot: PodSnapshot): string => RKT_STATE_NAMES[stateOf(snapshot)];

/**
 * One step of the machine. `accepted` is false when the current state does not take the event
 * (xstate then returns the very same snapshot).
 */
export const step = (
  snapshot: PodSnapshot,
  event: PodMachineEvent,
): { next: PodSnapshot; accepted: boolean; effects: EffectName[] } => {
  collected.length = 0;
  const next = podMachine.transition(snapshot, event, scope as never);
  const effects = collected
    .filter((a) => EFFECTS.has(a.type))
    .map((a) => a.type as EffectName);
  collected.length = 0;
  return { next, accepted: next !== snapshot, effects };
};

export const toMachineEvent = (e: RecordedEvent): PodMachineEvent => {
  const type = checkPodEvent(e.type, e.schema, e.data, `${e.stream}@${e.version}`);
  return { type, data: e.data as PodEventData[typeof type], time: e.meta.time, version: e.version } as PodMachineEvent;
};

export const machineEvent = <T extends PodEventType>(type: T, data: PodEventData[T], time: string, version: number): PodMachineEvent =>
  ({ type, data, time, version }) as PodMachineEvent;

/** Applies recorded events in order; an event the machine refuses means the history is not valid. */
export const foldPod = (start: PodSnapshot, events: readonly RecordedEvent[]): PodSnapshot => {
  let snapshot = start;
  for (const e of events) {
    const { next, accepted } = step(snapshot, toMachineEvent(e));
    if (!accepted) {
      throw new PodlogError(
        'EINVALID_HISTORY',
        `${e.stream}@${e.version}: ${e.type} is not valid in state ${rktStateOf(snapshot)}; the log was not written by this machine`,
      );
    }
    snapshot = next;
  }
  return snapshot;
};
