/**
 * Model-based fault injection, end to end as root. The pod machine's graph is walked (@xstate/graph:
 * the shortest path to every state the machine can be in), each path becomes the verbs a user types
 * to take a pod there, and every verb on it is made to fail at every step it passes: killed with -9
 * after each intent, after each effect and before each outcome (PODLOG_CRASH_AT), killed from outside
 * while it waits for its pod, and with each effect it asks for failing (PODLOG_FAIL_AT). The steps are
 * not listed by hand: a reference run of the path names them, read through the event catalogue.
 *
 * After each fault, what a user has (`list`, the same verb again, `stop`, `gc`) must make the log true
 * and take the pod to its end: `list` shows no open intent and no state the world contradicts, a
 * failed verb can be run again, and `gc` deletes the pod, leaving no mount, process, lock or directory,
 * and a history the machine accepts from its first event to its last.
 */
import test, { type ExecutionContext } from 'ava';
import { getShortestPaths } from '@xstate/graph';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { podMachine, type PodMachineEvent, type PodStateName } from '../../machines/pod.js';
import { POD_STREAM_PREFIX } from '../../src/engine/streams.js';
import { CNI_STATE_DIR } from '../../src/stage0/config.js';
import { POD_EVENTS, type EffectName, type PodEventType } from '../../src/events/catalogue.js';
import { abstractState, NO_OVERLAY_PREPARE, SAMPLE_EVENTS } from '../engine/samples.js';
import { aciPath } from '../helpers/fixtures.js';
import { DataDir, limit, mountTable, netnsMounts, pidMentions, podlogBin, processesMentioning, type EventJson, type Invocation } from './harness.js';

const busybox = aciPath('busybox-gzip');
const mountsBefore = mountTable();
/** Each case starts several node processes; more than three at once only makes all of them slow. */
const slot = limit(3);

/** The verbs a user types; `exit` is the pod ending by itself, `mark` is `gc --mark-only`. */
type Verb = 'prepare' | 'run-prepared' | 'run' | 'exit' | 'stop' | 'mark' | 'gc' | 'rm';

/**
 * Which verb records each event. Events only a fault records (PrepareAborted, EffectFailed) are
 * reached by the faults themselves (undefined); PodCompacted belongs to `log compact`, not to a
 * pod's life; an app's exit and its event handlers' runs are steps of no verb (null): the pod goes
 * on until all of it exits.
 */
const VERB_OF: Record<PodEventType, Verb | null | undefined> = {
  PrepareRequested: 'prepare', PodCreated: 'prepare', ImageRenderRequested: 'prepare', ImageRendered: 'prepare',
  OverlayPrepareRequested: 'prepare', OverlayPrepared: 'prepare', AppRootCopyRequested: 'prepare', AppRootCopied: 'prepare',
  PodManifestWriteRequested: 'prepare',
  PodManifestWritten: 'prepare', PodPrepared: 'prepare', PrepareAborted: undefined,
  NetworkAttachRequested: 'run-prepared', NetworkAttached: 'run-prepared',
  Stage1StartRequested: 'run-prepared', PodStarted: 'run-prepared', AppHookRan: null, AppExited: null, PodExited: 'exit',
  NetworkDetachRequested: 'gc', NetworkDetached: 'gc',
  StopRequested: 'stop', StopSignalled: 'stop', PodMarkedGarbage: 'mark', GcRequested: 'gc', PodDeleted: 'gc',
  EffectFailed: undefined, PodCompacted: undefined,
  // The metadata service's registration needs a service running: its faults are in metadata.test.ts.
  MetadataRegisterRequested: undefined, MetadataRegistered: undefined, MetadataUnregisterRequested: undefined, MetadataUnregistered: undefined,
  // A mutable pod's app verbs: their faults are in app-verbs.test.ts.
  AppAddRequested: undefined, AppAdded: undefined, AppStartRequested: undefined, AppStarted: undefined,
  AppStopRequested: undefined, AppStopped: undefined, AppRemoveRequested: undefined, AppRemoved: undefined,
};

/** The verbs that take a pod along a path; a prepared pod is marked and deleted by `rm` as a user would. */
const verbsOf = (events: PodEventType[]): Verb[] | undefined => {
  const verbs: Verb[] = [];
  for (const type of events) {
    let verb = VERB_OF[type];
    if (verb === undefined) return undefined;
    if (verb === null) continue;
    if (verb === 'mark' && verbs.at(-1) === 'prepare') verb = 'rm';
    if (verb === 'gc' && verbs.at(-1) === 'rm') continue;
    // A stopped pod's exit is the end of the stop (the scenario's stop waits for it).
    if (verb === 'exit' && verbs.at(-1) === 'stop') continue;
    if (verbs.at(-1) !== verb) verbs.push(verb);
  }
  return verbs;
};

