import { existsSync } from 'node:fs';
import { readBatches, whenReachable } from '../../api/subscribe.js';
import { PodlogError } from '../../errors.js';
import { resolvePodUuid } from '../../engine/resolve.js';
import { POD_STREAM_PREFIX, podStream, uuidOfStream } from '../../engine/streams.js';
import { openStore } from '../../store/open.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../../store/port.js';
import type { PodEventData } from '../../events/catalogue.js';
import { otherHostsPod, ownsPod } from '../../engine/hosts.js';
import { list, out, str, type Command } from '../command.js';
import { parseTime } from '../duration.js';
import { matchesFilters, parsePodFilters, podUserMetadata, type PodFilter, type PodUserMetadata } from '../pods.js';
import { HOST_SCOPE_PREFIX, hostScope } from '../../store/scoped.js';

/** One line of what an event says: its data as key=value, and who caused it. */
export const describeData = (e: RecordedEvent): string => {
  const data = Object.entries(e.data)
    .filter(([k]) => k !== 'uuid')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${data}${data ? ' ' : ''}(pid ${e.meta.pid}: ${e.meta.command.join(' ') || '-'})`;
};

/** Pods by their short UUID, as `list` shows them; other streams (images, trees) shortened alike. */
const streamLabel = (stream: string): string =>
  stream.startsWith(POD_STREAM_PREFIX) ? uuidOfStream(stream).slice(0, 8) : stream.length > 20 ? `${stream.slice(0, 19)}…` : stream;

const row = (e: RecordedEvent, hostWidth: number | undefined): string =>
  [
    String(e.position).padStart(8),
    e.meta.time.padEnd(24),
    ...(hostWidth === undefined ? [] : [(e.meta.hostId ?? '-').padEnd(hostWidth)]),
    streamLabel(e.stream).padEnd(8),
    String(e.version).padStart(4),
    e.type.padEnd(22),
    describeData(e),
  ].join('  ');

/** What the log says of a pod when it was prepared: its host, and its labels and annotations (schema 4). */
interface PodFacts {
  host: string | undefined;
  /** Undefined for a pod prepared before PrepareRequested held them: its manifest on disk has them. */
  meta: PodUserMetadata | undefined;
}

const factsOf = (first: RecordedEvent | undefined): PodFacts => {
  if (first?.type !== 'PrepareRequested') return { host: undefined, meta: undefined };
  const data = first.data as PodEventData['PrepareRequested'];
  return { host: data.host, meta: first.schema >= 4 ? { userLabels: data.userLabels ?? {}, userAnnotations: data.userAnnotations ?? {} } : undefined };
};

/** A pod's last event: its facts are not needed again (a --follow of a long life keeps only live pods'). */
const ENDS_POD = new Set(['PodDeleted', 'PodCompacted']);

/**
 * Each pod's facts, read once: from its PrepareRequested when a batch holds it, else from the log (read
 * again after a store that cannot be reached, as the subscription itself is).
 */
const podFacts = (store: EventStore) => {
  const known = new Map<string, PodFacts>();
  return async (e: RecordedEvent): Promise<PodFacts> => {
    const facts = known.get(e.stream) ?? factsOf(e.version === 1 ? e : (await whenReachable(() => store.readStream(e.stream, { to: 1 })))[0]);
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
const shownEvents = (store: EventStore, dir: string, hostId: string, allHosts: boolean, filters: PodFilter[]) => {
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
const podOfHost = async (store: EventStore, input: string, hostId: string, allHosts: boolean): Promise<string> => {
  const uuid = await resolvePodUuid(store, input);
  const { host } = factsOf((await store.readStream(podStream(uuid), { to: 1 }))[0]);
  if (!allHosts && !ownsPod(hostId, { host })) throw otherHostsPod(uuid, host);
  return uuid;
};

export const events: Command = {
  usage: 'podlog events [--pod UUID] [--type TYPE]... [--filter label=KEY[=VALUE]|annotation=KEY[=VALUE]]... [--since TIME] [--until TIME] [--from-position N] [--all-hosts] [--follow] [--json]',
  options: {
    'all-hosts': { type: 'boolean', default: false },
    pod: { type: 'string' },
    type: { type: 'string', multiple: true },
    filter: { type: 'string', multiple: true },
    since: { type: 'string' },
    until: { type: 'string' },
    'from-position': { type: 'string' },
    follow: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
  async run({ values, dir, store: url, hostId }) {
    const allHosts = values['all-hosts'] === true;
    const fromPosition = str(values, 'from-position') ?? '0';
    if (!/^\d+$/.test(fromPosition)) throw new PodlogError('EUSAGE', `--from-position: ${JSON.stringify(fromPosition)} is not a position`);
    const since = str(values, 'since');
    const until = str(values, 'until');
    const podFilters = parsePodFilters((values.filter as string[] | undefined) ?? []);
    // Following a log nobody has written yet waits for it to exist (a read creates nothing).
    const sqliteFile = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : undefined;
    if (values.follow === true && sqliteFile !== undefined) while (!existsSync(sqliteFile)) await new Promise((ok) => setTimeout(ok, 100));
    const store = await openStore(dir, { access: 'inspect', url });
    try {
      const pod = str(values, 'pod');
      const filters: ReadAllOptions = {
        ...(pod !== undefined ? { streams: [podStream(await podOfHost(store, pod, hostId, allHosts))] } : {}),
        ...(list(values, 'type').length ? { types: list(values, 'type') } : {}),
        ...(since !== undefined ? { since: parseTime(since, '--since') } : {}),
        ...(until !== undefined ? { until: parseTime(until, '--until') } : {}),
      };
      const json = values.json === true;
      const shown = shownEvents(store, dir, hostId, allHosts, podFilters);
      // Host ids are whole (machine ids are 32 hex digits); one longer than this host's shifts its row.
      const hostWidth = allHosts ? Math.max('HOST'.length, hostId.length) : undefined;
      if (!json) out(['POSITION'.padStart(8), 'TIME'.padEnd(24), ...(hostWidth === undefined ? [] : ['HOST'.padEnd(hostWidth)]), 'POD'.padEnd(8), 'VER'.padStart(4), 'TYPE'.padEnd(22), 'DETAILS'].join('  '));
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      for await (const batch of readBatches(store, { ...filters, after: Number(fromPosition), stopAtHead: values.follow !== true, signal: stop.signal })) {
        const kept: RecordedEvent[] = [];
        for (const e of batch) if (await shown(e)) kept.push(e);
        if (kept.length > 0) out(kept.map((e) => (json ? JSON.stringify(e) : row(e, hostWidth))).join('\n'));
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};
