/**
 * The service's one reader of the whole log: it hands every batch, in order, to what the service
 * keeps from the log (the pod table, the metrics). `ready` resolves once the log's head at start is
 * handled (the service answers no request before), `done` when the signal ends the live tail, and
 * rejects if reading fails.
 */
import { readBatches } from '../subscribe.js';
import type { EventStore, RecordedEvent } from '../../store/port.js';

/** Large batches: the first pass reads the whole log. */
const BATCH = 5000;

export interface Tail {
  ready: Promise<void>;
  done: Promise<void>;
}

export const tailLog = (store: EventStore, handle: (batch: RecordedEvent[]) => Promise<void>, signal: AbortSignal): Tail => {
  let position = 0;
  const read = async (stopAtHead: boolean): Promise<void> => {
    for await (const batch of readBatches(store, { after: position, batchSize: BATCH, stopAtHead, signal })) {
      await handle(batch);
      position = batch[batch.length - 1]!.position;
    }
  };
  const ready = read(true);
  return { ready, done: ready.then(() => read(false)) };
};
