/**
 * Catch-up subscriptions over the whole log: from a position, through history in batches, then live
 * (including events other processes append). This is a pull loop: the next batch is read only when
 * the consumer has finished with the previous one, so a slow consumer slows the reading instead of
 * buffering without limit.
 */
import { PodlogError } from '../errors.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../store/port.js';

export interface BatchOptions extends Omit<ReadAllOptions, 'after' | 'limit' | 'metadata'> {
  /** Start after this global position (default 0: the whole log). */
  after?: number;
  batchSize?: number;
  /** Stop when the log's head is reached instead of waiting for new events. */
  stopAtHead?: boolean;
  signal?: AbortSignal;
}

export async function* readBatches(store: EventStore, options: BatchOptions = {}): AsyncGenerator<RecordedEvent[]> {
  const { after = 0, batchSize = 500, stopAtHead = false, signal, ...filters } = options;
  let position = after;
  while (!signal?.aborted) {
    // The head is read first: if the filtered read finds nothing, nothing up to the head matches.
    const head = await store.headPosition();
    const batch = await store.readAll({ ...filters, after: position, limit: batchSize });
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
