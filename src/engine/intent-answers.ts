/**
 * Which intent an outcome answers, and who answered it, read from the log in order: the one rule the
 * log's views share (the metrics' effect durations and reconciler actions, src/api/http/log-metrics.ts;
 * the timeline's reconciler marks, src/timeline/model.ts).
 *
 * An outcome's causationId is its intent's event id (src/engine/engine.ts). The command that records an
 * intent records its outcomes unless it died first, so an outcome recorded by another command (another
 * correlation id) is the reconciler's answer (src/engine/reconciler.ts): `aborted-prepare` for a
 * PrepareAborted, `compensated` where that answer holds an EffectFailed, `finished` otherwise.
 *
 * One intent of a pod is open at a time, and the reconciler aborts a preparation by answering its
 * PrepareRequested; so the intents that can still be answered are, per pod, its last intent, and its
 * PrepareRequested until the preparation ends. Only an intent's first answer counts (a preparation's
 * abort always does: it is the reconciler's answer to the preparation, whatever answered it before).
 */
import { isPodEventType, POD_EVENTS, type EffectName } from '../events/catalogue.js';
import type { RecordedEvent } from '../store/port.js';

/** How the reconciler answered an intent whose command died. */
export type ReconcilerAction = 'finished' | 'compensated' | 'aborted-prepare';

export interface AnsweredIntent {
  /** The intent's event id. */
  id: string;
  stream: string;
  /** Its time, as recorded (ISO 8601): parsed by a reader that times the answer, not for every intent read. */
  time: string;
  /** The command that recorded it. */
  correlationId: string;
  effect: EffectName;
}

/** An intent's answer: by the command that asked for the effect, or by another (the reconciler) and how. */
export type Answer = { intent: AnsweredIntent; by: 'own' } | { intent: AnsweredIntent; by: 'reconciler'; action: ReconcilerAction };

/** The events after which a pod can have no intent left to answer (a preparation's end closes PrepareRequested). */
const CLOSES_PREPARATION = new Set(['PodPrepared', 'PrepareAborted']);
const ENDS_POD = new Set(['PodDeleted', 'PodCompacted']);

interface OpenIntent extends AnsweredIntent {
  answered: boolean;
}

/** Whether the answer that batch[i] begins (the events after it of the same stream, cause and command) holds an EffectFailed. */
const answerFailed = (batch: readonly RecordedEvent[], i: number): boolean => {
  const first = batch[i]!;
  for (let j = i; j < batch.length; j++) {
    const e = batch[j]!;
    if (e.stream !== first.stream || e.meta.causationId !== first.meta.causationId || e.meta.correlationId !== first.meta.correlationId) return false;
    if (e.type === 'EffectFailed') return true;
  }
  return false;
};

/** A pod's intents that can still be answered: its PrepareRequested until the preparation ends, and its last other intent. */
interface PodIntents {
  preparation: OpenIntent | undefined;
  last: OpenIntent | undefined;
}

/** Fed a log's events in order; says of each outcome whether it is an open intent's first answer, and whose. */
export class IntentAnswers {
  /** By stream: one lookup an event (a timeline reads every event of the log through this). */
  private readonly pods = new Map<string, PodIntents>();

  /**
   * Reads batch[i], the log's next event (the events after it in the batch are read ahead: an answer's
   * EffectFailed may follow its first event). Returns the answer it is, if it answers an open intent.
   */
  read(batch: readonly RecordedEvent[], i: number): Answer | undefined {
    const e = batch[i]!;
    if (!isPodEventType(e.type)) return undefined;
    const entry = POD_EVENTS[e.type];
    let pod = this.pods.get(e.stream);
    let answer: Answer | undefined;
    if (entry.kind === 'intent') {
      if (pod === undefined) this.pods.set(e.stream, (pod = { preparation: undefined, last: undefined }));
      const intent: OpenIntent = { id: e.meta.id, stream: e.stream, time: e.meta.time, correlationId: e.meta.correlationId, effect: entry.effect!, answered: false };
      if (e.type === 'PrepareRequested') pod.preparation = intent;
      else pod.last = intent;
    } else if (entry.kind === 'outcome' && pod !== undefined && e.meta.causationId !== undefined) answer = answered(pod, e, batch, i);
    if (pod === undefined) return answer;
    if (ENDS_POD.has(e.type)) this.pods.delete(e.stream);
    else if (CLOSES_PREPARATION.has(e.type)) pod.preparation = undefined;
    return answer;
  }
}

const answered = (pod: PodIntents, e: RecordedEvent, batch: readonly RecordedEvent[], i: number): Answer | undefined => {
  const id = e.meta.causationId;
  const intent = pod.last?.id === id ? pod.last : pod.preparation?.id === id ? pod.preparation : undefined;
  if (intent === undefined) return undefined;
  if (e.meta.correlationId !== intent.correlationId) {
    if (intent.answered && e.type !== 'PrepareAborted') return undefined;
    intent.answered = true;
    return { intent, by: 'reconciler', action: e.type === 'PrepareAborted' ? 'aborted-prepare' : answerFailed(batch, i) ? 'compensated' : 'finished' };
  }
  if (intent.answered) return undefined;
  intent.answered = true;
  return { intent, by: 'own' };
};
