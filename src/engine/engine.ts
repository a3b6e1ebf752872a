/**
 * The command engine: load → fold → ask the machine → append the intent with the expected version →
 * run the effect → append the outcome. Optimistic concurrency throughout: an append that finds the
 * stream moved re-folds and asks the machine again, so two processes acting on one pod never record
 * a transition the machine would not allow.
 */
import type { PodContext, PodStateName } from '../../machines/pod.js';
import { POD_EVENTS, type EffectName, type PodEventData, type PodEventType } from '../events/catalogue.js';
import { newMetadata, type CommandContext } from '../events/metadata.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { WrongExpectedVersion, type EventStore, type RecordedEvent } from '../store/port.js';
import { crashPoint, injectedFailure } from './faults.js';
import type { EffectInput, EffectInterpreter, Outcome } from './effects.js';
import { foldPod, initialPod, machineEvent, rktStateOf, stateOf, step, type PodSnapshot } from './fold.js';
import { POD_LIST, POD_LIST_SCHEMA, rowSnapshot, type PodRow } from './pod-list.js';
import { podStream } from './streams.js';

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
  PodManifestWriteRequested: 'write the manifest of',
  ImageRenderRequested: 'render an image for',
  OverlayPrepareRequested: 'prepare the overlay of',
  Stage1StartRequested: 'run',
  StopRequested: 'stop',
  PodMarkedGarbage: 'mark as garbage',
  GcRequested: 'delete',
};

const MAX_CONFLICT_RETRIES = 20;

/** What an append recorded: the pod after it, the events as stored, the effects their transitions ask for. */
export interface Recorded {
  view: PodView;
  events: RecordedEvent[];
  effects: EffectName[];
}

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
   * Records what needs no effect (decisions, observations, the outcomes of an intent) in one atomic
   * append: the machine must accept the events in order from the pod's current state, re-folded and
   * re-asked on every conflict. With `intent`, the events answer that intent: they are caused by it,
   * and they are not recorded (the pod is returned as it is) when something observed in the meantime
   * already closed it, such as a stop whose pod exited before the stop's own outcome was recorded.
   */
  async record(uuid: string, events: Outcome[], options: { intent?: RecordedEvent } = {}): Promise<Recorded> {
    const { intent } = options;
    if (events.length === 0) return { view: await this.load(uuid), events: [], effects: [] };
    if (POD_EVENTS[events[0]!.type].kind === 'outcome') crashPoint(`before-outcome:${events[0]!.type}`);
    if (intent === undefined) return this.append(uuid, events);
    try {
      return await this.append(uuid, events, intent.meta.id);
    } catch (e) {
      const view = await this.load(uuid);
      if (isPodlogError(e) && e.code === 'EWRONG_STATE' && view.context.pending?.version !== intent.version) {
        return { view, events: [], effects: [] };
      }
      throw e;
    }
  }

  /**
   * Asks for an effect: records the intent, runs the effect the machine names for it, and records its
   * outcomes. `input` is what the effect needs that must never enter the log (the environment values of
   * a pod manifest, the mount table gc read once): an effect that needs it cannot be redone after a crash,
   * so the reconciler compensates it. An effect that throws is recorded as EffectFailed and the error is
   * rethrown to the caller.
   */
  async request<T extends PodEventType>(uuid: string, type: T, data: PodEventData[T], input?: EffectInput): Promise<PodView> {
    const { view, events, effects } = await this.append(uuid, [{ type, data } as Outcome]);
    const intent = events[0]!;
    crashPoint(`after-intent:${type}`);
    let current = view;
    for (const effect of effects) {
      let outcomes: Outcome[];
      let failure: unknown;
      try {
        injectedFailure(effect);
        outcomes = await this.effects.run({ effect, uuid, intent, pod: current.context, ...(input === undefined ? {} : { input }) });
      } catch (e) {
        failure = e;
        outcomes = [{ type: 'EffectFailed', data: failureData(effect, e) }];
      }
      crashPoint(`after-effect:${effect}`);
      current = (await this.record(uuid, outcomes, { intent })).view;
      if (failure !== undefined) throw failure;
    }
    return current;
  }

  private async append(uuid: string, outcomes: Outcome[], causationId?: string): Promise<Recorded> {
    const stream = podStream(uuid);
    for (let attempt = 0; ; attempt++) {
      const view = await this.load(uuid);
      let snapshot = view.snapshot;
      const effects: EffectName[] = [];
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
