/**
 * The pod machine as a transition table: for each state and event type, the candidate transitions
 * in xstate's order (the state's own, then its ancestors'), each with its guard, target, assigns
 * and effects, compiled once per process from `podMachine` itself, so machines/pod.ts stays the one
 * definition and a new event or state needs no change here.
 *
 * Folding through xstate's macrostep (microstep resolution, exit and entry sets, a snapshot clone per
 * action, eventless checks) costs 15–20 µs an event; the table calls the machine's guards and
 * assignments directly and builds one snapshot per accepted event. It handles the machine's shape as
 * it is (one level of atomic and final states, guards, assigns, effects named as actions): anything
 * more in the definition is refused when the table is built, so a richer machine fails loudly instead
 * of folding differently. test/engine/fold-table.test.ts proves the table and xstate agree.
 */
import { and, not, or, type SnapshotFrom } from 'xstate';
import { podMachine, type PodContext, type PodMachineEvent, type PodStateName } from '../../machines/pod.js';
import { type EffectName, POD_EVENTS } from '../events/catalogue.js';

type PodSnapshot = SnapshotFrom<typeof podMachine>;
type StateNode = (typeof podMachine)['root'];
type Definition = StateNode['transitions'] extends Map<string, Array<infer T>> ? T : never;

/** Guards, actions and their references as xstate keeps them, seen without the machine's generics. */
type Implementation = ((args: Record<string, unknown>, params: unknown) => unknown) & {
  check?: unknown;
  guards?: Reference[];
  resolve?: unknown;
  type?: string;
  assignment?: unknown;
};
type Reference = string | Implementation | { type: string; params?: unknown };

type Guard = (context: PodContext, event: PodMachineEvent) => boolean;
type Assign = (context: PodContext, event: PodMachineEvent) => PodContext;

interface Transition {
  guard: Guard | undefined;
  target: PodStateName | undefined;
  assigns: Assign[];
  effects: readonly EffectName[];
}

export interface TableStep {
  next: PodSnapshot;
  accepted: boolean;
  effects: readonly EffectName[];
}

const EFFECTS: ReadonlySet<string> = new Set(Object.values(POD_EVENTS).flatMap((e) => (e.effect === undefined ? [] : [e.effect])));
/** Whether an action the machine names is an effect (the interpreter runs it), not bookkeeping. */
export const isEffect = (action: string): action is EffectName => EFFECTS.has(action);

const implementations = podMachine.implementations as unknown as {
  guards: Record<string, Reference | undefined>;
  actions: Record<string, Reference | undefined>;
};

const unsupported = (what: string): Error =>
  new Error(`the pod machine's transition table cannot express ${what}; fold.ts would fold differently from xstate`);

// xstate's combinators are recognised by their check functions, taken from the public constructors.
const combinators = new Map<unknown, (guards: Guard[]) => Guard>([
  [(and([]) as unknown as Implementation).check, (gs) => (c, e) => gs.every((g) => g(c, e))],
  [(or([]) as unknown as Implementation).check, (gs) => (c, e) => gs.some((g) => g(c, e))],
  [(not(() => true) as unknown as Implementation).check, (gs) => (c, e) => !gs[0]!(c, e)],
]);

/** A reference's parameters: none, a value, or a function of the context and event at that point. */
const paramsOf = (ref: Reference): ((context: PodContext, event: PodMachineEvent) => unknown) => {
  const params = typeof ref === 'object' ? ref.params : undefined;
  return typeof params === 'function' ? (context, event) => params({ context, event }) : () => params;
};

const implementationOf = (kind: 'guards' | 'actions', ref: Reference): { name: string; impl: Reference | undefined } => {
  if (typeof ref === 'function') return { name: ref.name || '(anonymous)', impl: ref };
  const name = typeof ref === 'string' ? ref : ref.type;
  return { name, impl: implementations[kind][name] };
};

/** As xstate's evaluateGuard: a named guard, possibly parameterised, possibly a combinator of guards. */
const compileGuard = (ref: Reference): Guard => {
  const { name, impl } = implementationOf('guards', ref);
  if (impl === undefined) throw unsupported(`guard ${name}, which is not implemented`);
  if (typeof impl !== 'function') return compileGuard(impl);
  if (impl.check !== undefined) {
    const combine = combinators.get(impl.check);
    if (combine === undefined) throw unsupported(`guard ${name} (only and, or, not combine guards here)`);
    return combine((impl.guards ?? []).map(compileGuard));
  }
  const params = paramsOf(ref);
  return (context, event) => impl({ context, event }, params(context, event)) as boolean;
};

const noSpawn = (): never => {
  throw unsupported('spawning an actor in an assign');
};

/** As xstate's resolveAssign: the partial update merged into a copy of the context (spread: a third of Object.assign's time). */
const compileAssign = (ref: Reference, assignment: unknown): Assign => {
  const params = paramsOf(ref);
  const args = (context: PodContext, event: PodMachineEvent) => ({ context, event, spawn: noSpawn });
  if (typeof assignment === 'function') {
    return (context, event) => ({ ...context, ...(assignment(args(context, event), params(context, event)) as Partial<PodContext>) });
  }
  const fields = Object.entries(assignment as Record<string, unknown>);
  if (fields.every(([, value]) => typeof value !== 'function')) {
    // Only values: the update is the same every time (half the time of building it per event).
    const update = Object.fromEntries(fields) as Partial<PodContext>;
    return (context) => ({ ...context, ...update });
  }
  return (context, event) => {
    const update: Record<string, unknown> = {};
    for (const [key, value] of fields) update[key] = typeof value === 'function' ? value(args(context, event), params(context, event)) : value;
    return { ...context, ...update };
  };
};

