/**
 * Folding: a pod's state is its stream's events run through the machine's pure transition.
 * Nothing runs during a fold; the effects a transition names come back as data.
 *
 * The fold steps through the machine's transition table (./transitions.ts), compiled from the
 * machine's definition: xstate snapshots, the same states, contexts, tags and effects as xstate's
 * own `machine.transition`, several times faster. That transition stays here as the reference the
 * table is tested and measured against, called with one inert actor scope whose action executor only
 * collects (xstate's exported `transition()` builds a throw-away actor per call).
 */
import { createActor, type SnapshotFrom } from 'xstate';
import { podMachine, type PodContext, type PodMachineEvent, type PodStateName, RKT_STATE_NAMES } from '../../machines/pod.js';
import { checkPodEvent, type PodEventData, type PodEventType } from '../events/catalogue.js';
import { PodlogError } from '../errors.js';
import type { RecordedEvent } from '../store/port.js';
import { initialSnapshot, isEffect, snapshotIn, tableStep, type TableStep } from './transitions.js';

export type PodSnapshot = SnapshotFrom<typeof podMachine>;

export const initialPod = (uuid: string): PodSnapshot => initialSnapshot(uuid);

/** Rebuilds a snapshot from a stored state value and context (a projection row or snapshot). */
export const restorePod = (state: PodStateName, context: PodContext): PodSnapshot => {
  const snapshot = snapshotIn(state, context);
  if (snapshot === undefined) throw new PodlogError('ESTORE_CORRUPT', `a stored pod row is in state ${JSON.stringify(state)}, which the pod machine does not have`);
  return snapshot;
};

export const stateOf = (snapshot: PodSnapshot): PodStateName => snapshot.value as PodStateName;
export const rktStateOf = (snapshot: PodSnapshot): string => RKT_STATE_NAMES[stateOf(snapshot)];

/**
 * One step of the machine. `accepted` is false when the current state does not take the event
 * (the very same snapshot comes back).
 */
export const step: (snapshot: PodSnapshot, event: PodMachineEvent) => TableStep = tableStep;

export const toMachineEvent = (e: RecordedEvent): PodMachineEvent => {
  const type = checkPodEvent(e.type, e.schema, e.data, `${e.stream}@${e.version}`);
  return { type, data: e.data as PodEventData[typeof type], time: e.meta.time, version: e.version } as PodMachineEvent;
};

export const machineEvent = <T extends PodEventType>(type: T, data: PodEventData[T], time: string, version: number): PodMachineEvent =>
  ({ type, data, time, version }) as PodMachineEvent;

const folder =
  (stepper: typeof step) =>
  (start: PodSnapshot, events: readonly RecordedEvent[]): PodSnapshot => {
    let snapshot = start;
    for (const e of events) {
      // A tombstone (log compact) stands for the whole history it replaced: a snapshot folded from part of
      // that history (a pod list row saved before the pod was deleted) is void, and the fold starts over.
      if (e.type === 'PodCompacted') snapshot = initialPod(snapshot.context.uuid);
      const { next, accepted } = stepper(snapshot, toMachineEvent(e));
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

/** Applies recorded events in order; an event the machine refuses means the history is not valid. */
export const foldPod = folder(step);

// The reference: xstate's own initial snapshot, step and fold, which the table must agree with
// (test/engine/fold-table.test.ts) and is measured against (bench/core.ts).

const collected: string[] = [];
let inertScope: object | undefined;
// Made on first use: a process that only folds never builds an actor.
const scope = (): object => {
  if (inertScope !== undefined) return inertScope;
  const self = createActor(podMachine, { input: { uuid: '' } });
  inertScope = {
    self,
    defer: () => {},
    id: '',
    logger: () => {},
    sessionId: '',
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (action: { type: string }) => {
      collected.push(action.type);
    },
  };
  return inertScope;
};

export const machineInitialPod = (uuid: string): PodSnapshot => {
  const snapshot = podMachine.getInitialSnapshot(scope() as never, { uuid });
  collected.length = 0;
  return snapshot;
};

export const machineStep = (snapshot: PodSnapshot, event: PodMachineEvent): TableStep => {
  collected.length = 0;
  const next = podMachine.transition(snapshot, event, scope() as never);
  const effects = collected.filter(isEffect);
  collected.length = 0;
  return { next, accepted: next !== snapshot, effects };
};

export const machineFoldPod = folder(machineStep);
