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
import { WrongExpectedVersion, type AppendResult, type EventStore, type ExpectedVersion, type NewEvent, type RecordedEvent } from '../store/port.js';
import { crashPoint, injectedFailure } from './faults.js';
import type { EffectInput, EffectInterpreter, Outcome } from './effects.js';
import { otherHostsPod, ownsPod } from './hosts.js';
import { foldPod, initialPod, machineEvent, rktStateOf, stateOf, step, type PodSnapshot } from './fold.js';
import { POD_LIST, POD_LIST_SCHEMA, rowSnapshot, type PodRow } from './pod-list.js';
import { podStream } from './streams.js';

/** A pod as its log folds: its machine state, snapshot and context, and the stream version that was read. */
export interface PodView {
  /** The pod's UUID. */
  uuid: string;
  /** Stream version the view was folded to (0: the pod does not exist). */
  version: number;
  /** The pod machine's snapshot after the fold (its tags are rkt's predicates). */
  snapshot: PodSnapshot;
  /** The pod machine's state after the fold (RKT_STATE_NAMES has rkt's names). */
  state: PodStateName;
  /** What the pod's events recorded of it. */
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

/**
 * What an append recorded: the pod after it, the events as stored, and the effects the last event's
 * transition asks for (the outcomes appended before an intent ask for none).
 */
export interface Recorded {
  view: PodView;
  events: RecordedEvent[];
  effects: readonly EffectName[];
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
  request<T extends PodEventType>(uuid: string, type: T, data: PodEventData[T], input?: EffectInput): Promise<PodView> {
    return this.requestAll(uuid, [{ type, data, input } as Step]);
  }

  /**
   * Steps one after another, as `request` each, with one commit fewer per step: a step's event is
   * appended together with the outcomes of the step before it. Each intent is still durable before its
   * effect runs; an outcome becomes durable with the next intent, before the next effect, which is what
   * the reconciler needs (a crash in between leaves the intent open, as a crash before its own commit
   * did). A step that is no intent (PodPrepared) is simply recorded with the last outcomes. The first
   * failure is recorded alone (EffectFailed) and thrown; the steps after it are not recorded.
   */
  async requestAll(uuid: string, steps: Step[]): Promise<PodView> {
    let view: PodView | undefined;
    let answer: { intent: RecordedEvent; outcomes: Outcome[] } | undefined;
    for (const next of steps) {
      const recorded: Recorded = answer === undefined ? await this.append(uuid, [next]) : await this.answerThen(uuid, answer, next);
      answer = undefined;
      view = recorded.view;
      next.recorded?.();
      const intent = recorded.events.at(-1);
      if (intent === undefined || POD_EVENTS[next.type].kind !== 'intent') continue;
      crashPoint(`after-intent:${next.type}`);
      for (const [i, effect] of recorded.effects.entries()) {
        const { outcomes, failure } = await this.perform(effect, uuid, intent, view.context, next.input);
        // The last effect's outcomes wait for the next step's event, unless the effect failed.
        if (failure === undefined && i === recorded.effects.length - 1) {
          answer = { intent, outcomes };
          break;
        }
        view = (await this.record(uuid, outcomes, { intent })).view;
        if (failure !== undefined) throw failure;
      }
    }
    if (answer !== undefined) view = (await this.record(uuid, answer.outcomes, { intent: answer.intent })).view;
    if (view === undefined) throw new PodlogError('EINTERNAL', `no step to request for pod ${uuid}`);
    return view;
  }

  /** Runs one effect, turning its failure into the EffectFailed outcome to record. */
  private async perform(effect: EffectName, uuid: string, intent: RecordedEvent, pod: PodContext, input?: EffectInput): Promise<{ outcomes: Outcome[]; failure?: unknown }> {
    let result: { outcomes: Outcome[]; failure?: unknown };
    try {
      injectedFailure(effect);
      result = { outcomes: await this.effects.run({ effect, uuid, intent, pod, ...(input === undefined ? {} : { input }) }) };
    } catch (e) {
      result = { outcomes: [{ type: 'EffectFailed', data: failureData(effect, e) }], failure: e };
    }
    crashPoint(`after-effect:${effect}`);
    return result;
  }

