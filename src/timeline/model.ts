/**
 * A timeline: each selected pod's life as the machine saw it, one slice per state it was in and marks
 * for what happened meanwhile (intents, observations, failed effects, the reconciler's answers). Built
 * from the log alone, in one pass, by folding each pod's events through the machine's transition table
 * (src/engine/pod-list.ts foldOnto): a slice starts where the fold says the state changed, never where an
 * event's name suggests it did. The renderings (trace.ts, gantt.ts, html.ts) only draw this.
 */
import type { PodStateName } from '../../machines/pod.js';
import { stateOf } from '../engine/fold.js';
import { IntentAnswers, type ReconcilerAction } from '../engine/intent-answers.js';
import { foldingFrom, foldOnto, type FoldedPod } from '../engine/pod-list.js';
import { uuidOfStream } from '../engine/streams.js';
import { isPodEventType, POD_EVENTS, type PodEventData } from '../events/catalogue.js';
import type { RecordedEvent } from '../store/port.js';

/** Who recorded an event: the engine process and the podlog verb it ran. */
export interface Recorder {
  pid: number;
  verb: string;
}

export interface StateSlice {
  state: PodStateName;
  /** Milliseconds since the epoch (the log's times have millisecond resolution). */
  start: number;
  end: number;
  /** The event that moved the pod into this state. */
  event: string;
  position: number;
  version: number;
  recorder: Recorder;
  /** The pod is still in this state: the slice ends where the timeline does (now, or --until). */
  open: boolean;
}

/**
 * intent: an effect was asked for; observation: a fact seen in the world (an exit); failure: an effect
 * failed (EffectFailed) or the history cannot be folded further; outcome: shown only when it is the
 * reconciler's answer to an intent (src/engine/intent-answers.ts); decision: not shown today.
 */
export type MarkKind = 'intent' | 'observation' | 'failure' | 'outcome' | 'decision';


export interface Mark {
  kind: MarkKind;
  type: string;
  time: number;
  position: number;
  version: number;
  recorder: Recorder;
  /** The event's own scalar fields (an exit code, the failed effect and its message, the app). */
  details: Record<string, string | number | boolean>;
  reconciler?: ReconcilerAction;
}

export interface PodLine {
  uuid: string;
  /** The host that prepared it (absent for pods from before hosts were recorded). */
  host: string | undefined;
  apps: string[];
  slices: StateSlice[];
  marks: Mark[];
  /** Its state at the end of the timeline (as list shows it: RKT_STATE_NAMES). */
  state: PodStateName;
  exitCode: number | undefined;
  /** Why its history cannot be folded past some event (the pod is drawn as far as it can be). */
  broken?: string;
}

export interface Timeline {
  pods: PodLine[];
  /** The span shown, in ms since the epoch: --since/--until, else the selected pods' first event to their end. */
  start: number;
  end: number;
}

const scalars = (data: Record<string, unknown>): Record<string, string | number | boolean> => {
  const kept: Record<string, string | number | boolean> = {};
  for (const key in data) {
    const v = data[key];
    if (key !== 'uuid' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) kept[key] = v;
  }
  return kept;
};

/** One pod being read: its fold, what is drawn of it, and the time of its last event. */
interface Reading {
  line: PodLine;
  fold: FoldedPod;
  last: number;
}

export interface BuilderOptions {
  /**
   * The host of a pod, from its first event (its PrepareRequested, or the PodCompacted of a compacted pod):
   * src/cli/event-selection.ts factsOf, which events and status read it by too.
   */
  hostOf: (first: RecordedEvent) => string | undefined;
  /** Whether a pod is drawn at all, by its host: the events of pods left out cost a set lookup. */
  keep: (host: string | undefined) => boolean;
  /** The verb of a recorded command line, as the events table names it. */
  verbOf: (command: string[]) => string;
}

/** Reads events in log order and keeps one PodLine per pod stream. */
export class TimelineBuilder {
  private readonly reading = new Map<string, Reading>();
  private readonly skipped = new Set<string>();
  private readonly recorders = new Map<string, Recorder>();
  /** The reconciler's answers, as the metrics count them. */
  private readonly answers = new IntentAnswers();

  constructor(private readonly options: BuilderOptions) {}

  /** Reads a batch of the log's events, in order (an answer's events are read together: src/engine/intent-answers.ts). */
  addBatch(batch: readonly RecordedEvent[]): void {
    for (let i = 0; i < batch.length; i++) this.add(batch, i);
  }

  private add(batch: readonly RecordedEvent[], i: number): void {
    const e = batch[i]!;
    if (this.skipped.has(e.stream)) return;
    let r = this.reading.get(e.stream);
    if (r === undefined) {
      const host = this.options.hostOf(e);
      if (!this.options.keep(host)) {
        this.skipped.add(e.stream);
        return;
      }
      const uuid = uuidOfStream(e.stream);
      r = { line: { uuid, host, apps: [], slices: [], marks: [], state: 'embryo', exitCode: undefined }, fold: foldingFrom(uuid), last: 0 };
      this.reading.set(e.stream, r);
    }
    if (r.line.broken !== undefined) return;
    const time = Date.parse(e.meta.time);
    const before = stateOf(r.fold.snapshot);
    foldOnto(r.fold, e);
    r.last = time;
    const recorder = this.recorderOf(e);
    if (r.fold.broken !== undefined) {
      r.line.broken = r.fold.broken;
      r.line.marks.push({ kind: 'failure', type: e.type, time, position: e.position, version: e.version, recorder, details: { broken: r.fold.broken } });
      return;
    }
    const after = stateOf(r.fold.snapshot);
    if (after !== before || r.line.slices.length === 0) {
      const previous = r.line.slices.at(-1);
      if (previous !== undefined) previous.end = time;
      r.line.slices.push({ state: after, start: time, end: time, event: e.type, position: e.position, version: e.version, recorder, open: false });
    }
    this.note(r, batch, i, time, recorder);
  }

