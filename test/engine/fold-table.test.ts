/**
 * The fold's transition table (src/engine/transitions.ts) against xstate's own `machine.transition`:
 * every step gives the same state, context, status, tags, effects and the same accepted or refused.
 *
 * The machine's graph is walked with @xstate/graph down to every state any guard can tell apart
 * (guardState), and every sample event is offered in every state reached, comparing whole contexts:
 * agreement on every edge from every such state is agreement on every path, however long. Every event of every recorded history is
 * replayed the same way, with every sample event offered at each point of it.
 */
import test, { type ExecutionContext } from 'ava';
import { getShortestPaths } from '@xstate/graph';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { podMachine, type PodContext, type PodMachineEvent, type PodStateName } from '../../machines/pod.js';
import { initialPod, machineInitialPod, machineStep, restorePod, step, toMachineEvent, type PodSnapshot } from '../../src/engine/fold.js';
import type { TableStep } from '../../src/engine/transitions.js';
import { isPodlogError } from '../../src/errors.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { repoRoot } from '../helpers/fixtures.js';
import { NO_OVERLAY_PREPARE, SAMPLE_EVENTS } from './samples.js';

/** The tags callers read with `hasTag` (stop, status, status --wait). */
const CALLER_TAGS = ['afterRun', 'finished', 'ranAndExited'] as const;
const OFFERED = [...SAMPLE_EVENTS, NO_OVERLAY_PREPARE];

type Definition = ReturnType<typeof podMachine.getTransitionData>[number];
const root = podMachine.root;
const DEFINITIONS: Definition[] = [root, ...Object.values(root.states)].flatMap((node) => [...node.transitions.values()].flat());
const describe = (d: Definition) => `${d.source.key || 'root'} --${d.eventType}--> ${d.target?.map((s) => s.key).join(',') ?? '(stays)'}`;

/** What a caller can see of a step: xstate's own serialisation of the snapshot, its tags, its effects. */
const seen = (r: TableStep) => ({
  accepted: r.accepted,
  effects: r.effects,
  snapshot: r.next.toJSON(),
  tags: CALLER_TAGS.map((tag) => r.next.hasTag(tag)),
});

/** Folds the table and xstate side by side, recording every disagreement and the transitions xstate took. */
class Comparison {
  readonly mismatches: string[] = [];
  readonly taken = new Set<Definition>();
  accepted = 0;
  refused = 0;

  start(uuid: string): [PodSnapshot, PodSnapshot] {
    const pair: [PodSnapshot, PodSnapshot] = [initialPod(uuid), machineInitialPod(uuid)];
    if (!isDeepStrictEqual(pair[0].toJSON(), pair[1].toJSON())) this.mismatches.push(`initial snapshot of ${uuid}`);
    return pair;
  }

  /** One event through both; the pair after it (each side keeps folding its own snapshots). */
  step([table, machine]: [PodSnapshot, PodSnapshot], event: PodMachineEvent, where: string): [PodSnapshot, PodSnapshot] {
    const fromTable = step(table, event);
    const fromMachine = machineStep(machine, event);
    if (!isDeepStrictEqual(seen(fromTable), seen(fromMachine))) {
      this.mismatches.push(`${where}: ${event.type} in ${String(machine.value)}: table ${JSON.stringify(seen(fromTable))}, xstate ${JSON.stringify(seen(fromMachine))}`);
    }
    if (table.can(event) !== machine.can(event)) this.mismatches.push(`${where}: can(${event.type}) differs on the table's snapshot`);
    if (fromMachine.accepted) {
      this.accepted++;
      for (const d of podMachine.getTransitionData(machine, event)) this.taken.add(d);
    } else {
      this.refused++;
    }
    return [fromTable.next, fromMachine.next];
  }

  /** Every sample event offered in this state, to both. */
  offerAll(pair: [PodSnapshot, PodSnapshot], where: string): void {
    for (const event of OFFERED) this.step(pair, event, where);
  }

