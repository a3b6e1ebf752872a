/**
 * The pod machine drawn from its own definition (never from a hand-kept copy): every state, every
 * transition with its event, target, guard and the effects it asks for; as JSON, Mermaid or DOT.
 */
import { podMachine, RKT_STATE_NAMES, type PodStateName } from '../../machines/pod.js';
import { POD_EVENTS, type PodEventType } from '../events/catalogue.js';
import { isEffect } from '../engine/transitions.js';

export interface GraphTransition {
  event: string;
  /** Undefined for a transition that stays in its state. */
  target?: string;
  guard?: string;
  effects: string[];
  kind: string;
}

export interface GraphState {
  name: string;
  rktName: string;
  final: boolean;
  /** rkt's predicates that hold in the state (afterRun, finished, ranAndExited). */
  tags: string[];
  transitions: GraphTransition[];
}

export interface MachineGraph {
  id: string;
  initial: string;
  states: GraphState[];
  /** Transitions every state takes (defined on the machine's root). */
  everywhere: GraphTransition[];
}

type GuardLike = string | { type?: string; params?: unknown } | { guards?: unknown[]; name?: string } | undefined;

const guardText = (guard: GuardLike): string | undefined => {
  if (guard === undefined) return undefined;
  if (typeof guard === 'string') return guard;
  if ('guards' in guard && Array.isArray(guard.guards)) return guard.guards.map((g) => guardText(g as GuardLike)).join(' and ');
  if ('type' in guard && guard.type !== undefined) {
    const params = 'params' in guard && guard.params !== undefined ? `(${Object.values(guard.params as object).join(', ')})` : '';
    return `${guard.type}${params}`;
  }
  return undefined;
};


const transitionsOf = (map: Map<string, Array<{ target?: ReadonlyArray<{ key: string }>; guard?: unknown; actions: readonly unknown[] }>>): GraphTransition[] =>
  [...map].flatMap(([event, defs]) =>
    defs.map((d) => {
      const guard = guardText(d.guard as GuardLike);
      return {
        event,
        ...(d.target?.[0] ? { target: d.target[0].key } : {}),
        ...(guard ? { guard } : {}),
        effects: d.actions.map((a) => (typeof a === 'string' ? a : ((a as { type?: string }).type ?? ''))).filter(isEffect),
        kind: POD_EVENTS[event as PodEventType]?.kind ?? 'unknown',
      };
    }),
  );

export const machineGraph = (): MachineGraph => ({
  id: podMachine.id,
  initial: podMachine.root.initial.target[0]!.key,
  states: Object.entries(podMachine.root.states).map(([name, node]) => ({
    name,
    rktName: RKT_STATE_NAMES[name as PodStateName],
    final: node.type === 'final',
    tags: [...node.tags],
    transitions: transitionsOf(node.transitions as never),
  })),
  everywhere: transitionsOf(podMachine.root.transitions as never),
});

const label = (t: GraphTransition): string =>
  `${t.event}${t.guard ? ` [${t.guard}]` : ''}${t.effects.length ? ` / ${t.effects.join(', ')}` : ''}`;

export const toMermaid = (g: MachineGraph): string => {
  const lines = ['stateDiagram-v2', `  [*] --> ${g.initial}`];
  for (const s of g.states) {
    if (s.rktName !== s.name) lines.push(`  ${s.name} : ${s.rktName}`);
    for (const t of s.transitions) lines.push(`  ${s.name} --> ${t.target ?? s.name} : ${label(t)}`);
    if (s.final) lines.push(`  ${s.name} --> [*]`);
  }
  for (const t of g.everywhere) lines.push(`  note right of ${g.initial} : in every state, ${label(t)}`);
  return `${lines.join('\n')}\n`;
};

export const toDot = (g: MachineGraph): string => {
  const q = (s: string) => JSON.stringify(s);
  const lines = [`digraph ${g.id} {`, '  rankdir=LR;', '  node [shape=box, style=rounded];', '  __start [shape=point];', `  __start -> ${g.initial};`];
  for (const s of g.states) {
    lines.push(`  ${s.name} [label=${q(s.rktName)}${s.final ? ', peripheries=2' : ''}];`);
    for (const t of s.transitions) lines.push(`  ${s.name} -> ${t.target ?? s.name} [label=${q(label(t))}];`);
  }
  if (g.everywhere.length) lines.push(`  label=${q(`in every state: ${g.everywhere.map(label).join('; ')}`)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
};
