/**
 * Catch-up subscriptions over the whole log: from a position, through history in batches, then live
 * (including events other processes append). This is a pull loop: the next batch is read only when
 * the consumer has finished with the previous one, so a slow consumer slows the reading instead of
 * buffering without limit.
 *
 * @module
 */
import { isPodlogError, PodlogError } from '../errors.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../store/port.js';

/** Where {@link readBatches} starts, what it reads and when it stops; the filters are {@link ReadAllOptions}'. */
export interface BatchOptions extends Omit<ReadAllOptions, 'after' | 'limit' | 'metadata'> {
  /** Start after this global position (default 0: the whole log). */
  after?: number;
  /** Events per batch at most (default 500). */
  batchSize?: number;
  /** Stop when the log's head is reached instead of waiting for new events. */
  stopAtHead?: boolean;
  /** Aborting it ends the subscription (the generator returns), also while it waits for new events. */
  signal?: AbortSignal;
}

/** Waits between calls to a store that cannot be reached: doubling from the first, up to the last. */
const UNAVAILABLE_RETRY_MS = { first: 100, max: 2000 };

const unreachable = (e: unknown): boolean => isPodlogError(e) && e.code === 'ESTORE_UNAVAILABLE';

/**
 * `call` until the store answers: a store that cannot be reached (ESTORE_UNAVAILABLE, a PostgreSQL
 * restart) is called again after a wait, doubling up to 2 s. Any other error, or an aborted signal, ends it.
 */
export const whenReachable = async <T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
  for (let ms = UNAVAILABLE_RETRY_MS.first; ; ms = Math.min(ms * 2, UNAVAILABLE_RETRY_MS.max)) {
    try {
      return await call();
    } catch (e) {
      if (!unreachable(e) || signal?.aborted) throw e;
      await sleep(ms, signal);
    }
  }
};

/**
 * Batches of events after `after`, in position order: history first, then live. A live subscription
 * outlasts a store that cannot be reached for a while (a PostgreSQL restart): it calls again until the
 * store answers and resumes after the last position it yielded, so nothing is lost or seen twice. A read
 * that stops at the head fails at once instead: it is a command waiting for an answer.
 */
export async function* readBatches(store: EventStore, options: BatchOptions = {}): AsyncGenerator<RecordedEvent[]> {
  const { after = 0, batchSize = 500, stopAtHead = false, signal, ...filters } = options;
  const live = <T>(call: () => Promise<T>): Promise<T> => (stopAtHead ? call() : whenReachable(call, signal));
  let position = after;
  try {
    while (!signal?.aborted) {
      const [head, batch] = await live(async () => {
        // The head is read first: if the filtered read finds nothing, nothing up to the head matches.
        const head = await store.headPosition();
        return [head, await store.readAll({ ...filters, after: position, limit: batchSize })] as const;
      });
      if (batch.length > 0) {
        position = batch[batch.length - 1]!.position;
        yield batch;
        continue;
      }
      position = Math.max(position, head);
      if (stopAtHead) return;
      await live(() => store.waitForChange(position, signal ?? new AbortController().signal));
    }
  } catch (e) {
    // Stopped while the store could not be reached: the subscription ends, as any stop ends it.
    if (!(signal?.aborted && unreachable(e))) throw e;
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });

/**
 * A consumer that must see every event exactly once per checkpoint: the handler gets each batch, and
 * only after it resolves is the checkpoint (named, stored with the log) moved past the batch. After a
 * crash, consumption resumes at the last saved checkpoint, so handlers must be idempotent for the one
 * batch that may be seen twice.
 */
export const consume = async (
  store: EventStore,
  name: string,
  handler: (batch: RecordedEvent[]) => Promise<void>,
  options: Omit<BatchOptions, 'after'> = {},
): Promise<void> => {
  const projection = `consumer:${name}`;
  let checkpoint = (await store.loadProjection(projection)).checkpoint;
  for await (const batch of readBatches(store, { ...options, after: checkpoint })) {
    await handler(batch);
    const next = batch[batch.length - 1]!.position;
    const expectedCheckpoint = checkpoint;
    // A save cut off by a restart may have committed: after one, finding the checkpoint at `next` is that.
    let cutOff = false;
    const saved = await whenReachable(async () => {
      try {
        return (
          (await store.saveProjection({ name: projection, schema: 'checkpoint', expectedCheckpoint, checkpoint: next, upserts: new Map() })) ||
          (cutOff && (await store.loadProjection(projection)).checkpoint === next)
        );
      } catch (e) {
        cutOff = true;
        throw e;
      }
    }, options.signal);
    if (!saved) throw new PodlogError('ECONSUMER', `another consumer named ${name} moved its checkpoint; run one consumer per name`);
    checkpoint = next;
  }
};
