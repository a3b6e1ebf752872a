import { whenReachable } from '../api/subscribe.js';
import { resolvePodUuid } from '../engine/resolve.js';
import { POD_STREAM_PREFIX, podStream, uuidOfStream } from '../engine/streams.js';
import { otherHostsPod, ownsPod } from '../engine/hosts.js';
import type { PodEventData } from '../events/catalogue.js';
import type { EventStore, RecordedEvent } from '../store/port.js';
import { HOST_SCOPE_PREFIX, hostScope } from '../store/scoped.js';
import { matchesFilters, podUserMetadata, type PodFilter, type PodUserMetadata } from './pods.js';

/** What the log says of a pod when it was prepared: its host, and its labels and annotations (schema 4). */
export interface PodFacts {
  host: string | undefined;
  /** Undefined for a pod prepared before PrepareRequested held them: its manifest on disk has them. */
  meta: PodUserMetadata | undefined;
}

/**
 * A pod's facts from its first event: its PrepareRequested, or for a compacted pod the PodCompacted left
 * in its place, whose host is the one that recorded it (a tombstone keeps the metadata of the PodDeleted
 * it replaced, which only the pod's host records, and `log compact` compacts only its host's pods).
 */
export const factsOf = (first: RecordedEvent | undefined): PodFacts => {
  if (first?.type === 'PodCompacted') return { host: first.meta.hostId, meta: undefined };
  if (first?.type !== 'PrepareRequested') return { host: undefined, meta: undefined };
  const data = first.data as PodEventData['PrepareRequested'];
  return { host: data.host, meta: first.schema >= 4 ? { userLabels: data.userLabels ?? {}, userAnnotations: data.userAnnotations ?? {} } : undefined };
};

/** A pod's last event: its facts are not needed again (a --follow of a long life keeps only live pods'). */
const ENDS_POD = new Set(['PodDeleted', 'PodCompacted']);

/** A pod stream's first event: its version 1, or the tombstone of a compacted stream (which has no version 1). */
const firstEvent = async (store: EventStore, stream: string): Promise<RecordedEvent | undefined> =>
  (await store.readStream(stream, { to: 1 }))[0] ?? (await store.readStream(stream))[0];

/**
 * Each pod's facts, read once: from its PrepareRequested when a batch holds it, else from the log (read
 * again after a store that cannot be reached, as the subscription itself is).
 */
export const podFacts = (store: EventStore) => {
  const known = new Map<string, PodFacts>();
  return async (e: RecordedEvent): Promise<PodFacts> => {
    const facts = known.get(e.stream) ?? factsOf(e.version === 1 || e.type === 'PodCompacted' ? e : await whenReachable(() => firstEvent(store, e.stream)));
    if (ENDS_POD.has(e.type)) known.delete(e.stream);
    else known.set(e.stream, facts);
    return facts;
  };
};

/**
 * Which events are shown: this host's unless --all-hosts (a pod's events by the host that prepared it,
 * an image store's by its scope, others by who recorded them), and with --filter only the events of pods
 * whose labels or annotations match (from the log; for a pod from before it held them, its manifest).
 */
export const shownEvents = (store: EventStore, dir: string, hostId: string, allHosts: boolean, filters: PodFilter[]) => {
  const facts = podFacts(store);
  const ownScope = hostScope(hostId);
  return async (e: RecordedEvent): Promise<boolean> => {
    if (!e.stream.startsWith(POD_STREAM_PREFIX)) {
      if (filters.length > 0) return false;
      if (allHosts) return true;
      if (e.stream.startsWith(HOST_SCOPE_PREFIX)) return e.stream.startsWith(ownScope);
      return e.meta.hostId === undefined || e.meta.hostId === hostId;
    }
    if (allHosts && filters.length === 0) return true;
    const pod = await facts(e);
    if (!allHosts && !ownsPod(hostId, pod)) return false;
    if (filters.length === 0) return true;
    const meta = pod.meta ?? podUserMetadata(dir, uuidOfStream(e.stream));
    return meta !== undefined && matchesFilters(meta, filters);
  };
};

/** --pod names any pod that ever existed; another host's only with --all-hosts, as status and list. */
export const podOfHost = async (store: EventStore, input: string, hostId: string, allHosts: boolean): Promise<string> => {
  const uuid = await resolvePodUuid(store, input);
  const { host } = factsOf(await firstEvent(store, podStream(uuid)));
  if (!allHosts && !ownsPod(hostId, { host })) throw otherHostsPod(uuid, host);
  return uuid;
};
