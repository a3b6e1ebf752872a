/**
 * A Server-Sent Events client as EventSource behaves, over node:http so that it reaches a unix socket
 * too: it parses the stream, and when the connection ends it connects again after a pause, sending
 * the last event id it saw as Last-Event-ID.
 */
import { request, type ClientRequest } from 'node:http';
import type { HttpTarget } from './http.js';

export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

export class SseClient {
  readonly messages: SseMessage[] = [];
  /** SSE comments received (heartbeats). */
  comments = 0;
  /** Connections made (the first one and each reconnection that got a response). */
  connections = 0;
  /** Statuses of the responses, in order. */
  readonly statuses: number[] = [];
  lastEventId: string | undefined;
  private req: ClientRequest | undefined;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly target: HttpTarget,
    private readonly path: string,
    private readonly options: { headers?: Record<string, string>; retryMs?: number } = {},
  ) {
    this.connect();
  }

  /** Resolves once `done()` holds (checked after every message), or rejects after `timeoutMs`. */
  until(done: (c: SseClient) => boolean, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done(this)) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`SSE client: timed out after ${timeoutMs} ms with ${this.messages.length} messages`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.closed = true;
    this.req?.destroy();
  }

  private connect(): void {
    const headers = { Accept: 'text/event-stream', ...this.options.headers, ...(this.lastEventId === undefined ? {} : { 'Last-Event-ID': this.lastEventId }) };
    const req = request({ ...this.target, path: this.path, headers }, (res) => {
      this.connections++;
      this.statuses.push(res.statusCode!);
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          this.block(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      });
      res.on('close', () => this.again());
    });
    req.on('error', () => this.again());
    req.end();
    this.req = req;
  }

  private again(): void {
    if (this.closed) return;
    this.req = undefined;
    setTimeout(() => {
      if (!this.closed && this.req === undefined) this.connect();
    }, this.options.retryMs ?? 100);
  }

  private block(text: string): void {
    let [id, event, data]: [string | undefined, string, string[]] = [undefined, 'message', []];
    for (const line of text.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length === 0) {
      this.notify();
      return;
    }
    if (id !== undefined) this.lastEventId = id;
    this.messages.push({ id, event, data: data.join('\n') });
    this.notify();
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }
}