/**
 * Every state of the machine (abstracted: pending effect, rendered apps, stop asked...) by its shortest
 * path; a `prepare --no-overlay` is among the first events, so the states only it reaches (its copy of
 * an app's root pending) are walked too.
 */
const machinePaths = getShortestPaths(podMachine, { events: [...SAMPLE_EVENTS, NO_OVERLAY_PREPARE], input: { uuid: 'sample' }, serializeState: abstractState as never });
/** The verbs along a path, and whether its pod is prepared with --no-overlay. */
interface Sequence {
  verbs: Verb[];
  noOverlay: boolean;
}
const sequences = new Map<string, Sequence>();
const statesCovered = new Set<PodStateName>();
for (const path of machinePaths) {
  const events = path.steps.map((s) => s.event as PodMachineEvent).filter((e) => !e.type.startsWith('xstate.'));
  const verbs = verbsOf(events.map((e) => e.type));
  if (verbs === undefined || verbs.length === 0) continue;
  statesCovered.add(path.state.value as PodStateName);
  const noOverlay = events.some((e) => e.type === 'PrepareRequested' && !e.data.overlay);
  const variants = [verbs];
  // `run` is prepare and run-prepared in one process, with its own ways to die.
  if (verbs[0] === 'prepare' && verbs[1] === 'run-prepared') variants.push(['run', ...verbs.slice(2)]);
  for (const v of variants) sequences.set(`${noOverlay ? '--no-overlay ' : ''}${v.join(' ')}`, { verbs: v, noOverlay });
}

/** A fault, as the environment of the verb it is injected into says it, or a kill from outside. */
type Fault = { kind: 'crash' | 'fail'; env: Record<string, string>; name: string } | { kind: 'killed-waiting'; env: Record<string, never>; name: string };

/** The faults a verb's own events name: a crash after each intent and effect and before each outcome, each effect failing. */
const faultsOf = (verb: Verb, recorded: EventJson[]): Fault[] => {
  // The exit is observed and recorded by the `run` waiting for the pod: it is that verb's, not a step of its own.
  if (verb === 'exit') return [];
  const faults: Fault[] = [];
  for (const e of recorded) {
    const entry = POD_EVENTS[e.type as PodEventType];
    const crash = (step: string) => faults.push({ kind: 'crash', env: { PODLOG_CRASH_AT: step }, name: `killed ${step}` });
    if (entry.kind === 'intent') crash(`after-intent:${e.type}`);
    if (entry.effect !== undefined) {
      crash(`after-effect:${entry.effect}`);
      faults.push({ kind: 'fail', env: { PODLOG_FAIL_AT: `effect:${entry.effect}` }, name: `${entry.effect} fails` });
    }
    if (entry.kind === 'outcome') crash(`before-outcome:${e.type}`);
  }
  if (verb === 'run' || verb === 'run-prepared') faults.push({ kind: 'killed-waiting', env: {}, name: 'killed -9 while waiting for its pod' });
  const seen = new Set<string>();
  return faults.filter((f) => !seen.has(f.name) && seen.add(f.name));
};

const podEvents = (events: EventJson[]) => events.filter((e) => e.stream.startsWith(POD_STREAM_PREFIX));
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** One pod driven through verbs in one data dir; the pod's app runs until `exit` or `stop` ends it (then 3, or the stop's code). */
class Scenario {
  // On rkt's default network (CNI ptp), whose attach and detach are effects to break like any other.
  readonly d = new DataDir({ PODLOG_NET: 'default' });
  /** `prepare` and `run` take --no-overlay. */
  constructor(private readonly noOverlay = false) {}
  uuid = '';
  private readonly uuidFile = join(mkdtempSync(join(tmpdir(), 'podlog-faults-')), 'uuid');
  /** The `run` or `run-prepared` that waits for the pod, running in the background. */
  waiting: Invocation | undefined;
  readonly marker = `podlog-fault-${process.hrtime.bigint()}`;

  get dir(): string {
    return this.d.podDir(this.uuid);
  }

  /** The pod's stage1 and apps (the `podlog run` whose arguments hold the marker is not the pod). */
  podProcesses(): string[] {
    const found = this.uuid === '' ? processesMentioning(this.marker) : [...processesMentioning(this.dir), ...processesMentioning(this.marker)];
    return found.filter((line) => !line.includes(podlogBin));
  }

