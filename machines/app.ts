/**
 * An app inside a mutable pod (rkt-semantics §1.9, §2.7–2.9): added by `app add` (created, not
 * running), started and stopped on its own, restarted once exited, removed by `app rm` (which stops
 * it first, also in a pod that has exited). Its events live in its pod's stream: the pod machine
 * asks this table which app events an app's state accepts and where each leads, so the app's
 * lifecycle has this one definition; the pod machine adds what the pod decides (mutable, running,
 * one intent at a time).
 */
import { setup } from 'xstate';
import type { PodEventType } from '../src/events/catalogue.js';

export type AppState = 'created' | 'running' | 'exited';
export type AppEventType = Extract<PodEventType, `App${string}`>;

/**
 * For each state, the app events it accepts and the state each leads to (`removed`: the app is gone
 * from the pod). `new` is an app the pod does not have: only an add is accepted. An intent leaves
 * the state as it is; its outcome moves it. A stop's outcome is accepted once the app has exited
 * (it exited on its own while the stop was asked for); the exit itself is observed (AppExited).
 */
type AppNode = AppState | 'new' | 'removed';

export const APP_TRANSITIONS: { readonly [S in AppState | 'new']: Partial<Record<AppEventType, AppNode>> } = {
  new: { AppAddRequested: 'new', AppAdded: 'created' },
  created: { AppStartRequested: 'created', AppStarted: 'running', AppRemoveRequested: 'created', AppRemoved: 'removed' },
  running: { AppStopRequested: 'running', AppStopped: 'running', AppExited: 'exited', AppRemoveRequested: 'running', AppRemoved: 'removed' },
  // rkt's StartApp restarts an exited app (stage1's app-start clears its last run's records).
  exited: { AppStartRequested: 'exited', AppStarted: 'running', AppStopped: 'exited', AppRemoveRequested: 'exited', AppRemoved: 'removed' },
};

/** Where an app event takes an app in `state` (undefined: the state does not accept it). */
export const nextAppState = (state: AppState | undefined, type: PodEventType): AppNode | undefined =>
  (APP_TRANSITIONS[state ?? 'new'] as Partial<Record<PodEventType, AppNode>>)[type];

export type AppMachineEvent = { type: AppEventType };

const on = (state: AppState | 'new') =>
  Object.fromEntries(Object.entries(APP_TRANSITIONS[state]).map(([type, target]) => [type, target === state ? {} : { target }]));

/** The table as an xstate machine, for drawing and for walking its graph. */
export const appMachine = setup({ types: { events: {} as AppMachineEvent } }).createMachine({
  id: 'app',
  initial: 'new',
  states: {
    new: { on: on('new') },
    created: { on: on('created') },
    running: { on: on('running') },
    exited: { on: on('exited') },
    removed: { type: 'final' },
  },
});
