import test from 'ava';
import { getShortestPaths } from '@xstate/graph';
import { initialTransition, transition } from 'xstate';
import { appMachine, type AppMachineEvent } from '../../machines/app.js';

const TIME = '2026-01-01T00:00:00.000Z';
const e = (type: AppMachineEvent['type'], data: Record<string, unknown> = {}): AppMachineEvent =>
  ({ type, data: { app: 'a', ...data }, time: TIME, version: 0 }) as AppMachineEvent;
const EVENTS = [e('AppAdded', { image: 'sha512-1' }), e('AppStartRequested'), e('AppStarted'), e('AppStopRequested'), e('AppExited', { code: 3 }), e('AppRemoved')];

test('every app state is reachable and removed is final', (t) => {
  const paths = getShortestPaths(appMachine, { events: EVENTS, input: { app: 'a' } });
  t.deepEqual([...new Set(paths.map((p) => p.state.value))].sort(), ['created', 'exited', 'new', 'removed', 'running']);
  t.is(paths.find((p) => p.state.value === 'removed')!.state.status, 'done');
});

test('an app runs, exits with its code, restarts, and a running app cannot be removed', (t) => {
  let [s] = initialTransition(appMachine, { app: 'a' });
  for (const ev of [EVENTS[0]!, EVENTS[1]!, EVENTS[2]!, EVENTS[3]!, EVENTS[4]!]) s = transition(appMachine, s, ev)[0];
  t.is(s.value, 'exited');
  t.is(s.context.exitCode, 3);
  s = transition(appMachine, s, e('AppStarted'))[0];
  t.is(s.value, 'running');
  t.is(s.context.exitCode, undefined);
  t.is(transition(appMachine, s, e('AppRemoved'))[0], s, 'refused while running');
});
