/**
 * `watch()`: pod state changes as an rxjs Observable, from any position of the log, then live.
 *
 * rxjs has no backpressure: `watch()` is for observers that react to states (dashboards, `podlog
 * events --follow`, waiting for a pod to exit). A consumer that must not miss or drop anything and
 * may be slow (an exporter, a projection) should use `consume()` from ./subscribe.js, which pulls
 * batches and moves a stored checkpoint only after each batch is handled.
 */
import { Observable } from 'rxjs';
import type { PodStateName } from '../../machines/pod.js';
import { foldPod, initialPod, stateOf, step, toMachineEvent, type PodSnapshot } from '../engine/fold.js';
import { POD_STREAM_PREFIX, podStream, uuidOfStream } from '../engine/streams.js';
import type { EventStore, RecordedEvent } from '../store/port.js';
import { readBatches, whenReachable } from './subscribe.js';

export interface PodStateChange {
  pod: string;
  /** The host the pod is on (absent for a pod from before podlog recorded hosts). */
  host?: string;
  from: PodStateName;
  to: PodStateName;
  /** The event that caused the change. */
  event: string;
  version: number;
  position: number;
  time: string;
}

export interface WatchOptions {
  /** Changes caused by events after this global position (default 0: the whole history). */
  fromPosition?: number;
  /** Only this pod (a full UUID). */
  pod?: string;
  /** Only the pods of this host (a log shared by hosts; default: every host's). */
  host?: string;
  batchSize?: number;
}

/** The pod's state just before `e`: folded from its stream when the watch starts mid-history. */
const stateBefore = async (store: EventStore, e: RecordedEvent): Promise<PodSnapshot> => {
  const uuid = uuidOfStream(e.stream);
  if (e.version === 1) return initialPod(uuid);
  return foldPod(initialPod(uuid), await store.readStream(e.stream, { to: e.version - 1 }));
};

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
