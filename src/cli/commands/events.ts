import { existsSync } from 'node:fs';
import { readBatches } from '../../api/subscribe.js';
import { PodlogError } from '../../errors.js';
import { POD_STREAM_PREFIX, podStream, uuidOfStream } from '../../engine/streams.js';
import { openStore } from '../../store/open.js';
import type { ReadAllOptions, RecordedEvent } from '../../store/port.js';
import { list, out, str, type Command } from '../command.js';
import { parseTime } from '../duration.js';
import { parsePodFilters } from '../pods.js';
import { podOfHost, shownEvents } from '../event-selection.js';

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