  /** Runs one verb; returns the invocation that did it (for its pid and exit). */
  async step(verb: Verb, env: Record<string, string> = {}, killWaiting = false): Promise<{ pid: number; status: number | null; signal: string | null; stderr: string }> {
    // `sleep &` and `wait`, because busybox's sh runs a plain `sleep` in its own process, where a trap waits for it.
    const app = ['--exec', '/bin/sh', '--', '-c', `trap 'exit 3' USR1; echo ran ${this.marker}; sleep 1000 & wait; exit 3`];
    const overlay = this.noOverlay ? ['--no-overlay'] : [];
    switch (verb) {
      case 'prepare': {
        const r = await this.d.podlog(['prepare', ...overlay, '--uuid-file-save', this.uuidFile, busybox, ...app], env);
        this.readUuid();
        return r;
      }
      case 'run':
      case 'run-prepared': {
        const args = verb === 'run' ? ['run', ...overlay, '--uuid-file-save', this.uuidFile, busybox, ...app] : ['run-prepared', this.uuid];
        const inv = this.d.start(args, env);
        const started = await this.untilStarted(inv);
        this.readUuid();
        if (killWaiting && started) {
          process.kill(inv.pid, 'SIGKILL');
          return inv.done;
        }
        if (!started) return inv.done;
        this.waiting = inv;
        return { pid: inv.pid, status: 0, signal: null, stderr: '' };
      }
      case 'exit': {
        // The app ends by itself as far as podlog can tell: its shell is told to, from the host.
        for (const line of processesMentioning(this.marker).filter((l) => / \/bin\/sh -c /.test(l))) process.kill(Number(line.split(':')[0]), 'SIGUSR1');
        const r = await this.waiting!.done;
        this.waiting = undefined;
        if (r.status !== 3) throw new Error(`the pod should have exited 3: ${r.status ?? r.signal}: ${r.stderr}`);
        return r;
      }
      case 'stop': {
        const r = await this.d.podlog(['stop', this.uuid], env);
        if (r.status === 0) await this.waiting?.done;
        if (r.status === 0) this.waiting = undefined;
        return r;
      }
      case 'mark':
        return this.d.podlog(['gc', '--mark-only'], env);
      case 'gc':
        return this.d.podlog(['gc', '--grace-period=0s'], env);
      case 'rm':
        return this.d.podlog(['rm', this.uuid], env);
    }
  }

  /** The pod's UUID from the log, when the verb died before it could save it. */
  async findUuid(): Promise<void> {
    if (this.uuid !== '') return;
    const streams = new Set(podEvents(await this.d.events()).map((e) => e.stream.slice(POD_STREAM_PREFIX.length)));
    if (streams.size === 1) this.uuid = [...streams][0]!;
  }

  private readUuid(): void {
    if (this.uuid === '' && existsSync(this.uuidFile)) this.uuid = readFileSync(this.uuidFile, 'utf8').trim();
  }

  /** Polls the log (never the clock) until the pod is recorded as started, or the verb has ended. */
  private async untilStarted(inv: Invocation): Promise<boolean> {
    let ended = false;
    void inv.done.then(() => (ended = true));
    for (;;) {
      if (ended) return false;
      this.readUuid();
      if (this.uuid !== '') {
        const started = await this.d.podlog(['events', '--json', '--type', 'PodStarted', '--pod', this.uuid]);
        if (started.stdout.trim() !== '') return true;
      }
      await sleep(20);
    }
  }

  async events(): Promise<EventJson[]> {
    return podEvents(await this.d.events(this.uuid === '' ? undefined : this.uuid));
  }

  /**
   * Stops a pod left running (its `run` reads its output files as it ends), collects it (its networks
   * hold an address and a kept namespace until then), then removes everything.
   */
  async cleanup(): Promise<void> {
    if (this.waiting !== undefined) {
      await this.d.podlog(['stop', '--force', this.uuid]);
      await this.waiting.done;
    }
    await this.d.podlog(['gc', '--grace-period=0s', '--expire-prepared=0s']);
    this.d.cleanup();
    rmSync(dirname(this.uuidFile), { recursive: true, force: true });
  }
}

/** A reference run of a sequence: the faults each verb on it can meet, in order. */
const referenceFaults = async ({ verbs, noOverlay }: Sequence): Promise<Fault[][]> => {
  const s = new Scenario(noOverlay);
  try {
    const perVerb: Fault[][] = [];
    for (const verb of verbs) {
      const r = await s.step(verb);
      if (r.status !== 0 && !(verb === 'exit' && r.status === 3)) throw new Error(`reference ${verbs.join(' ')}: ${verb} failed: ${r.stderr}`);
      perVerb.push(faultsOf(verb, (await s.events()).filter((e) => e.meta.pid === r.pid)));
    }
    return perVerb;
  } finally {
    await s.cleanup();
  }
};

