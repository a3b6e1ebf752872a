/**
 * Catch-up subscriptions over the whole log: from a position, through history in batches, then live
 * (including events other processes append). This is a pull loop: the next batch is read only when
 * the consumer has finished with the previous one, so a slow consumer slows the reading instead of
 * buffering without limit.
 */
import { isPodlogError, PodlogError } from '../errors.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../store/port.js';

export interface BatchOptions extends Omit<ReadAllOptions, 'after' | 'limit' | 'metadata'> {
  /** Start after this global position (default 0: the whole log). */
  after?: number;
  batchSize?: number;
  /** Stop when the log's head is reached instead of waiting for new events. */
  stopAtHead?: boolean;
  signal?: AbortSignal;
}

/** Waits between reads of a store that cannot be reached: doubling from the first, up to the last. */
const UNAVAILABLE_RETRY_MS = { first: 100, max: 2000 };

/**
 * Batches of events after `after`, in position order: history first, then live. A live subscription
 * outlasts a store that cannot be reached for a while (a PostgreSQL restart): it reads again until the
 * store answers and resumes after the last position it yielded, so nothing is lost or seen twice. A read
 * that stops at the head fails at once instead: it is a command waiting for an answer.
 */
export async function* readBatches(store: EventStore, options: BatchOptions = {}): AsyncGenerator<RecordedEvent[]> {
  const { after = 0, batchSize = 500, stopAtHead = false, signal, ...filters } = options;
  let position = after;
  let retryMs = UNAVAILABLE_RETRY_MS.first;
  while (!signal?.aborted) {
    let head: number;
    let batch: RecordedEvent[];
    try {
      // The head is read first: if the filtered read finds nothing, nothing up to the head matches.
      head = await store.headPosition();
      batch = await store.readAll({ ...filters, after: position, limit: batchSize });
    } catch (e) {
      if (stopAtHead || !isPodlogError(e) || e.code !== 'ESTORE_UNAVAILABLE') throw e;
      await sleep(retryMs, signal);
      retryMs = Math.min(retryMs * 2, UNAVAILABLE_RETRY_MS.max);
      continue;
    }
    retryMs = UNAVAILABLE_RETRY_MS.first;
    if (batch.length > 0) {
      position = batch[batch.length - 1]!.position;
      yield batch;
      continue;
    }
    position = Math.max(position, head);
    if (stopAtHead) return;
    await store.waitForChange(position, signal ?? new AbortController().signal);
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
    const saved = await store.saveProjection({ name: projection, schema: 'checkpoint', expectedCheckpoint: checkpoint, checkpoint: next, upserts: new Map() });
    if (!saved) throw new PodlogError('ECONSUMER', `another consumer named ${name} moved its checkpoint; run one consumer per name`);
    checkpoint = next;
  }
};
