import { existsSync } from 'node:fs';
import { readBatches } from '../../api/subscribe.js';
import { PodlogError } from '../../errors.js';
import { resolvePodUuid } from '../../engine/resolve.js';
import { POD_STREAM_PREFIX, podStream, uuidOfStream } from '../../engine/streams.js';
import { openStore } from '../../store/open.js';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../../store/port.js';
import type { PodEventData } from '../../events/catalogue.js';
import { otherHostsPod, ownsPod } from '../../engine/hosts.js';
import { list, out, str, type Command } from '../command.js';
import { parseTime } from '../duration.js';
import { matchesFilters, parsePodFilters, podUserMetadata, type PodFilter } from '../pods.js';

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

/** Host ids are machine ids (32 hex digits): their first 12 tell a fleet's hosts apart. */
const HOST_WIDTH = 12;

const row = (e: RecordedEvent, allHosts: boolean): string =>
  [
    String(e.position).padStart(8),
    e.meta.time.padEnd(24),
    ...(allHosts ? [(e.meta.hostId ?? '-').slice(0, HOST_WIDTH).padEnd(HOST_WIDTH)] : []),
    streamLabel(e.stream).padEnd(8),
    String(e.version).padStart(4),
    e.type.padEnd(22),
    describeData(e),
  ].join('  ');

/** This host's events (and those from before hosts were recorded), unless --all-hosts. */
const fromHost = (hostId: string, allHosts: boolean) => (e: RecordedEvent): boolean => allHosts || e.meta.hostId === undefined || e.meta.hostId === hostId;

/** --pod names any pod that ever existed; another host's only with --all-hosts, as status and list. */
const podOfHost = async (store: EventStore, input: string, hostId: string, allHosts: boolean): Promise<string> => {
  const uuid = await resolvePodUuid(store, input);
  const [first] = await store.readStream(podStream(uuid), { to: 1 });
  const host = first?.type === 'PrepareRequested' ? (first.data as PodEventData['PrepareRequested']).host : undefined;
  if (!allHosts && !ownsPod(hostId, { host })) throw otherHostsPod(uuid, host);
  return uuid;
};

/**
 * --filter: a pod's events pass once its manifest (which holds its annotations and labels) is
 * written and matches; a deleted pod's have none to match. A pod's answer is kept once known.
 */
const podsMatching = (dir: string, filters: PodFilter[]): ((e: RecordedEvent) => boolean) => {
  const known = new Map<string, boolean>();
  return (e) => {
    if (filters.length === 0) return true;
    if (!e.stream.startsWith(POD_STREAM_PREFIX)) return false;
    const answer = known.get(e.stream);
    if (answer !== undefined) return answer;
    const meta = podUserMetadata(dir, uuidOfStream(e.stream));
    if (meta === undefined) return false;
    known.set(e.stream, matchesFilters(meta, filters));
    return known.get(e.stream)!;
  };
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
    const keep = podsMatching(dir, parsePodFilters((values.filter as string[] | undefined) ?? []));
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
      const local = fromHost(hostId, allHosts);
      if (!json) out(['POSITION'.padStart(8), 'TIME'.padEnd(24), ...(allHosts ? ['HOST'.padEnd(HOST_WIDTH)] : []), 'POD'.padEnd(8), 'VER'.padStart(4), 'TYPE'.padEnd(22), 'DETAILS'].join('  '));
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      for await (const batch of readBatches(store, { ...filters, after: Number(fromPosition), stopAtHead: values.follow !== true, signal: stop.signal })) {
        const shown = batch.filter((e) => local(e) && keep(e));
        if (shown.length > 0) out(shown.map((e) => (json ? JSON.stringify(e) : row(e, allHosts))).join('\n'));
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};
