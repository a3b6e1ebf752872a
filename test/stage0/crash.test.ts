/**
 * Crash injection, end to end as root: `podlog run` kill -9s itself at every step it passes
 * (PODLOG_CRASH_AT, src/engine/crash.ts), then `podlog list` and `podlog gc --grace-period=0` must make
 * the log true: the pod's state says whether it ran (checked against what the app itself printed), its
 * history says who recorded what, it replays through the machine, it ends deleted, no mount and no
 * process of it is left, and the next `run` in the same data dir works.
 *
 * The steps are not listed by hand: a reference run's history, read through the event catalogue, names
 * them (after each intent, after each intent's effect, before each outcome), and they are checked to
 * cover every effect the machine can ask for before a pod runs.
 *
 * A `podlog run` killed after stage1 started does not take the pod with it (stage1 is its child, not
 * itself as after rkt's exec): the pod runs to its end, `list` shows it running until then, gc leaves it
 * alone, and its exit is observed by whoever looks next.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { podMachine } from '../../machines/pod.js';
import { POD_STREAM_PREFIX } from '../../src/engine/streams.js';
import { POD_EVENTS, type EffectName, type PodEventType } from '../../src/events/catalogue.js';
import { aciPath } from '../helpers/fixtures.js';
import { DataDir, limit, mountTable, pidMentions, processesMentioning, type EventJson } from './harness.js';

const busybox = aciPath('busybox-gzip');
const mountsBefore = mountTable();
/** Each case starts several node processes; more than three at once only makes all of them slow. */
const slot = limit(3);

const podEvents = (events: EventJson[]) => events.filter((e) => e.stream.startsWith(POD_STREAM_PREFIX));
const uuidOf = (e: EventJson) => e.stream.slice(POD_STREAM_PREFIX.length);

/** The crash points a history passes, named as the engine names them, in order. */
const crashPointsOf = (history: EventJson[]): string[] => {
  const steps = history.flatMap((e) => {
    const entry = POD_EVENTS[e.type as PodEventType];
    if (entry.kind === 'intent') return [`after-intent:${e.type}`, ...(entry.effect ? [`after-effect:${entry.effect}`] : [])];
    if (entry.kind === 'outcome') return [`before-outcome:${e.type}`];
    return []; // observations and decisions are recorded in one append with nothing after them
  });
  return [...new Set(steps)];
};

/** The index in `history` of the last event the crashing process records before it dies at `step`. */
const lastRecordedAt = (history: EventJson[], step: string): number => {
  const [where, name] = step.split(':') as [string, string];
  if (where === 'after-intent') return history.findIndex((e) => e.type === name);
  if (where === 'after-effect') return history.findIndex((e) => POD_EVENTS[e.type as PodEventType].effect === name);
  if (where === 'before-outcome') return history.findIndex((e) => e.type === name) - 1;
  throw new Error(`unknown crash point ${step}`);
};

/** Effects the machine can ask for before a pod runs (embryo, preparing, prepared). */
const effectsBeforeRunning = (): EffectName[] => {
  const effects = new Set(Object.values(POD_EVENTS).flatMap((e) => (e.effect ? [e.effect] : [])));
  const states = podMachine.config.states as Record<string, { on?: Record<string, unknown> }>;
  const found = new Set<EffectName>();
  for (const state of ['embryo', 'preparing', 'prepared']) {
    for (const transition of Object.values(states[state]!.on ?? {})) {
      for (const t of [transition].flat() as Array<{ actions?: unknown }>) {
        for (const action of [t.actions ?? []].flat()) {
          if (typeof action === 'string' && effects.has(action as EffectName)) found.add(action as EffectName);
        }
      }
    }
  }
  return [...found];
};

// The reference: a `podlog run` nobody interrupts.
const reference = new DataDir();
const referenceRun = await reference.podlog(['run', busybox, '--exec', '/bin/sh', '--', '-c', 'exit 3']);
const referenceHistory = podEvents(await reference.events());
reference.cleanup();
const STEPS = crashPointsOf(referenceHistory);
/** From this step on, stage1 has been spawned when `podlog run` dies. */
const FIRST_STARTED = STEPS.indexOf('after-effect:startStage1');
/** Not a crash point: the test kills `podlog run` from outside once PodStarted is in the log. */
const KILLED_WHILE_WAITING = 'killed while waiting for its pod';

test.after.always('the test process mount table is the same after every crash', (t) => {
  t.is(mountTable(), mountsBefore);
});

