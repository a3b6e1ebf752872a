/**
 * Wake-ups for the PostgreSQL event store's waitForChange: one dedicated connection LISTENs on the log's
 * channel, whose NOTIFY payload is the new head position; waiters behind it are woken, and re-read.
 *
 * - The connection is opened on the first wait and kept until close (reconnecting costs a round trip each).
 * - A waiter is registered only once LISTEN is active, and then checks the head: a commit before that check
 *   is seen by it, a commit after it sends a notification to a connection that already listens. So nothing
 *   is missed and nobody is woken for nothing.
 * - When the connection drops (server restart, pg_terminate_backend), the head is polled every `pollMs` while
 *   somebody waits, and the connection is reopened with a growing delay; once it LISTENs again, the head is
 *   read once more, so a commit made while nobody listened still wakes its waiters. A waiter is not woken
 *   by the outage itself: a subscriber waits through a server restart and resumes from its position.
 */
import type pg from 'pg';

interface Waiter {
  after: number;
  finish: () => void;
}

export interface ChangeListenerOptions {
  /** A new, unconnected client (the listener owns it). */
  client: () => pg.Client;
  channel: string;
  /** The log's head position, read through another connection. */
  head: () => Promise<number>;
  pollMs: number;
  /** First reconnection delay; doubled after each failure up to 5 s. */
  retryMs: number;
}

const MAX_RETRY_MS = 5000;

export class ChangeListener {
  private readonly waiters = new Set<Waiter>();
  private client: pg.Client | undefined;
  /** Resolves once LISTEN is active, or once the attempt failed (the waiters then poll). */
  private connecting: Promise<void> | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private closed = false;

  constructor(private readonly o: ChangeListenerOptions) {
    this.retryMs = o.retryMs;
  }

  /** Resolves once a position greater than `after` may exist, or the signal aborts, or on close. */
  async wait(after: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    await this.listening();
    if (signal.aborted || this.closed) return;
    let waiter: Waiter | undefined;
    const done = new Promise<void>((resolve) => {
      const onAbort = (): void => waiter!.finish();
      waiter = {
        after,
        finish: () => {
          if (!this.waiters.delete(waiter!)) return;
          signal.removeEventListener('abort', onAbort);
          if (this.waiters.size === 0) this.stopPolling();
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    if (this.client === undefined) this.startPolling();
    try {
      if ((await this.o.head()) > after) waiter!.finish();
    } catch (e) {
      waiter!.finish();
      throw e;
    }
    return done;
  }

  /** Wakes the waiters behind `head` (an append of this process calls it without waiting for NOTIFY). */
  wake(head: number): void {
    for (const w of [...this.waiters]) if (head > w.after) w.finish();
  }

  /** Resolves every waiter (a spurious wake-up: their next call reports that the store is closed). */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.waiters]) w.finish();
    this.stopPolling();
    clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined); // already broken: nothing to end
  }

  private listening(): Promise<void> {
    if (this.client !== undefined) return Promise.resolve();
    if (this.connecting === undefined) {
      this.connecting = this.connect().finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const c = this.o.client();
    // An error on this connection (it was terminated, the server stopped) ends it: listen again elsewhere.
    c.on('error', () => this.dropped(c));
    c.on('end', () => this.dropped(c));
    c.on('notification', (n) => {
      if (n.channel === this.o.channel) this.wake(Number(n.payload));
    });
    try {
      await c.connect();
      await c.query(`LISTEN "${this.o.channel}"`);
    } catch {
      await c.end().catch(() => undefined);
      this.scheduleRetry();
      return;
    }
    if (this.closed) {
      await c.end().catch(() => undefined);
      return;
    }
    this.client = c;
    this.retryMs = this.o.retryMs;
    this.stopPolling();
    if (this.waiters.size > 0) await this.catchUp();
  }

  private dropped(c: pg.Client): void {
    if (this.client !== c) return; // a failed attempt, handled by connect()
    this.client = undefined;
    if (this.closed) return;
    if (this.waiters.size > 0) this.startPolling();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.listening();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  /**
   * Reads the head and wakes whoever it passed. A failed read (the server is restarting) wakes nobody: the
   * waiters keep waiting through the outage and the next poll or reconnection tries again.
   */
  private async catchUp(): Promise<void> {
    const head = await this.o.head().catch(() => undefined);
    if (head !== undefined) this.wake(head);
  }

  private startPolling(): void {
    if (this.pollTimer !== undefined) return;
    this.pollTimer = setInterval(() => void this.catchUp(), this.o.pollMs);
  }

  private stopPolling(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }
}
