/**
 * `watch()`: pod state changes as an rxjs Observable, from any position of the log, then live.
 *
 * rxjs has no backpressure: `watch()` is for observers that react to states (dashboards, `podlog
 * events --follow`, waiting for a pod to exit). A consumer that must not miss or drop anything and
 * may be slow (an exporter, a projection) should use `consume()` from ./subscribe.js, which pulls
 * batches and moves a stored checkpoint only after each batch is handled.
 *
 * @module
 */
import { Observable } from 'rxjs';
import type { PodStateName } from '../../machines/pod.js';
import { foldPod, initialPod, stateOf, step, toMachineEvent, type PodSnapshot } from '../engine/fold.js';
import { POD_STREAM_PREFIX, podStream, uuidOfStream } from '../engine/streams.js';
import type { EventStore, RecordedEvent } from '../store/port.js';
import { readBatches, whenReachable } from './subscribe.js';

/** One pod moving from one machine state to another, and the event that moved it. */
export interface PodStateChange {
  /** The pod's full UUID. */
  pod: string;
  /** The host the pod is on (absent for a pod from before podlog recorded hosts). */
  host?: string;
  /** The state before the event (the machine's name for it: `prepared`, not rkt's `Prepared`). */
  from: PodStateName;
  /** The state after it; never equal to `from` (events that change no state are not changes). */
  to: PodStateName;
  /** The event that caused the change. */
  event: string;
  /** The event's version in the pod's stream. */
  version: number;
  /** The event's global position in the log: a later `watch` with `fromPosition` this resumes after it. */
  position: number;
  /** When the event was recorded (ISO 8601). */
  time: string;
}

/** Where a {@link watch} starts and which pods it sees. */
export interface WatchOptions {
  /** Changes caused by events after this global position (default 0: the whole history). */
  fromPosition?: number;
  /** Only this pod (a full UUID). */
  pod?: string;
  /** Only the pods of this host (a log shared by hosts; default: every host's). */
  host?: string;
  /** Events read from the log at a time (default 500). */
  batchSize?: number;
}

/** The pod's state just before `e`: folded from its stream when the watch starts mid-history. */
const stateBefore = async (store: EventStore, e: RecordedEvent): Promise<PodSnapshot> => {
  const uuid = uuidOfStream(e.stream);
  if (e.version === 1) return initialPod(uuid);
  return foldPod(initialPod(uuid), await store.readStream(e.stream, { to: e.version - 1 }));
};

/**
 * Pod state changes from `fromPosition` on: the history first (each pod's state folded from its stream
 * where the watch starts in the middle of it), then live, as any process appends. The Observable never
 * completes by itself; unsubscribing stops the reading. A store that cannot be reached for a while
 * (ESTORE_UNAVAILABLE) is read again until it answers; any other error of the store or of the fold (a
 * `PodlogError` such as EUNKNOWN_EVENT for an event type this podlog does not know) ends the
 * Observable with that error.
 *
 * @param store - The log, e.g. an `openStage0` session's `store`.
 */
export const watch = (store: EventStore, options: WatchOptions = {}): Observable<PodStateChange> =>
  new Observable<PodStateChange>((subscriber) => {
    const abort = new AbortController();
    const states = new Map<string, PodSnapshot>();
    const filter = options.pod === undefined ? { streamPrefix: POD_STREAM_PREFIX } : { streams: [podStream(options.pod)] };
    (async () => {
      const batches = readBatches(store, { ...filter, after: options.fromPosition ?? 0, batchSize: options.batchSize ?? 500, signal: abort.signal });
      for await (const batch of batches) {
        for (const e of batch) {
          const before = states.get(e.stream) ?? (await whenReachable(() => stateBefore(store, e), abort.signal));
          const { next } = step(before, toMachineEvent(e));
          states.set(e.stream, next);
          const [from, to] = [stateOf(before), stateOf(next)];
          const { host } = next.context;
          if (from !== to && !subscriber.closed && (options.host === undefined || host === options.host)) {
            subscriber.next({ pod: uuidOfStream(e.stream), ...(host === undefined ? {} : { host }), from, to, event: e.type, version: e.version, position: e.position, time: e.meta.time });
          }
        }
      }
    })().catch((err: unknown) => {
      if (!abort.signal.aborted) subscriber.error(err);
    });
    return () => abort.abort();
  });
