/**
 * GET /v1/watch: the log as Server-Sent Events, live. Each event is `id: <position>`, `event: <type>`,
 * `data: <the event as JSON>`; a client that reconnects with Last-Event-ID (what EventSource sends)
 * resumes exactly after that position, so a restart of the service loses and repeats nothing. Without
 * it, `?from=` says where to start, else the stream starts at the head (live events only).
 *
 * Each connection pulls its own batches and reads the next one only once the socket has taken the
 * last one: a slow client slows its own reading, and the service buffers at most a batch for it. A
 * batch comes from the recent events the service keeps (./recent.ts) where they still hold it, else
 * from the log. Heartbeats (SSE comments) keep idle connections through proxies and tell a client the
 * service is alive; one is skipped while the client is behind.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { resolvePodUuid } from '../../../engine/resolve.js';
import { podStream } from '../../../engine/streams.js';
import type { EventStore, RecordedEvent } from '../../../store/port.js';
import { messageOf, sseMessage, type RecentEvents } from '../recent.js';
import { watchRoute } from '../schemas.js';

export interface WatchQuery {
  from?: number;
  pod?: string;
  host?: string;
  types?: string[];
}

const BATCH = 500;
/** What EventSource waits before it reconnects (its default is up to the browser). */
const RETRY_MS = 1000;

interface WatchFilter {
  streams?: string[];
  types?: string[];
  host?: string;
}

/** The SSE messages of the events after `after` that pass the filter, a batch at a time, forever. */
async function* messages(store: EventStore, recent: RecentEvents, after: number, filter: WatchFilter, signal: AbortSignal): AsyncGenerator<Buffer> {
  const { host, ...logFilters } = filter;
  const [streams, types] = [filter.streams && new Set(filter.streams), filter.types && new Set(filter.types)];
  const wanted = (e: RecordedEvent): boolean => (host === undefined || e.meta.hostId === host) && (streams?.has(e.stream) ?? true) && (types?.has(e.type) ?? true);
  let position = after;
  while (!signal.aborted) {
    const kept = recent.after(position, BATCH);
    if (kept?.length === 0) {
      await recent.wait(position, signal);
      continue;
    }
    let text: Buffer;
    if (kept !== undefined) {
      position = kept[kept.length - 1]!.event.position;
      text = Buffer.concat(kept.filter((k) => wanted(k.event)).map(messageOf));
    } else {
      // Behind what is kept: a batch from the log, as readBatches reads one (the head first).
      const head = await store.headPosition();
      const batch = await store.readAll({ ...logFilters, after: position, limit: BATCH });
      position = batch.length > 0 ? batch[batch.length - 1]!.position : Math.max(position, head);
      text = Buffer.from(batch.filter(wanted).map(sseMessage).join(''));
    }
    if (text.length > 0) yield text;
  }
}

/** Resolves when the socket has taken what it was given, or is gone, or the watch ends. */
const drained = (res: ServerResponse, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    // A response already gone emits neither 'drain' nor 'close' again.
    if (res.destroyed || res.writableEnded || signal.aborted) return resolve();
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done);
  });

/** The open streams, each ended by its function (the service's close ends them all). */
export type Watchers = Set<() => void>;

export const watchRoutes = (app: FastifyInstance, store: EventStore, recent: RecentEvents, watchers: Watchers, heartbeatMs: number, log: (line: string) => void): void => {
  app.get<{ Querystring: WatchQuery }>('/v1/watch', { schema: watchRoute }, async (request, reply) => {
    const q = request.query;
    const lastEventId = request.headers['last-event-id'];
    // EventSource resends Last-Event-ID on every reconnect, with the URL it first used: the header wins.
    const after = typeof lastEventId === 'string' ? Number(lastEventId) : (q.from ?? (await store.headPosition()));
    const filter: WatchFilter = {
      ...(q.pod === undefined ? {} : { streams: [podStream(await resolvePodUuid(store, q.pod))] }),
      ...(q.types === undefined ? {} : { types: q.types.flatMap((t) => t.split(',')).filter((t) => t !== '') }),
      ...(q.host === undefined ? {} : { host: q.host }),
    };
    const res = reply.hijack().raw;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write(`retry: ${RETRY_MS}\n\n`);
    const abort = new AbortController();
    const end = (): void => abort.abort();
    watchers.add(end);
    res.on('close', end);
    // A client gone while the query was answered (before 'close' was listened for) is gone for good.
    if (res.destroyed || request.raw.socket.destroyed) end();
    // Not keeping the process alive: a service told to stop exits even while a watcher is slow to end.
    const heartbeat = setInterval(() => {
      if (!res.writableNeedDrain) res.write(': heartbeat\n\n');
    }, heartbeatMs).unref();
    const pump = async (): Promise<void> => {
      for await (const text of messages(store, recent, after, filter, abort.signal)) {
        if (abort.signal.aborted) return;
        if (!res.write(text)) await drained(res, abort.signal);
      }
    };
    pump()
      .catch((e: unknown) => log(`watch: ${(e as Error).message}`))
      .finally(() => {
        clearInterval(heartbeat);
        watchers.delete(end);
        res.end();
      });
    return reply;
  });
};