/** What `list` shows must be true of the world; returns the state it shows. */
const listedState = async (t: ExecutionContext, s: Scenario, when: string): Promise<string> => {
  const aliveBefore = s.podProcesses().length > 0;
  const list = await s.d.podlog(['list', '--format', 'json']);
  t.is(list.status, 0, `${when}: list: ${list.stderr}`);
  t.is(list.stderr, '', `${when}: list reports no broken pod`);
  const pod = (JSON.parse(list.stdout) as Array<{ uuid: string; state: string }>).find((p) => p.uuid === s.uuid);
  const state = pod?.state ?? 'deleted';
  if (state === 'running') t.true(aliveBefore, `${when}: running, but nothing of it ran when list looked`);
  else t.deepEqual(s.podProcesses(), [], `${when}: the pod is ${state}, yet its processes run`);
  if (s.uuid !== '') {
    const replay = await s.d.podlog(['replay', '--json', s.uuid]);
    t.is(replay.status, 0, `${when}: replay: ${replay.stderr}`);
    const replayed = JSON.parse(replay.stdout) as { context: { pending?: { intent: string } } };
    const waitingAlive = s.waiting !== undefined && pidMentions(s.waiting.pid, 'podlog');
    if (!waitingAlive) t.is(replayed.context.pending, undefined, `${when}: an intent was left open (${replayed.context.pending?.intent})`);
  }
  t.not(state, 'preparing', `${when}: left preparing`);
  return state;
};

/** Takes the pod to its end with the verbs a user has, then checks that nothing of it is left. */
const finish = async (t: ExecutionContext, s: Scenario, when: string): Promise<void> => {
  let state = await listedState(t, s, `${when}, then list`);
  if (state === 'running') {
    const stop = await s.d.podlog(['stop', '--force', s.uuid]);
    t.is(stop.status, 0, stop.stderr);
    await s.waiting?.done;
    s.waiting = undefined;
    await s.d.podlog(['status', '--wait=10s', s.uuid]);
  }
  for (let round = 0; round < 2 && state !== 'deleted'; round++) {
    const gc = await s.d.podlog(['gc', '--grace-period=0s', '--expire-prepared=0s']);
    t.is(gc.status, 0, `${when}, then gc: ${gc.stderr}`);
    state = await listedState(t, s, `${when}, then gc`);
  }
  t.is(state, 'deleted', `${when}: gc deletes the pod`);
  if (s.uuid === '') return; // the fault came before the pod existed
  const history = await s.events();
  t.deepEqual(history.map((e) => e.version), history.map((_, i) => i + 1), 'versions 1..N');
  t.is(history.at(-1)?.type, 'PodDeleted');
  t.true(history.filter((e) => e.type === 'PodStarted').length <= 1, 'started at most once');
  t.false(existsSync(s.dir), 'no pod directory');
  t.deepEqual(s.podProcesses(), [], 'no process');
  for (const e of history.filter((x) => x.type === 'PodStarted')) t.false(pidMentions(e.data.pid as number, s.dir), `stage1 pid ${String(e.data.pid)}`);
  t.is(mountTable(), mountsBefore, 'no mount');
  t.deepEqual(netnsMounts(s.d.dir), [], 'no network namespace kept');
  // What its network held on the host: host-local's lease, ptp's nat rules (both name the pod's UUID).
  const leases = spawnSync('grep', ['-rl', s.uuid, CNI_STATE_DIR], { encoding: 'utf8' }).stdout;
  t.is(leases, '', 'no lease left');
  const nat = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(s.uuid));
  t.deepEqual(nat, [], 'no nat rule left');
};

/** Where a failed effect leaves the pod (as `list` names states), from the machine's recovery table. */
const AFTER_FAILED: Record<EffectName, string> = {
  createPod: 'aborted prepare', renderImage: 'aborted prepare', prepareOverlay: 'aborted prepare', copyAppRoot: 'aborted prepare', writeManifest: 'aborted prepare',
  attachNetwork: 'prepared', startStage1: 'prepared', stopPod: 'running', detachNetwork: 'exited garbage', deletePod: 'deleting',
  registerMetadata: 'prepared', unregisterMetadata: 'exited garbage',
  addApp: 'running', startApp: 'running', stopApp: 'running', removeApp: 'running',
};
/** The verb that tries a failed effect again (a failed delete: the verb that asked for it); it must then work. */
const RETRIED_BY: Partial<Record<EffectName, Verb>> = { attachNetwork: 'run-prepared', startStage1: 'run-prepared', stopPod: 'stop', detachNetwork: 'gc' };