  check(t: ExecutionContext, what: string): void {
    t.deepEqual(this.mismatches.slice(0, 5), [], `${this.mismatches.length} disagreements over ${what}`);
    t.log(`${what}: ${this.accepted} accepted and ${this.refused} refused steps agree`);
  }
}

/**
 * A state as far as any guard or later step can tell: its value, the open intent, each flag and
 * app, network and registration it holds. Not the whole context: the failures recorded and the
 * data carried multiply the states past what a test can walk (over 400 s with the metadata
 * registration) without reaching a transition these do not.
 */
const guardState = (s: { value: unknown; context: PodContext }) => {
  const c = s.context;
  return JSON.stringify([
    s.value, c.pending, c.created, c.overlay, c.mutable, c.overlayPrepared, c.manifestWritten, c.stopRequested,
    c.apps.map((a) => [a.name, a.state, a.treeStoreId !== undefined, a.copied, a.exitCode !== undefined, Object.keys(a.hooks ?? {})]),
    (c.networks ?? []).map((n) => [n.name, n.attached]),
    c.metadata !== undefined,
  ]);
};

test('on every edge from every state of the machine graph, the table and xstate agree', (t) => {
  const paths = getShortestPaths(podMachine, { events: OFFERED, input: { uuid: 'sample' }, serializeState: guardState as never });
  const comparison = new Comparison();
  for (const path of paths) {
    const events = path.steps.map((s) => s.event as PodMachineEvent).filter((e) => !e.type.startsWith('xstate.'));
    let pair = comparison.start('sample');
    for (const [i, event] of events.entries()) pair = comparison.step(pair, event, `path step ${i + 1}`);
    const where = events.map((e) => e.type).join(' > ');
    // Restored from what a pod list row keeps, the snapshot is the one xstate resolves.
    const restored = restorePod(pair[1].value as PodStateName, pair[1].context);
    if (!isDeepStrictEqual(restored.toJSON(), podMachine.resolveState({ value: pair[1].value, context: pair[1].context }).toJSON())) {
      comparison.mismatches.push(`restorePod after ${where}`);
    }
    comparison.offerAll(pair, where);
  }
  comparison.check(t, `${paths.length} states`);
  const states = new Set(paths.map((p) => p.state.value));
  t.deepEqual([...states].sort(), Object.keys(root.states).sort(), 'every state of the machine is reached');
  const untaken = DEFINITIONS.filter((d) => !comparison.taken.has(d)).map(describe);
  t.deepEqual(untaken, [], 'every transition of the machine is taken at least once (else SAMPLE_EVENTS lacks an event)');
});

test('on every event of every recorded history, and every sample offered along it, the table and xstate agree', (t) => {
  const logs = join(repoRoot, 'fixtures', 'logs');
  const files = readdirSync(logs).filter((f) => f.endsWith('.events.jsonl'));
  t.true(files.length > 0, 'recorded histories exist');
  const comparison = new Comparison();
  let replayed = 0;
  for (const file of files) {
    const streams = new Map<string, RecordedEvent[]>();
    for (const line of readFileSync(join(logs, file), 'utf8').trim().split('\n')) {
      const e = JSON.parse(line) as RecordedEvent;
      streams.set(e.stream, [...(streams.get(e.stream) ?? []), e]);
    }
    for (const [stream, events] of streams) {
      let pair = comparison.start(stream);
      for (const e of events) {
        comparison.offerAll(pair, `${file} ${stream}@${e.version - 1}`);
        pair = comparison.step(pair, toMachineEvent(e), `${file} ${stream}@${e.version}`);
        replayed++;
      }
      comparison.offerAll(pair, `${file} ${stream}@end`);
    }
  }
  comparison.check(t, `${replayed} recorded events`);
  t.true(replayed > 50, `${replayed} recorded events replayed`);
});

test('a stored row in a state the machine does not have is refused by name', (t) => {
  const context = initialPod('x').context;
  const error = t.throws(() => restorePod('sleeping' as PodStateName, context));
  t.true(isPodlogError(error));
  t.regex(error!.message, /state "sleeping", which the pod machine does not have/);
});
