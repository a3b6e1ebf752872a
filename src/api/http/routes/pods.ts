/** GET /v1/pods (filtered), GET /v1/pods/{uuid} (a pod whole, with its manifest). */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { RKT_STATE_NAMES } from '../../../../machines/pod.js';
import { matchesFilters, parsePodFilters } from '../../../cli/pods.js';
import { ownsPod } from '../../../engine/hosts.js';
import { matchPodUuid } from '../../../engine/resolve.js';
import { stateOf } from '../../../engine/fold.js';
import { podStream } from '../../../engine/streams.js';
import { podDir, podPaths } from '../../../stage0/pod-dir.js';
import type { EventStore } from '../../../store/port.js';
import { podStatusJson } from '../../pod-json.js';
import { ApiError } from '../errors.js';
import type { LocalHost, PodEntry, PodTable } from '../pod-table.js';
import { podRoute, podsRoute } from '../schemas.js';

const STATES = new Set(Object.values(RKT_STATE_NAMES));
const [OPEN, COMMA, CLOSE] = ['[', ',', ']'].map((c) => Buffer.from(c)) as [Buffer, Buffer, Buffer];

interface PodsQuery {
  state?: string[];
  host?: string[];
  label?: string[];
  annotation?: string[];
}

/** The query's filters as one predicate; an unknown state is refused. */
const podFilter = (q: PodsQuery): ((p: PodEntry) => boolean) => {
  const states = new Set((q.state ?? []).flatMap((s) => s.split(',')).filter((s) => s !== ''));
  for (const s of states) if (!STATES.has(s)) throw new ApiError(400, `state: unknown state ${JSON.stringify(s)} (${[...STATES].join(', ')})`);
  const hosts = new Set(q.host ?? []);
  const filters = parsePodFilters([...(q.label ?? []).map((l) => `label=${l}`), ...(q.annotation ?? []).map((a) => `annotation=${a}`)]);
  return (p) =>
    (states.size === 0 || states.has(p.json.state)) &&
    (hosts.size === 0 || (p.host !== undefined && hosts.has(p.host))) &&
    (filters.length === 0 || matchesFilters(p.meta, filters));
};

/**
 * The pod manifest as written: from its last PodManifestWritten that holds it, else from the pod's
 * directory where the pod is this host's (or from before hosts were recorded), else unknown (null).
 */
const manifestOf = async (store: EventStore, local: LocalHost, uuid: string, host: string | undefined): Promise<object | null> => {
  const written = await store.readAll({ streams: [podStream(uuid)], types: ['PodManifestWritten'], limit: 1_000_000 });
  const recorded = written.reverse().find((e) => typeof e.data.manifest === 'object' && e.data.manifest !== null);
  if (recorded !== undefined) return recorded.data.manifest as object;
  if (!ownsPod(local.hostId, { host })) return null;
  try {
    return JSON.parse(readFileSync(podPaths(podDir(local.dataDir, uuid)).manifest, 'utf8')) as object;
  } catch {
    return null;
  }
};

export const podRoutes = (app: FastifyInstance, store: EventStore, table: PodTable, local: LocalHost): void => {
  app.get<{ Querystring: PodsQuery }>('/v1/pods', { schema: podsRoute }, async (request, reply) => {
    const keep = podFilter(request.query);
    const parts: Buffer[] = [OPEN];
    for (const p of table.pods.values()) if (keep(p)) parts.push(p.bytes, COMMA);
    parts[parts.length === 1 ? 1 : parts.length - 1] = CLOSE;
    // Each pod was serialised when it changed (the schema documents the shape): a request only copies them.
    return reply.type('application/json; charset=utf-8').send(Buffer.concat(parts));
  });

  app.get<{ Params: { uuid: string } }>('/v1/pods/:uuid', { schema: podRoute }, async (request) => {
    // Deleted pods are history: GET /v1/pods/{uuid}/events still has them.
    const uuid = matchPodUuid(table.pods.keys(), request.params.uuid);
    const [pod, entry] = [await table.whole(uuid), table.pods.get(uuid)];
    if (pod === undefined || entry === undefined) throw new ApiError(404, `pod ${uuid} was deleted`);
    return { ...podStatusJson({ state: stateOf(pod.snapshot), version: pod.version, context: pod.snapshot.context }, entry.meta), host: entry.host, ...(pod.broken === undefined ? {} : { broken: pod.broken }), manifest: await manifestOf(store, local, uuid, entry.host) };
  });
};
