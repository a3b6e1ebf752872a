/**
 * An app inside a mutable pod (rkt-semantics §1.9, §2.7–2.9): created by `app add`, started and
 * stopped on its own, removed by `app rm`. Pure data and guards like the pod machine; the verbs that
 * drive it (app add/rm/start/stop) come with mutable pods.
 */
import { assign, setup } from 'xstate';

export type AppMachineEvent =
  | { type: 'AppAdded'; data: { app: string; image: string }; time: string; version: number }
  | { type: 'AppStartRequested'; data: { app: string }; time: string; version: number }
  | { type: 'AppStarted'; data: { app: string }; time: string; version: number }
  | { type: 'AppStopRequested'; data: { app: string }; time: string; version: number }
  | { type: 'AppExited'; data: { app: string; code: number }; time: string; version: number }
  | { type: 'AppRemoved'; data: { app: string }; time: string; version: number };

export interface AppContext {
  app: string;
  image?: string;
  createdAt?: string;
  startedAt?: string;
  exitedAt?: string;
  exitCode?: number;
  /** A start or stop asked for and not yet answered. */
  pending?: 'start' | 'stop';
}

type Ev<T extends AppMachineEvent['type']> = Extract<AppMachineEvent, { type: T }>;

export const appMachine = setup({
  types: { context: {} as AppContext, events: {} as AppMachineEvent, input: {} as { app: string } },
  guards: { idle: ({ context }) => context.pending === undefined },
  actions: {
    added: assign(({ event }) => ({ image: (event as Ev<'AppAdded'>).data.image, createdAt: event.time })),
    startAsked: assign({ pending: 'start' as const }),
    started: assign(({ event }) => ({ pending: undefined, startedAt: event.time, exitCode: undefined, exitedAt: undefined })),
    stopAsked: assign({ pending: 'stop' as const }),
    exited: assign(({ event }) => ({ pending: undefined, exitCode: (event as Ev<'AppExited'>).data.code, exitedAt: event.time })),
  },
}).createMachine({
  id: 'app',
  initial: 'new',
  context: ({ input }) => ({ app: input.app }),
  states: {
    new: { on: { AppAdded: { target: 'created', actions: 'added' } } },
    created: {
      on: {
        AppStartRequested: { guard: 'idle', actions: 'startAsked' },
        AppStarted: { target: 'running', actions: 'started' },
        AppRemoved: { target: 'removed' },
      },
    },
    running: {
      on: {
        AppStopRequested: { guard: 'idle', actions: 'stopAsked' },
        AppExited: { target: 'exited', actions: 'exited' },
      },
    },
    exited: {
      on: {
        // rkt's StartApp restarts an exited app (it removes the status file and starts it again).
        AppStartRequested: { guard: 'idle', actions: 'startAsked' },
        AppStarted: { target: 'running', actions: 'started' },
        AppRemoved: { target: 'removed' },
      },
    },
    removed: { type: 'final' },
  },
});
