/**
 * The one interface every side effect goes through. The engine records the intent, asks the
 * interpreter to perform the effect, and records the outcomes it returns; after a crash, the
 * reconciler asks it to look at the world and finish or compensate an intent nobody completed.
 * Implementations must be idempotent: an effect may be asked for again after a crash.
 */
import type { PodContext } from '../../machines/pod.js';
import type { EffectName, PodEventData, PodEventType } from '../events/catalogue.js';
import type { RecordedEvent } from '../store/port.js';

export type Outcome = { [T in PodEventType]: { type: T; data: PodEventData[T] } }[PodEventType];

/** What an effect needs that must not enter the log; see PodEngine.request. */
export interface EffectInput {
  /** writeManifest: the pod manifest, with the environment values the log never holds. */
  manifest?: unknown;
  /** deletePod: the mount table, read once for a whole gc instead of once a pod. */
  mounts?: Array<{ mountPoint: string }>;
}

export interface EffectRequest {
  effect: EffectName;
  uuid: string;
  /** The recorded intent that asked for the effect. */
  intent: RecordedEvent;
  /** The pod as it is once the intent is recorded. */
  pod: PodContext;
  /** Absent when the reconciler asks: it only has the log. */
  input?: EffectInput;
}

export interface EffectInterpreter {
  /** Performs the effect; returns the outcome events to record. Throws a PodlogError on failure. */
  run(request: EffectRequest): Promise<Outcome[]>;
  /** The intent's process died: return the outcomes that make the log true again. */
  reconcile(request: EffectRequest): Promise<Outcome[]>;
}