test('the crash points cover every step of a run and every effect before the pod runs', (t) => {
  t.is(referenceRun.status, 3, referenceRun.stderr);
  t.deepEqual(referenceHistory.map((e) => e.type), [
    'PrepareRequested', 'ImageRenderRequested', 'ImageRendered', 'OverlayPrepareRequested', 'OverlayPrepared', 'PodPrepared',
    'Stage1StartRequested', 'PodStarted', 'AppExited', 'PodExited',
  ]);
  t.deepEqual(effectsBeforeRunning().sort(), ['prepareOverlay', 'renderImage', 'startStage1']);
  for (const effect of effectsBeforeRunning()) t.true(STEPS.includes(`after-effect:${effect}`), effect);
  t.true(FIRST_STARTED > 0);
  t.log(STEPS.join(', '));
});

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Polls the log (never the clock) until the pod's stage1 is recorded as started. */
const waitForStarted = async (d: DataDir, child: { done: Promise<unknown> }): Promise<void> => {
  let exited = false;
  void child.done.then(() => (exited = true));
  for (;;) {
    const events = await d.podlog(['events', '--json', '--type', 'PodStarted']);
    if (events.stdout.trim() !== '') return;
    if (exited) throw new Error('podlog run ended before its pod started');
    await sleep(20);
  }
};