const compileTransition = (t: Definition, root: StateNode): Transition => {
  const assigns: Assign[] = [];
  const effects: EffectName[] = [];
  for (const ref of t.actions as Reference[]) {
    const { name, impl } = implementationOf('actions', ref);
    if (typeof impl === 'function' && impl.resolve !== undefined) {
      // A built-in action: only assign has no effect outside the snapshot.
      if (impl.type !== 'xstate.assign') throw unsupported(`the built-in action ${impl.type ?? name}`);
      assigns.push(compileAssign(ref, impl.assignment));
    } else if (isEffect(name)) {
      // xstate hands every other action to the executor; step collects the effects among them.
      effects.push(name);
    }
  }
  const targets = t.target ?? [];
  if (targets.length > 1 || targets.some((s) => s.parent !== root)) throw unsupported(`the target of ${t.eventType} from ${t.source.id}`);
  const guard = t.guard === undefined ? undefined : compileGuard(t.guard as Reference);
  return { guard, target: targets[0]?.key as PodStateName | undefined, assigns, effects: Object.freeze(effects) };
};

const checkPlain = (node: StateNode): void => {
  const extra = [
    node.entry.length > 0 && 'entry actions',
    node.exit.length > 0 && 'exit actions',
    node.invoke.length > 0 && 'invoked actors',
    (node.always?.length ?? 0) > 0 && 'eventless transitions',
    node.after.length > 0 && 'delayed transitions',
    node.output !== undefined && 'output',
    [...node.transitions.keys()].some((d) => d.includes('*')) && 'wildcard events',
  ].filter((x) => x !== false);
  if (extra.length > 0) throw unsupported(`${extra.join(', ')} (state ${node.id})`);
};

const build = () => {
  const root = podMachine.root;
  checkPlain(root);
  if (root.type !== 'compound' || root.initial.actions.length > 0) throw unsupported('a root that is not a plain compound state');
  const templates = new Map<string, PodSnapshot>();
  const table = new Map<string, Map<string, Transition[]>>();
  for (const node of Object.values(root.states) as StateNode[]) {
    checkPlain(node);
    if (node.type !== 'atomic' && node.type !== 'final') throw unsupported(`the ${node.type} state ${node.id}`);
    // xstate's own snapshot of the state (value, tags, status); each step copies it with its context.
    templates.set(node.key, podMachine.resolveState({ value: node.key, context: {} as PodContext }));
    const row = new Map<string, Transition[]>();
    for (const source of [node, root]) {
      for (const [type, transitions] of source.transitions) {
        row.set(type, [...(row.get(type) ?? []), ...transitions.map((t) => compileTransition(t, root))]);
      }
    }
    table.set(node.key, row);
  }
  const initial = root.initial.target[0]?.key;
  if (initial === undefined || !templates.has(initial)) throw unsupported('an initial state that is not a state of the root');
  return { templates, table, initial: initial as PodStateName };
};

const { templates, table, initial } = build();
const NONE: readonly EffectName[] = Object.freeze([]);
const NO_TRANSITIONS: readonly Transition[] = [];

const snapshotOf = (state: PodStateName, context: PodContext): PodSnapshot => ({ ...templates.get(state)!, context }) as PodSnapshot;

type ContextFactory = (args: { input: { uuid: string }; spawn: typeof noSpawn }) => PodContext;
const contextConfig = podMachine.config.context as unknown as ContextFactory | PodContext;

/** The machine's initial snapshot, as `getInitialSnapshot` gives it. */
export const initialSnapshot = (uuid: string): PodSnapshot =>
  snapshotOf(initial, { ...(typeof contextConfig === 'function' ? contextConfig({ input: { uuid }, spawn: noSpawn }) : contextConfig) });

/** A snapshot in `state` with `context`, as `resolveState` gives it; undefined for a state the machine lacks. */
export const snapshotIn = (state: string, context: PodContext): PodSnapshot | undefined =>
  templates.has(state) ? snapshotOf(state as PodStateName, context) : undefined;

/**
 * One event through the table. The first candidate whose guard passes is taken; refused, the very
 * snapshot comes back, as from xstate, which also gives it back when a transition changes neither the
 * state nor the context.
 */
export const tableStep = (snapshot: PodSnapshot, event: PodMachineEvent): TableStep => {
  const state = snapshot.value as PodStateName;
  for (const t of table.get(state)?.get(event.type) ?? NO_TRANSITIONS) {
    if (t.guard !== undefined && !t.guard(snapshot.context, event)) continue;
    let context = snapshot.context;
    for (const assign of t.assigns) context = assign(context, event);
    const target = t.target ?? state;
    const next = target === state && context === snapshot.context ? snapshot : snapshotOf(target, context);
    return { next, accepted: next !== snapshot, effects: t.effects };
  }
  return { next: snapshot, accepted: false, effects: NONE };
};