  /**
   * The pods read, in the order of their first events (creation). `end` is where the timeline ends (now,
   * or --until, up to which the log was read). A pod's state at any instant is the one its last event
   * before that instant left it in, so every pod that still exists at `end` (any state but deleted,
   * finished ones too: an exited pod stays exited until a gc moves it) holds its last state until `end`:
   * its last slice is open. A deleted pod's last slice, and a broken pod's (its history cannot be folded
   * past some event, so what it was afterwards is unknown), end with its last event.
   */
  finish(end: number): PodLine[] {
    const lines: PodLine[] = [];
    for (const r of this.reading.values()) {
      const { context } = r.fold.snapshot;
      r.line.state = stateOf(r.fold.snapshot);
      r.line.exitCode = context.exitCode;
      // A pod prepared before hosts were recorded has none in its first event; its fold may (none does today).
      r.line.host ??= context.host;
      const last = r.line.slices.at(-1);
      if (last !== undefined && r.line.broken === undefined && r.line.state !== 'deleted') {
        last.open = true;
        last.end = Math.max(end, last.start);
      } else if (last !== undefined) last.end = r.last;
      lines.push(r.line);
    }
    return lines;
  }

  /** Recorders are few (one per command): one object each, shared by its events. */
  private recorderOf(e: RecordedEvent): Recorder {
    const key = e.meta.correlationId;
    let recorder = this.recorders.get(key);
    if (recorder === undefined) this.recorders.set(key, (recorder = { pid: e.meta.pid, verb: this.options.verbOf(e.meta.command) }));
    return recorder;
  }

  /** Marks what is shown of batch[i]: intents, observations, failures, and the reconciler's answers (an intent's first, or a preparation's abort). */
  private note(r: Reading, batch: readonly RecordedEvent[], i: number, time: number, recorder: Recorder): void {
    const e = batch[i]!;
    if (!isPodEventType(e.type)) return;
    const { kind } = POD_EVENTS[e.type];
    const answer = this.answers.read(batch, i);
    let shown: MarkKind | undefined;
    let reconciler: ReconcilerAction | undefined;
    if (kind === 'intent') {
      if (e.type === 'PrepareRequested') r.line.apps.push(...(e.data as PodEventData['PrepareRequested']).apps.map((a) => a.name));
      shown = 'intent';
    } else {
      if (e.type === 'AppAdded') r.line.apps.push((e.data as PodEventData['AppAdded']).app);
      if (answer?.by === 'reconciler') reconciler = answer.action;
      if (e.type === 'EffectFailed') shown = 'failure';
      else if (kind === 'observation' || reconciler !== undefined) shown = kind;
    }
    if (shown === undefined) return;
    const mark: Mark = { kind: shown, type: e.type, time, position: e.position, version: e.version, recorder, details: scalars(e.data) };
    if (reconciler !== undefined) mark.reconciler = reconciler;
    r.line.marks.push(mark);
  }
}

export interface Frame {
  /** ms since the epoch: only pods alive at some point of [since, until], drawn within it. */
  since?: number;
  until?: number;
  /** Only pods whose state at the end is one of these. */
  states?: ReadonlySet<PodStateName>;
}

const lifeOf = (p: PodLine): { start: number; end: number } | undefined => {
  const first = Math.min(p.slices[0]?.start ?? Infinity, p.marks[0]?.time ?? Infinity);
  if (first === Infinity) return undefined;
  return { start: first, end: Math.max(p.slices.at(-1)?.end ?? first, p.marks.at(-1)?.time ?? first) };
};

/**
 * The timeline of the pods in the frame: those whose lives overlap the window (a pod deleted before
 * --since is not shown; one that still existed at it, running or exited, is), in a state asked for, each
 * clipped to the window. `now` is where an empty timeline is drawn without a window.
 */
export const frameTimeline = (lines: PodLine[], frame: Frame, now: number): Timeline => {
  const since = frame.since ?? -Infinity;
  const until = frame.until ?? Infinity;
  let [start, end] = [Infinity, -Infinity];
  const pods: PodLine[] = [];
  for (const p of lines) {
    const life = lifeOf(p);
    if (life === undefined || life.end < since || life.start > until || (frame.states !== undefined && !frame.states.has(p.state))) continue;
    // Without a window every pod is drawn as read: a copy of each of a large log's 200,000 slices and
    // marks, none of them cut, was only garbage.
    if (frame.since === undefined && frame.until === undefined) pods.push(p);
    else {
      const slices = p.slices.filter((s) => s.end >= since && s.start <= until).map((s) => ({ ...s, start: Math.max(s.start, since), end: Math.min(s.end, until) }));
      pods.push({ ...p, slices, marks: p.marks.filter((m) => m.time >= since && m.time <= until) });
    }
    start = Math.min(start, life.start);
    end = Math.max(end, life.end);
  }
  // No pod: the window, else an instant (now, or --until without --since), which the chart draws no axis for.
  if (pods.length === 0) return { pods, start: frame.since ?? frame.until ?? now, end: frame.until ?? (frame.since === undefined ? now : Math.max(now, frame.since)) };
  return { pods, start: frame.since ?? start, end: frame.until ?? end };
};
