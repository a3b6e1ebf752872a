/**
 * `podlog api-service`'s server: a read-only HTTP API over the event log (fastify, with JSON schemas
 * for validation, serialisation and the OpenAPI document at /openapi.json), a live watch as
 * Server-Sent Events, and Prometheus metrics. It reads the log and writes nothing to it.
 */
import { chmodSync, rmSync } from 'node:fs';
import swagger from '@fastify/swagger';
import fastify, { type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { PodlogError } from '../../errors.js';
import { measuredStore } from '../../metrics.js';
import type { EventStore } from '../../store/port.js';
import { presentsToken, readTokenFile } from './auth.js';
import { jsonErrors } from './errors.js';
import { claimSocket } from '../../socket-file.js';
import { isLoopback, SOCKET_MODE, type ListenAt } from './listen.js';
import { LogMetrics } from './log-metrics.js';
import { PodTable, type LocalHost } from './pod-table.js';
import { RecentEvents } from './recent.js';
import { eventRoutes } from './routes/events.js';
import { podRoutes } from './routes/pods.js';
import { watchRoutes, type Watchers } from './routes/watch.js';
import { metricsRoute } from './schemas.js';
import { tailLog } from './tail.js';

export const HEARTBEAT_MS = 15_000;
/** The latest events kept for the watchers (at most twice this many): a 10,000-event burst fits. */
export const RECENT_EVENTS = 10_000;

export interface ApiServiceOptions extends LocalHost {
  /** The log, opened by the caller (read-only is enough), closed by the caller after `close()`. */
  store: EventStore;
  listen: ListenAt;
  /** A file holding the bearer token every request must present (required for a non-loopback address). */
  tokenFile?: string;
  /** Between SSE heartbeats (default 15 s); shorter only for tests. */
  heartbeatMs?: number;
  /** How many of the latest events are kept for watchers (default 10,000); fewer only for tests. */
  recentEvents?: number;
  log?: (line: string) => void;
}

export interface ApiService {
  /** The socket path, or HOST:PORT (the port the system chose for port 0). */
  address: string;
  /** Rejects if reading the log fails (the service then serves a stale view: its runner should stop it). */
  done: Promise<void>;
  close(): Promise<void>;
}

const withAuth = (app: FastifyInstance, tokenFile: string | undefined): void => {
  if (tokenFile === undefined) return;
  const token = readTokenFile(tokenFile);
  app.addHook('onRequest', async (request, reply) => {
    if (presentsToken(token, request.headers.authorization)) return;
    await reply.code(401).header('WWW-Authenticate', 'Bearer').type('application/json').send({ error: 'this API needs Authorization: Bearer TOKEN', statusCode: 401 });
  });
};

const listenOn = async (app: FastifyInstance, at: ListenAt): Promise<string> => {
  if ('socket' in at) {
    await claimSocket(at.socket, 'an API service');
    // Created no wider than SOCKET_MODE whatever the process's umask (0 in some containers), so nobody
    // else can connect before the chmod that sets it exactly.
    const umask = process.umask(0o777 & ~SOCKET_MODE);
    try {
      await app.listen({ path: at.socket });
    } finally {
      process.umask(umask);
    }
    chmodSync(at.socket, SOCKET_MODE);
    return at.socket;
  }
  await app.listen({ host: at.host, port: at.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : at.port;
  return `${at.host.includes(':') ? `[${at.host}]` : at.host}:${port}`;
};

export const startApiService = async (o: ApiServiceOptions): Promise<ApiService> => {
  if ('host' in o.listen && !isLoopback(o.listen.host) && o.tokenFile === undefined) {
    throw new PodlogError('EUSAGE', `--listen ${o.listen.host}: an address other hosts can reach needs --token-file`);
  }
  const log = o.log ?? (() => {});
  const local: LocalHost = { dataDir: o.dataDir, hostId: o.hostId };
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const store = measuredStore(o.store, registry, { who: 'this process (an api-service only reads: it writes nothing)' });
  const table = await PodTable.load(store, local);
  const metrics = new LogMetrics(registry, table);
  const recent = new RecentEvents(o.recentEvents ?? RECENT_EVENTS);
  const stop = new AbortController();
  // The pod table first: a watcher that has seen an event finds the pods as of it.
  const tail = tailLog(store, async (batch) => {
    await table.apply(batch, stop.signal);
    metrics.observe(batch);
    recent.push(batch);
  }, stop.signal);
  tail.done.catch((e: unknown) => log(`api service: reading the log failed: ${(e as Error).message}`));
  await tail.ready;

  const app = fastify({ logger: false, forceCloseConnections: true, exposeHeadRoutes: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' } } });
  await app.register(swagger, { openapi: { openapi: '3.0.3', info: { title: 'podlog API', version: '1', description: 'A read-only view of the event log: pods, events, a live watch and metrics' } } });
  jsonErrors(app, log);
  withAuth(app, o.tokenFile);
  const watchers: Watchers = new Set();
  podRoutes(app, store, table, local);
  eventRoutes(app, store);
  watchRoutes(app, store, recent, watchers, o.heartbeatMs ?? HEARTBEAT_MS, log);
  app.get('/metrics', { schema: metricsRoute }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  let address: string;
  try {
    address = await listenOn(app, o.listen);
  } catch (e) {
    stop.abort();
    await Promise.all([app.close(), tail.done.catch(() => undefined)]);
    throw e;
  }
  log(`api service: listening on ${address}`);
  return {
    address,
    done: tail.done,
    close: async () => {
      stop.abort();
      for (const end of watchers) end();
      await app.close();
      if ('socket' in o.listen) rmSync(o.listen.socket, { force: true });
      await tail.done.catch(() => undefined);
    },
  };
};
