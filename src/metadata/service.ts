/**
 * `podlog metadata-service` (rkt's verb): the appc metadata API for apps on a TCP port (18112, as
 * rkt's), and the registration API for stage0 on a unix socket only root can reach
 * (`/run/podlog/metadata-svc.sock`, mode 0600): `PUT /pods/UUID` with the pod's manifest, its apps'
 * image manifests and its addresses (answered with the apps' port), `DELETE /pods/UUID`, and
 * `GET /pods` (the registered UUIDs).
 *
 * Stage0 unregisters a pod before it releases its addresses (gc, rm); a sweep of the log drops any
 * pod whose history says it is unregistered or deleted, so a pod whose unregistration never arrived
 * (the service was busy restarting, the unregistering process died) does not keep its key.
 */
import { chmodSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { podStream } from '../engine/streams.js';
import { claimSocket } from '../socket-file.js';
import type { EventStore } from '../store/port.js';
import { appApi } from './app-api.js';
import { readBody } from './body.js';
import { isPodUuid, Registry, registrationProblem, type PodRegistration } from './registry.js';

export const DEFAULT_PORT = 18112;
const MAX_REGISTRATION = 16 << 20;

export interface ServiceOptions {
  socket: string;
  port: number;
  host: string;
  /** Opens the log whose pods register (a read-only view, each sweep: it may not exist yet at start); swept every `sweepMs` for pods gone from it. */
  openLog?: () => Promise<EventStore>;
  sweepMs?: number;
  log?: (line: string) => void;
}

export interface MetadataService {
  registry: Registry;
  port: number;
  close(): Promise<void>;
}

const reply = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

const registrationApi = (registry: Registry, port: () => number, log: (line: string) => void) => async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
  if (req.url === '/pods' && req.method === 'GET') return reply(res, 200, { pods: registry.uuids() });
  const match = /^\/pods\/([^/?]+)$/.exec(req.url ?? '');
  const uuid = match?.[1];
  if (uuid === undefined || !isPodUuid(uuid)) return reply(res, 404, { error: 'the registration API is GET /pods, PUT or DELETE /pods/UUID' });
  if (req.method === 'DELETE') {
    const was = registry.unregister(uuid);
    if (was) log(`pod ${uuid} unregistered`);
    return reply(res, 200, { unregistered: was });
  }
  if (req.method !== 'PUT') return reply(res, 405, { error: 'PUT or DELETE' });
  const body = await readBody(req, MAX_REGISTRATION);
  if (body === undefined) return reply(res, 413, { error: `a registration is at most ${MAX_REGISTRATION} bytes` });
  let registration: unknown;
  try {
    registration = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return reply(res, 400, { error: `the body is not JSON: ${(e as Error).message}` });
  }
  const problem = registrationProblem(registration);
  if (problem !== undefined) return reply(res, 400, { error: problem });
  const r = registration as PodRegistration;
  for (const old of registry.register(uuid, r)) log(`pod ${old} unregistered: pod ${uuid} has its address now`);
  log(`pod ${uuid} registered from ${r.addresses.join(', ')}`);
  return reply(res, 200, { port: port() });
};

const listen = (server: Server, ...args: [string] | [number, string]): Promise<void> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...(args as [number, string]), () => {
      server.off('error', reject);
      resolve();
    });
  });

const GONE = new Set(['MetadataUnregistered', 'PodDeleted', 'PodCompacted']);
const METADATA_TYPES = ['MetadataRegisterRequested', 'MetadataRegistered', ...GONE];

/** Drops the registered pods whose last metadata event in the log says they are gone. */
const sweep = async (openLog: () => Promise<EventStore>, registry: Registry, log: (line: string) => void): Promise<void> => {
  if (registry.uuids().length === 0) return;
  const store = await openLog();
  try {
    for (const uuid of registry.uuids()) {
      const events = await store.readAll({ streams: [podStream(uuid)], types: METADATA_TYPES, limit: 1_000_000 });
      const last = events[events.length - 1];
      if (last !== undefined && GONE.has(last.type) && registry.unregister(uuid)) log(`pod ${uuid} unregistered: its log says ${last.type}`);
    }
  } finally {
    await store.close();
  }
};

export const startMetadataService = async (o: ServiceOptions): Promise<MetadataService> => {
  const log = o.log ?? (() => {});
  const registry = new Registry();
  const apps = createServer(appApi(registry));
  await listen(apps, o.port, o.host);
  const port = (apps.address() as { port: number }).port;
  const register = createServer((req, res) => {
    registrationApi(registry, () => port, log)(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  try {
    await claimSocket(o.socket, 'a metadata service');
    // Created with the umask's mode, then narrowed before a single request is accepted.
    await listen(register, o.socket);
    chmodSync(o.socket, 0o600);
  } catch (e) {
    apps.close();
    register.close();
    throw e;
  }
  const { openLog } = o;
  let sweeping: Promise<void> = Promise.resolve();
  const timer = openLog === undefined ? undefined : setInterval(() => {
    sweeping = sweep(openLog, registry, log).catch((e: unknown) => log(`sweep of the log failed: ${(e as Error).message}`));
  }, o.sweepMs ?? 5000);
  timer?.unref();
  log(`metadata service: apps on ${o.host}:${port}, registration on ${o.socket}`);
  return {
    registry,
    port,
    close: async () => {
      if (timer !== undefined) clearInterval(timer);
      await sweeping;
      await Promise.all([apps, register].map((s) => new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      })));
    },
  };
};
