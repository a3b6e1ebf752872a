/**
 * The command engine: load → fold → ask the machine → append the intent with the expected version →
 * run the effect → append the outcome. Optimistic concurrency throughout: an append that finds the
 * stream moved re-folds and asks the machine again, so two processes acting on one pod never record
 * a transition the machine would not allow.
 */
import type { PodContext, PodStateName } from '../../machines/pod.js';
import { POD_EVENTS, type PodEventData, type PodEventType } from '../events/catalogue.js';
import { newMetadata, type CommandContext } from '../events/metadata.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { WrongExpectedVersion, type EventStore, type RecordedEvent } from '../store/port.js';
import { crashPoint } from './faults.js';
import type { EffectInterpreter, Outcome } from './effects.js';
import { foldPod, initialPod, machineEvent, rktStateOf, stateOf, step, type PodSnapshot } from './fold.js';
import { POD_LIST, POD_LIST_SCHEMA, rowSnapshot, type PodRow } from './pod-list.js';
import { podStream, uuidOfStream } from './streams.js';

export interface PodView {
  uuid: string;
  /** Stream version the view was folded to (0: the pod does not exist). */
  version: number;
  snapshot: PodSnapshot;
  state: PodStateName;
  context: PodContext;
}

/** What a user asked for, in rkt's words, for messages: `cannot stop pod …: it is exited`. */
const VERBS: Partial<Record<PodEventType, string>> = {
  PrepareRequested: 'prepare',
  ImageRenderRequested: 'render an image for',
  OverlayPrepareRequested: 'prepare the overlay of',
  Stage1StartRequested: 'run',
  StopRequested: 'stop',
  PodMarkedGarbage: 'mark as garbage',
  GcRequested: 'delete',
};

const MAX_CONFLICT_RETRIES = 20;

export const viewOf = (uuid: string, version: number, snapshot: PodSnapshot): PodView => ({
  uuid,
  version,
  snapshot,
  state: stateOf(snapshot),
  context: snapshot.context,
});

export class PodEngine {
  constructor(
    readonly store: EventStore,
    private readonly effects: EffectInterpreter,
    private readonly ctx: CommandContext,
  ) {}

  /** The pod now: its pod list row (a snapshot) folded forward with the events after it. */
  async load(uuid: string): Promise<PodView> {
    const saved = await this.store.loadProjectionRow<PodRow>(POD_LIST, uuid);
    const row = saved?.schema === POD_LIST_SCHEMA ? saved.row : undefined;
    const events = await this.store.readStream(podStream(uuid), { from: (row?.version ?? 0) + 1 });
    const snapshot = foldPod(row ? rowSnapshot(row) : initialPod(uuid), events);
    return viewOf(uuid, events.length === 0 ? (row?.version ?? 0) : events[events.length - 1]!.version, snapshot);
  }

  /** The events of a pod's stream, for the reconciler and the inspection tools. */
  history(uuid: string): Promise<RecordedEvent[]> {
    return this.store.readStream(podStream(uuid));
  }

  /**
   * Records events the machine must accept in order from the pod's current state (decisions,
   * observations, outcomes), in one atomic append, re-folding and re-asking on every conflict.
   * Returns the new view, the recorded events and the effects their transitions ask for.
   */
  async recordAll(
    uuid: string,
    outcomes: Outcome[],
    causationId?: string,
  ): Promise<{ view: PodView; events: RecordedEvent[]; effects: ReturnType<typeof step>['effects'] }> {
    const stream = podStream(uuid);
    for (let attempt = 0; ; attempt++) {
      const view = await this.load(uuid);
      let snapshot = view.snapshot;
      const effects: ReturnType<typeof step>['effects'] = [];
      const events = outcomes.map(({ type, data }, i) => {
        const meta = newMetadata(this.ctx, causationId);
        const result = step(snapshot, machineEvent(type, data as never, meta.time, view.version + 1 + i));
        if (!result.accepted) throw rejection(viewOf(uuid, view.version + i, snapshot), type);
        snapshot = result.next;
        effects.push(...result.effects);
        return { type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta };
      });
      try {
        const { version, position } = await this.store.append(stream, events, view.version === 0 ? 'no_stream' : view.version);
        const first = version - events.length + 1;
        const recorded = events.map((e, i) => ({ ...e, stream, version: first + i, position: position - events.length + 1 + i }));
        return { view: viewOf(uuid, version, snapshot), events: recorded, effects };
      } catch (e) {
        if (!(e instanceof WrongExpectedVersion) || attempt >= MAX_CONFLICT_RETRIES) {
          throw e instanceof WrongExpectedVersion
            ? new PodlogError('ECONFLICT', `pod ${uuid} kept changing under ${outcomes.map((o) => o.type).join(', ')} (${attempt + 1} conflicts); try again`, { cause: e })
            : e;
        }
      }
    }
  }