const crashCase = async (t: ExecutionContext, step: string): Promise<void> => {
  const d = new DataDir();
  try {
    const marker = `podlog-crash-${randomBytes(6).toString('hex')}`;
    const appOut = join(d.dir, 'app.out');
    // Long enough that the pod outlives the killed `podlog run` and the `list` and `gc` after it.
    const script = `echo ran ${marker}; sleep 2; echo done ${marker}; exit 3`;
    const killedAt = step === KILLED_WHILE_WAITING ? referenceHistory.findIndex((e) => e.type === 'PodStarted') : lastRecordedAt(referenceHistory, step);
    const willHaveRun = step === KILLED_WHILE_WAITING || STEPS.indexOf(step) >= FIRST_STARTED;

    const child = d.start(['run', busybox, '--exec', '/bin/sh', '--', '-c', script], step === KILLED_WHILE_WAITING ? {} : { PODLOG_CRASH_AT: step }, appOut);
    if (step === KILLED_WHILE_WAITING) {
      await waitForStarted(d, child);
      process.kill(child.pid, 'SIGKILL');
    }
    const run = await child.done;
    t.is(run.signal, 'SIGKILL', `podlog run should have died at ${step}; it exited ${run.status}: ${run.stderr}`);

    const uuids = [...new Set(podEvents(await d.events()).map(uuidOf))];
    t.is(uuids.length, 1);
    const uuid = uuids[0]!;
    const dir = d.podDir(uuid);
    const appRan = () => readFileSync(appOut, 'utf8').includes(`ran ${marker}`);
    const podProcesses = () => [...processesMentioning(dir), ...processesMentioning(marker)];

    /** What a command showed must be true of the world: a pod past running has no process left. */
    const stateOf = async (after: string): Promise<string> => {
      // Probed before the command looks: a pod it then calls running was running when it looked.
      const aliveBefore = podProcesses().length > 0;
      const state = (await d.list()).find((p) => p.uuid === uuid)?.state ?? 'deleted';
      const left = podProcesses();
      if (state === 'running') t.true(aliveBefore, `${after}: running, but nothing of it ran when list looked`);
      else t.deepEqual(left, [], `${after}: the pod is ${state}, yet its processes run`);
      if (state === 'preparing' || state === 'deleting') t.fail(`${after}: the pod is left in ${state}`);
      return state;
    };

    // The pod dies with `podlog run` or outlives it; either way `list` must say which.
    let state = await stateOf('list after the crash');
    t.true(willHaveRun ? ['running', 'exited'].includes(state) : ['aborted prepare', 'prepared'].includes(state), `after ${step}: ${state}`);
    const gc = await d.podlog(['gc', '--grace-period=0']);
    t.is(gc.status, 0, gc.stderr);
    t.is(gc.stderr, '', 'gc reports no error for any pod');
    state = await stateOf('gc after the crash');
    if (state === 'running') {
      t.false(gc.stdout.includes(uuid), 'gc leaves a running pod alone');
      const status = await d.podlog(['status', '--wait', uuid]);
      t.is(status.status, 0, status.stderr);
      t.regex(status.stdout, /^state=exited$/m);
      t.regex(status.stdout, /^app-busybox=3$/m);
      state = await stateOf('status --wait');
    }
    if (state === 'exited') {
      // It ended after gc looked at it (and `list` or `status` observed the exit): the next gc takes it.
      t.is((await d.podlog(['gc', '--grace-period=0'])).status, 0);
      state = await stateOf('gc after the exit');
    }

    // The pod's history says what happened, checked against what the app printed.
    t.is(appRan(), willHaveRun, willHaveRun ? 'the pod ran' : 'the pod never ran');
    let history = podEvents(await d.events(uuid));
    const byRun = history.filter((e) => e.meta.pid === run.pid);
    t.deepEqual(byRun.map((e) => e.type), referenceHistory.slice(0, killedAt + 1).map((e) => e.type), 'the killed run recorded exactly the steps before its death');
    const after = history.slice(byRun.length).map((e) => e.type);
    const types = history.map((e) => e.type);
    if (willHaveRun) {
      t.true(readFileSync(appOut, 'utf8').includes(`done ${marker}`), 'the app ran to its end: nothing killed it');
      t.is(types.filter((x) => x === 'PodStarted').length, 1);
      t.deepEqual(history.find((e) => e.type === 'AppExited')?.data, { app: 'busybox', code: 3 });
      t.deepEqual(history.find((e) => e.type === 'PodExited')?.data, { code: 3 });
      // The exit was observed by a later command, not by the dead `podlog run`.
      const exit = history.find((e) => e.type === 'PodExited')!;
      t.not(exit.meta.pid, run.pid);
      t.regex(exit.meta.command.join(' '), /\b(list|gc|status)\b/);
      t.is(state, 'deleted');
    } else {
      t.false(types.includes('PodStarted'));
      if (step === 'after-intent:Stage1StartRequested') {
        // The start was asked for but never done: compensated, and the pod is still prepared and runnable.
        t.deepEqual(after.slice(0, 1), ['EffectFailed']);
        t.like(history[byRun.length]!.data, { effect: 'startStage1', code: 'EABANDONED' });
        t.is(state, 'prepared', 'gc collects prepared pods only once they expire');
        const again = await d.podlog(['run-prepared', uuid]);
        t.is(again.status, 3, again.stderr);
        t.is((await d.podlog(['gc', '--grace-period=0'])).status, 0);
        state = await stateOf('gc after run-prepared');
        history = podEvents(await d.events(uuid));
        t.deepEqual(history.map((e) => e.type).slice(byRun.length + 1, byRun.length + 5), ['Stage1StartRequested', 'PodStarted', 'AppExited', 'PodExited']);
      } else {
        // The preparer died: whatever it left open is finished or compensated, and the prepare is aborted.
        const aborted = history.find((e) => e.type === 'PrepareAborted');
        t.truthy(aborted, types.join(' '));
        t.regex(String(aborted?.data.reason), new RegExp(`pid ${run.pid} .* is gone`));
      }
      t.is(state, 'deleted');
    }
    t.deepEqual(history.map((e) => e.type).slice(-3), ['PodMarkedGarbage', 'GcRequested', 'PodDeleted']);
    t.deepEqual(history.map((e) => e.version), history.map((_, i) => i + 1), 'versions 1..N');

    // Every event is one the machine accepts, and nothing is left open.
    const replay = await d.podlog(['replay', '--json', uuid]);
    t.is(replay.status, 0, replay.stderr);
    const replayed = JSON.parse(replay.stdout) as { state: string; context: { pending?: unknown }; latest: number };
    t.is(replayed.state, 'deleted');
    t.is(replayed.context.pending, undefined);
    t.is(replayed.latest, history.length);

    // Nothing of the pod is left: no directory, no process (the recorded pid included), no mount.
    t.false(existsSync(dir));
    t.deepEqual(podProcesses(), []);
    for (const e of history.filter((x) => x.type === 'PodStarted')) t.false(pidMentions(e.data.pid as number, dir), `pid ${String(e.data.pid)}`);
    t.is(mountTable(), mountsBefore);

    // And the data dir works as before.
    const next = await d.podlog(['run', busybox, '--exec', '/bin/sh', '--', '-c', 'exit 3']);
    t.is(next.status, 3, next.stderr);
    t.is((await d.podlog(['gc', '--grace-period=0'])).status, 0);
    t.deepEqual(await d.list(), []);
  } finally {
    d.cleanup();
  }
};

for (const step of [...STEPS, KILLED_WHILE_WAITING]) {
  test(`podlog run killed: ${step}`, (t) => slot(() => crashCase(t, step)));
}
