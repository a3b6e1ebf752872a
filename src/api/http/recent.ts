/**
 * The log's latest events, in memory, each serialised and encoded once as its SSE message: the watchers near the
 * head (nearly all of them, nearly always) read their next batch from here instead of each querying
 * and parsing the log and serialising every event again. A watcher further behind than what is kept
 * reads the log itself. The service's tail (./tail.ts) pushes every event it reads, in order.
 */
import type { RecordedEvent } from '../../store/port.js';

export interface RecentEvent {
  event: RecordedEvent;
  /** `id:`, `event:` and `data:` lines, as /v1/watch sends it: made by the first watcher that reads it. */
  message?: Buffer;
}

export const messageOf = (k: RecentEvent): Buffer => (k.message ??= Buffer.from(sseMessage(k.event)));

export const sseMessage = ({ stream, version, position, type, schema, data, meta }: RecordedEvent): string =>
  `id: ${position}\nevent: ${type}\ndata: ${JSON.stringify({ stream, version, position, type, schema, data, meta })}\n\n`;

export class RecentEvents {
  private kept: RecentEvent[] = [];
  /** Position of the last event pushed before the first one kept: events after it are all here. */
  private base = 0;
  private head = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly capacity: number) {}

  push(batch: RecordedEvent[]): void {
    if (batch.length === 0) return;
    for (const event of batch) this.kept.push({ event });
    this.head = batch[batch.length - 1]!.position;
    if (this.kept.length > this.capacity * 2) {
      // Trimmed by halves: a copy per `capacity` events pushed, not per batch.
      const dropped = this.kept.length - this.capacity;
      this.base = this.kept[dropped - 1]!.event.position;
      this.kept = this.kept.slice(dropped);
    }
    for (const wake of [...this.waiters]) wake();
  }

  /** Up to `limit` events after `position`, or undefined where some of them may no longer be kept. */
  after(position: number, limit: number): RecentEvent[] | undefined {
    if (position < this.base) return undefined;
    // Positions increase: a binary search for the first event after `position`.
    let [lo, hi] = [0, this.kept.length];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.kept[mid]!.event.position <= position) lo = mid + 1;
      else hi = mid;
    }
    return this.kept.slice(lo, lo + limit);
  }

  /** Resolves once an event after `position` has been pushed, or the signal aborts. */
  wait(position: number, signal: AbortSignal): Promise<void> {
    if (this.head > position || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        if (this.head <= position && !signal.aborted) return;
        this.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', wake);
    });
  }
}