const faultCase = async (t: ExecutionContext, { verbs, noOverlay }: Sequence, at: number, fault: Fault): Promise<void> => {
  const s = new Scenario(noOverlay);
  try {
    for (const verb of verbs.slice(0, at)) {
      const r = await s.step(verb);
      if (r.status !== 0 && !(verb === 'exit' && r.status === 3)) throw new Error(`${verb} before the fault failed: ${r.stderr}`);
    }
    const verb = verbs[at]!;
    const r = await s.step(verb, fault.env, fault.kind === 'killed-waiting');
    if (fault.kind === 'fail') {
      t.is(r.status, 254, `${verb} with ${fault.name} exits 254`);
      t.regex(r.stderr, /injected by PODLOG_FAIL_AT/);
      t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
    } else {
      t.is(r.signal, 'SIGKILL', `${verb} should have died (${fault.name}); it exited ${r.status}: ${r.stderr}`);
    }
    if (fault.kind !== 'fail' && (verb === 'run' || verb === 'run-prepared')) {
      // The pod dies with the `run` that was killed, as rkt's does: nothing of it runs a moment later.
      for (let i = 0; i < 100 && s.podProcesses().length > 0; i++) await sleep(20);
      t.deepEqual(s.podProcesses(), [], 'the pod died with its run');
    }
    await s.findUuid();
    const state = await listedState(t, s, `after ${verb} ${fault.name}`);
    if (fault.kind === 'fail') {
      const effect = fault.env.PODLOG_FAIL_AT!.slice('effect:'.length) as EffectName;
      t.is(state, AFTER_FAILED[effect], `a failed ${effect} leaves the pod ${AFTER_FAILED[effect]}`);
      const retry = effect === 'deletePod' ? verb : RETRIED_BY[effect];
      if (retry !== undefined) {
        const again = await s.step(retry);
        t.is(again.status, 0, `${retry} again after ${fault.name}: ${again.stderr}`);
        if (effect === 'deletePod') t.is(await listedState(t, s, `${verb} again`), 'deleted');
      }
    }
    await finish(t, s, `${verb} ${fault.name}`);
    // And the data dir works as before.
    const next = await s.d.podlog(['run', busybox, '--exec', '/bin/true']);
    t.is(next.status, 0, next.stderr);
  } finally {
    await s.cleanup();
  }
};

// Every (path prefix, fault) once: a verb met on several paths after the same verbs is the same case.
const cases = new Map<string, { sequence: Sequence; at: number; fault: Fault }>();
for (const sequence of sequences.values()) {
  const reference = await referenceFaults(sequence);
  reference.forEach((faults, at) => {
    const prefix = `${sequence.noOverlay ? '--no-overlay ' : ''}${sequence.verbs.slice(0, at + 1).join(' > ')}`;
    for (const fault of faults) cases.set(`${prefix}: ${fault.name}`, { sequence, at, fault });
  });
}

test('the walk covers every state and every effect of the machine', (t) => {
  const everyState = Object.keys(podMachine.config.states!).filter((s) => s !== 'embryo' && s !== 'abortedPrepare');
  // abortedPrepare is reached only through faults in prepare; embryo is the pod before prepare.
  t.deepEqual([...statesCovered].filter((s) => s !== 'embryo').sort(), everyState.sort());
  // The intents no verb of the walk records (VERB_OF: undefined) have their faults in their own tests.
  const effects = new Set(Object.entries(POD_EVENTS).flatMap(([type, e]) => (e.effect && VERB_OF[type as PodEventType] !== undefined ? [e.effect] : [])));
  const failed = new Set([...cases.values()].flatMap((c) => (c.fault.kind === 'fail' ? [c.fault.env.PODLOG_FAIL_AT!.slice('effect:'.length)] : [])));
  t.deepEqual([...failed].sort(), [...effects].sort(), 'every effect is made to fail');
  const count = (kind: Fault['kind']) => [...cases.values()].filter((c) => c.fault.kind === kind).length;
  t.log(
    `${machinePaths.length} machine paths, ${sequences.size} verb sequences (${[...sequences.keys()].join(' | ')}); ` +
      `${cases.size} (path, step, fault) cases: ${count('crash')} kills at a step, ${count('fail')} failed effects, ${count('killed-waiting')} kills while waiting`,
  );
});

for (const [name, c] of cases) {
  test(`fault: ${name}`, (t) => slot(() => faultCase(t, c.sequence, c.at, c.fault)));
}

test.after.always('the test process mount table is the same after every fault', (t) => {
  t.is(mountTable(), mountsBefore);
});