  /**
   * An intent's outcomes and the next step in one append. Where the machine refuses the two together
   * (something observed in the meantime closed the intent), they are recorded as `record` and `append`
   * record them apart, so that the refusal is the one a separate step would meet.
   */
  private async answerThen(uuid: string, answer: { intent: RecordedEvent; outcomes: Outcome[] }, next: Step): Promise<Recorded> {
    // The crash points of both events that this one commit records (see `record`).
    for (const event of [answer.outcomes[0], next]) if (event !== undefined && POD_EVENTS[event.type].kind === 'outcome') crashPoint(`before-outcome:${event.type}`);
    try {
      return await this.append(uuid, [...answer.outcomes.map((o) => ({ ...o, causationId: answer.intent.meta.id })), next]);
    } catch (e) {
      if (!isPodlogError(e) || e.code !== 'EWRONG_STATE') throw e;
      await this.record(uuid, answer.outcomes, { intent: answer.intent });
      return this.append(uuid, [next]);
    }
  }

  /**
   * Records events for many pods in one commit (the store's appendMany): what gc marks and deletes.
   * Each pod's events are asked of its machine as `record` asks them; a pod whose machine refuses
   * them gets its error in its place in the result and is left out of the commit, and a pod whose
   * events answer an intent that something else closed meanwhile is left out without error (as
   * `record` does). On a conflict every pod is folded again and asked again.
   */
  async recordMany(batch: Array<{ uuid: string; events: Outcome[]; intent?: RecordedEvent }>): Promise<Array<Recorded | PodlogError>> {
    if (new Set(batch.map((b) => b.uuid)).size !== batch.length) throw new PodlogError('EINTERNAL', 'a batch names a pod twice: each pod is one stream of one commit');
    for (let attempt = 0; ; attempt++) {
      const asked = await Promise.all(
        batch.map(async ({ uuid, events, intent }): Promise<Asked | PodlogError | Recorded> => {
          const view = await this.load(uuid);
          try {
            return { view, ...this.ask(view, events.map((e) => ({ ...e, causationId: intent?.meta.id }))) };
          } catch (e) {
            if (!isPodlogError(e)) throw e;
            if (intent !== undefined && e.code === 'EWRONG_STATE' && view.context.pending?.version !== intent.version) return { view, events: [], effects: [] };
            return e;
          }
        }),
      );
      const appending = asked.filter((a): a is Asked => !(a instanceof PodlogError) && 'snapshot' in a);
      stampConflicts(appending[0]?.events, attempt);
      try {
        const results = await this.store.appendMany(appending.map((a) => ({ stream: podStream(a.view.uuid), events: a.events, expected: expectedOf(a.view) })));
        const done = new Map(appending.map((a, i) => [a, recordedOf(a, results[i]!)]));
        return asked.map((a) => (a instanceof PodlogError || !('snapshot' in a) ? a : done.get(a)!));
      } catch (e) {
        if (!(e instanceof WrongExpectedVersion) || attempt >= MAX_CONFLICT_RETRIES) throw conflictError(e, batch.length === 1 ? `pod ${batch[0]!.uuid}` : `a batch of ${batch.length} pods`, attempt);
      }
    }
  }

  /**
   * Asks for an effect of many pods: their intents in one commit, the effects a few at a time, and
   * all their outcomes in one more commit. Each pod's result is its view after its outcomes, or the
   * error that stopped it (the machine's refusal, or its effect's failure, recorded as EffectFailed).
   */
  async requestMany<T extends PodEventType>(uuids: string[], type: T, data: PodEventData[T], input?: EffectInput): Promise<Array<PodView | Error>> {
    const intents = await this.recordMany(uuids.map((uuid) => ({ uuid, events: [{ type, data } as Outcome] })));
    if (intents.some((r) => !(r instanceof PodlogError))) crashPoint(`after-intent:${type}`);
    const performed = await inBatches(intents, EFFECTS_AT_ONCE, async (r) => {
      if (r instanceof PodlogError) return r;
      const intent = r.events[0]!;
      const answer: { uuid: string; intent: RecordedEvent; outcomes: Outcome[]; failure?: unknown } = { uuid: r.view.uuid, intent, outcomes: [] };
      // As requestAll: the first failure ends the pod's effects, its EffectFailed after what came before.
      for (const effect of r.effects) {
        const { outcomes, failure } = await this.perform(effect, r.view.uuid, intent, r.view.context, input);
        answer.outcomes.push(...outcomes);
        if (failure !== undefined) return { ...answer, failure };
      }
      return answer;
    });
    const answered = performed.filter((p): p is Exclude<typeof p, PodlogError> => !(p instanceof PodlogError));
    // The crash points `record` would meet, once each: the first outcome of each pod's answer.
    for (const first of new Set(answered.flatMap((p) => p.outcomes.slice(0, 1).map((o) => o.type)))) {
      if (POD_EVENTS[first].kind === 'outcome') crashPoint(`before-outcome:${first}`);
    }
    const recorded = await this.recordMany(answered.map(({ uuid, outcomes, intent }) => ({ uuid, events: outcomes, intent })));
    const byUuid = new Map(answered.map((p, i) => [p.uuid, recorded[i]!]));
    return performed.map((p) => {
      if (p instanceof PodlogError) return p;
      if (p.failure !== undefined) return p.failure instanceof Error ? p.failure : new Error(String(p.failure));
      const r = byUuid.get(p.uuid)!;
      return r instanceof PodlogError ? r : r.view;
    });
  }

