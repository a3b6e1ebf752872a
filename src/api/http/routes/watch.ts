/**
 * GET /v1/watch: the log as Server-Sent Events, live. Each event is `id: <position>`, `event: <type>`,
 * `data: <the event as JSON>`; a client that reconnects with Last-Event-ID (what EventSource sends)
 * resumes exactly after that position, so a restart of the service loses and repeats nothing. Without
 * it, `?from=` says where to start, else the stream starts at the head (live events only).
 *
 * Each connection pulls its own batches (readBatches) and reads the next one only once the socket has
 * taken the last one: a slow client slows its own reading, and the service buffers at most a batch
 * for it. Heartbeats (SSE comments) keep idle connections through proxies and tell a client the
 * service is alive; one is skipped while the client is behind.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { readBatches } from '../../subscribe.js';
import { resolvePodUuid } from '../../../engine/resolve.js';
import { podStream } from '../../../engine/streams.js';
import type { EventStore, RecordedEvent } from '../../../store/port.js';
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

const message = ({ stream, version, position, type, schema, data, meta }: RecordedEvent): string =>
  `id: ${position}\nevent: ${type}\ndata: ${JSON.stringify({ stream, version, position, type, schema, data, meta })}\n\n`;

/** Resolves when the socket has taken what it was given, or is gone. */
const drained = (res: ServerResponse): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });

/** The open streams, each ended by its function (the service's close ends them all). */
export type Watchers = Set<() => void>;

export const watchRoutes = (app: FastifyInstance, store: EventStore, watchers: Watchers, heartbeatMs: number, log: (line: string) => void): void => {
  app.get<{ Querystring: WatchQuery }>('/v1/watch', { schema: watchRoute }, async (request, reply) => {
    const q = request.query;
    const lastEventId = request.headers['last-event-id'];
    // EventSource resends Last-Event-ID on every reconnect, with the URL it first used: the header wins.
    const after = typeof lastEventId === 'string' ? Number(lastEventId) : (q.from ?? (await store.headPosition()));
    const filters = {
      ...(q.pod === undefined ? {} : { streams: [podStream(await resolvePodUuid(store, q.pod))] }),
      ...(q.types === undefined ? {} : { types: q.types.flatMap((t) => t.split(',')).filter((t) => t !== '') }),
    };
    const res = reply.hijack().raw;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.write(`retry: ${RETRY_MS}\n\n`);
    const abort = new AbortController();
    const end = (): void => abort.abort();
    watchers.add(end);
    res.on('close', end);
    const heartbeat = setInterval(() => {
      if (!res.writableNeedDrain) res.write(': heartbeat\n\n');
    }, heartbeatMs);
    const pump = async (): Promise<void> => {
      for await (const batch of readBatches(store, { ...filters, after, batchSize: BATCH, signal: abort.signal })) {
        const text = (q.host === undefined ? batch : batch.filter((e) => e.meta.hostId === q.host)).map(message).join('');
        if (text !== '' && !res.write(text)) await drained(res);
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
