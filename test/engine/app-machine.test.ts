import test from 'ava';
import { getShortestPaths } from '@xstate/graph';
import { initialTransition, transition } from 'xstate';
import { APP_TRANSITIONS, appMachine, nextAppState, type AppMachineEvent } from '../../machines/app.js';

/** Whether a state takes an event (xstate's can() is false for a transition that changes nothing, as an intent's). */
const accepts = (snapshot: ReturnType<typeof appMachine.resolveState>, event: AppMachineEvent): boolean => appMachine.getTransitionData(snapshot, event).length > 0;

const EVENTS: AppMachineEvent[] = (['AppAddRequested', 'AppAdded', 'AppStartRequested', 'AppStarted', 'AppStopRequested', 'AppStopped', 'AppExited', 'AppRemoveRequested', 'AppRemoved'] as const).map((type) => ({ type }));

test('every app state is reachable and removed is final', (t) => {
  const paths = getShortestPaths(appMachine, { events: EVENTS });
  t.deepEqual([...new Set(paths.map((p) => p.state.value))].sort(), ['created', 'exited', 'new', 'removed', 'running']);
  t.is(paths.find((p) => p.state.value === 'removed')!.state.status, 'done');
});

test('the machine and the table the pod machine reads agree on every event in every state', (t) => {
  for (const state of Object.keys(APP_TRANSITIONS) as Array<keyof typeof APP_TRANSITIONS>) {
    const snapshot = appMachine.resolveState({ value: state, context: undefined as never });
    for (const event of EVENTS) {
      const next = nextAppState(state === 'new' ? undefined : state, event.type);
      const [after] = transition(appMachine, snapshot, event);
      t.is(accepts(snapshot, event) ? after.value : undefined, next, `${event.type} in ${state}`);
    }
  }
});

test('an app is added, runs, exits, restarts, and is removed while it runs (rkt stops it first)', (t) => {
  let [s] = initialTransition(appMachine);
  const step = (type: AppMachineEvent['type']) => (s = transition(appMachine, s, { type })[0]);
  for (const type of ['AppAdded', 'AppStarted', 'AppExited'] as const) step(type);
  t.is(s.value, 'exited');
  t.false(accepts(s, { type: 'AppStopRequested' }), 'an exited app is not stopped');
  step('AppStarted');
  t.is(s.value, 'running');
  t.false(accepts(s, { type: 'AppStartRequested' }), 'a running app is not started again');
  step('AppRemoved');
  t.is(s.value, 'removed');
});