  private async append(uuid: string, steps: Array<Outcome & { causationId?: string | undefined }>, causationId?: string): Promise<Recorded> {
    for (let attempt = 0; ; attempt++) {
      const view = await this.load(uuid);
      const asked = { view, ...this.ask(view, steps.map((e) => ({ ...e, causationId: e.causationId ?? causationId }))) };
      stampConflicts(asked.events, attempt);
      try {
        return recordedOf(asked, await this.store.append(podStream(uuid), asked.events, expectedOf(view)));
      } catch (e) {
        if (!(e instanceof WrongExpectedVersion) || attempt >= MAX_CONFLICT_RETRIES) throw conflictError(e, `pod ${uuid}`, attempt, steps);
      }
    }
  }

  /** The host this engine records for: it records nothing of another host's pods (src/engine/hosts.ts). */
  get hostId(): string {
    return this.ctx.hostId;
  }

  /** The pod's machine asked for `steps` in order from `view`: the events to append and what they lead to. */
  private ask(view: PodView, steps: Array<Outcome & { causationId?: string | undefined }>): Omit<Asked, 'view'> {
    if (!ownsPod(this.ctx.hostId, view.context)) throw otherHostsPod(view.uuid, view.context.host);
    let snapshot = view.snapshot;
    let effects: readonly EffectName[] = [];
    const events = steps.map(({ type, data, causationId }, i) => {
      const meta = newMetadata(this.ctx, causationId);
      const result = step(snapshot, machineEvent(type, data as never, meta.time, view.version + 1 + i));
      if (!result.accepted) throw rejection(viewOf(view.uuid, view.version + i, snapshot), type);
      snapshot = result.next;
      effects = result.effects;
      return { type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta };
    });
    return { events, snapshot, effects };
  }
}

/**
 * One step of `requestAll`: an intent (with what its effect needs outside the log), or an event to
 * record; `recorded` is called once its event is committed, before its effect runs.
 */
export type Step = { [T in PodEventType]: { type: T; data: PodEventData[T]; input?: EffectInput; recorded?: () => void } }[PodEventType];

/** A pod's events, asked of its machine and ready to append. */
interface Asked {
  view: PodView;
  events: NewEvent[];
  snapshot: PodSnapshot;
  effects: readonly EffectName[];
}

/** How many pods' effects `requestMany` runs at once (each a thread of the addon's or a stage1 process). */
const EFFECTS_AT_ONCE = 4;

/**
 * The appends this commit lost to other writers before it (WrongExpectedVersion, then re-folded and asked
 * again), on its first event: the log alone then tells how contended a fleet's writes are (api-service's
 * podlog_store_conflicts_total).
 */
const stampConflicts = (events: NewEvent[] | undefined, attempt: number): void => {
  if (attempt > 0 && events?.[0] !== undefined) events[0].meta.conflicts = attempt;
};

const expectedOf = (view: PodView): ExpectedVersion => (view.version === 0 ? 'no_stream' : view.version);

const recordedOf = ({ view, events, snapshot, effects }: Asked, { version, position }: AppendResult): Recorded => {
  const stream = podStream(view.uuid);
  const first = version - events.length + 1;
  const recorded = events.map((e, i) => ({ ...e, stream, version: first + i, position: position - events.length + 1 + i }));
  return { view: viewOf(view.uuid, version, snapshot), events: recorded, effects };
};

const conflictError = (e: unknown, what: string, attempt: number, steps?: Outcome[]): unknown =>
  e instanceof WrongExpectedVersion
    ? new PodlogError('ECONFLICT', `${what} kept changing under ${steps ? steps.map((o) => o.type).join(', ') : 'its events'} (${attempt + 1} conflicts); try again`, { cause: e })
    : e;

/** `fn` over `items`, at most `limit` at a time, results in order. */
const inBatches = async <T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> => {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
};

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