  /** Records one event: see recordAll. */
  async record<T extends PodEventType>(uuid: string, type: T, data: PodEventData[T], causationId?: string) {
    const { view, events, effects } = await this.recordAll(uuid, [{ type, data } as Outcome], causationId);
    return { view, event: events[0]!, effects };
  }

  /**
   * Records an intent, runs the effect the machine names for it, and records the outcomes. An effect
   * that throws is recorded as EffectFailed and the error is rethrown to the caller.
   */
  async request<T extends PodEventType>(uuid: string, type: T, data: PodEventData[T]): Promise<PodView> {
    const { view, event, effects } = await this.record(uuid, type, data);
    crashPoint(`after-intent:${type}`);
    let current = view;
    for (const effect of effects) {
      let outcomes: Outcome[];
      let failure: unknown;
      try {
        outcomes = await this.effects.run({ effect, uuid, intent: event, pod: current.context });
      } catch (e) {
        failure = e;
        outcomes = [{ type: 'EffectFailed', data: failureData(effect, e) }];
      }
      crashPoint(`after-effect:${effect}`);
      current = await this.recordOutcomesOf(event, outcomes);
      if (failure !== undefined) throw failure;
    }
    return current;
  }

  /**
   * Records an intent's outcomes, unless something observed in the meantime already closed the
   * intent (a stop whose pod exited before the stop's own outcome was recorded): the outcome is then
   * moot, and recording it would be refused by the machine anyway.
   */
  private async recordOutcomesOf(intent: RecordedEvent, outcomes: Outcome[]): Promise<PodView> {
    const uuid = uuidOfStream(intent.stream);
    try {
      return await this.recordOutcomes(uuid, outcomes, intent.meta.id);
    } catch (e) {
      const view = await this.load(uuid);
      if (isPodlogError(e) && e.code === 'EWRONG_STATE' && view.context.pending?.version !== intent.version) return view;
      throw e;
    }
  }

  async recordOutcomes(uuid: string, outcomes: Outcome[], causationId: string): Promise<PodView> {
    if (outcomes.length === 0) return this.load(uuid);
    crashPoint(`before-outcome:${outcomes[0]!.type}`);
    return (await this.recordAll(uuid, outcomes, causationId)).view;
  }
}

export const failureData = (effect: PodEventData['EffectFailed']['effect'], e: unknown): PodEventData['EffectFailed'] => ({
  effect,
  code: e instanceof PodlogError ? e.code : ((e as { code?: string }).code ?? 'EFAILED'),
  message: e instanceof Error ? e.message : String(e),
});

const rejection = (view: PodView, type: PodEventType): PodlogError => {
  const verb = VERBS[type] ?? `record ${type} for`;
  if (view.version === 0 && type !== 'PrepareRequested') {
    return new PodlogError('ENOPOD', `cannot ${verb} pod ${view.uuid}: no such pod`);
  }
  const busy = view.context.pending ? `; ${view.context.pending.intent} is still in progress` : '';
  return new PodlogError('EWRONG_STATE', `cannot ${verb} pod ${view.uuid}: it is ${rktStateOf(view.snapshot)} (${type} is not allowed there${busy})`);
};
