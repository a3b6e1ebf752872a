import { existsSync } from 'node:fs';
import { readBatches } from '../../api/subscribe.js';
import { PodlogError } from '../../errors.js';
import { podStream } from '../../engine/streams.js';
import { openStore } from '../../store/open.js';
import type { ReadAllOptions, RecordedEvent } from '../../store/port.js';
import { list, out, str, type Command, type Values } from '../command.js';
import { parseTime } from '../duration.js';
import { parsePodFilters } from '../pods.js';
import { podOfHost, shownEvents } from '../event-selection.js';
import { eventTable, TABLE_HEADER, wantsColour } from '../event-view.js';


const FORMATS = ['table', 'json', 'ndjson'] as const;
type Format = (typeof FORMATS)[number];

/** --format, with --json as the name it had first (JSON lines); only JSON lines can follow a log that goes on. */
const formatOf = (values: Values): Format => {
  const asked = str(values, 'format');
  if (asked !== undefined && !(FORMATS as readonly string[]).includes(asked)) {
    throw new PodlogError('EUSAGE', `--format: unknown format ${JSON.stringify(asked)} (${FORMATS.join(', ')})`);
  }
  if (values.json === true && asked !== undefined && asked !== 'ndjson') throw new PodlogError('EUSAGE', `--json is --format ndjson; it cannot go with --format ${asked}`);
  const format = values.json === true ? 'ndjson' : ((asked as Format | undefined) ?? 'table');
  if (format === 'json' && values.follow === true) throw new PodlogError('EUSAGE', '--follow prints events as they come: --format json is one array, which never ends; use --format ndjson');
  if (format !== 'table' && values.wide === true) throw new PodlogError('EUSAGE', `--wide is for the table; --format ${format} has every field already`);
  return format;
};

/**
 * How events reach stdout, batch by batch: table lines, JSON lines, or one JSON array (one event a
 * line, written as they are read so that a long log is not held in memory).
 */
const printer = (format: Format, rows: (e: RecordedEvent) => string[]) => {
  if (format === 'ndjson') return { batch: (events: RecordedEvent[]) => out(events.map((e) => JSON.stringify(e)).join('\n')), end: () => {} };
  if (format === 'json') {
    let pending: string | undefined;
    return {
      batch: (events: RecordedEvent[]) => {
        const lines = events.map((e) => JSON.stringify(e));
        out([pending === undefined ? '[' : `${pending},`, ...lines.slice(0, -1).map((l) => `${l},`)].join('\n'));
        pending = lines.at(-1);
      },
      end: () => out(pending === undefined ? '[]' : `${pending}\n]`),
    };
  }
  out(TABLE_HEADER);
  return { batch: (events: RecordedEvent[]) => out(events.flatMap(rows).join('\n')), end: () => {} };
};

export const events: Command = {
  usage: 'podlog events',
  options: {
    pod: { type: 'string', value: 'UUID', description: "only this pod's events (a unique prefix of its UUID will do)" },
    type: { type: 'string', multiple: true, value: 'TYPE', description: 'only events of these types (PodExited, or a list: PodExited,EffectFailed)' },
    filter: {
      type: 'string', multiple: true, value: 'label=KEY[=VALUE]|annotation=KEY[=VALUE]',
      description: 'only the events of pods with this label or annotation (and this value, when given); all given must match',
    },
    since: { type: 'string', value: 'TIME', description: 'only events recorded at or after TIME (an ISO 8601 time, or a duration ago: 10m, 2h)' },
    until: { type: 'string', value: 'TIME', description: 'only events recorded before TIME (an ISO 8601 time, or a duration ago)' },
    'from-position': { type: 'string', value: 'N', description: 'only events after position N of the log (where an earlier read stopped)' },
    'all-hosts': { type: 'boolean', default: false, description: "every host's events in a shared log, not only this host's" },
    follow: { type: 'boolean', default: false, description: 'go on printing events as they are recorded, until interrupted (not with --format json)' },
    format: { type: 'string', value: 'FORMAT', shownDefault: 'table', description: 'table (for people), json (one array) or ndjson (one event a line)' },
    json: { type: 'boolean', default: false, description: 'the same as --format ndjson' },
    wide: { type: 'boolean', default: false, description: "the table with every field in full and each command's whole command line" },
  },
  examples: [
    'podlog events --pod 5f3a',
    'podlog events --pod 5f3a --wide',
    'podlog events --type PodExited,EffectFailed --since 1h',
    'podlog events --follow --format ndjson',
  ],
  async run({ values, positionals, dir, store: url, hostId }) {
    if (positionals.length > 0) throw new PodlogError('EUSAGE', `events takes no arguments (${JSON.stringify(positionals[0])}): name a pod with --pod UUID`);
    // One clock for --since and --until.
    const now = Date.now();
    const allHosts = values['all-hosts'] === true;
    const fromPosition = str(values, 'from-position') ?? '0';
    if (!/^\d+$/.test(fromPosition)) throw new PodlogError('EUSAGE', `--from-position: ${JSON.stringify(fromPosition)} is not a position`);
    const since = str(values, 'since');
    const until = str(values, 'until');
    const podFilters = parsePodFilters((values.filter as string[] | undefined) ?? []);
    const format = formatOf(values);
    // Following a log nobody has written yet waits for it to exist (a read creates nothing).
    const sqliteFile = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : undefined;
    if (values.follow === true && sqliteFile !== undefined) while (!existsSync(sqliteFile)) await new Promise((ok) => setTimeout(ok, 100));
    const store = await openStore(dir, { access: 'inspect', url });
    try {
      const pod = str(values, 'pod');
      const filters: ReadAllOptions = {
        ...(pod !== undefined ? { streams: [podStream(await podOfHost(store, pod, hostId, allHosts))] } : {}),
        ...(list(values, 'type').length ? { types: list(values, 'type') } : {}),
        ...(since !== undefined ? { since: parseTime(since, '--since', now) } : {}),
        ...(until !== undefined ? { until: parseTime(until, '--until', now) } : {}),
      };
      const shown = shownEvents(store, dir, hostId, allHosts, podFilters);
      const print = printer(format, eventTable({ wide: values.wide === true, colour: wantsColour(process.stdout), hostId, allHosts }));
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      for await (const batch of readBatches(store, { ...filters, after: Number(fromPosition), stopAtHead: values.follow !== true, signal: stop.signal })) {
        const kept: RecordedEvent[] = [];
        for (const e of batch) if (await shown(e)) kept.push(e);
        if (kept.length > 0) print.batch(kept);
      }
      print.end();
      return 0;
    } finally {
      await store.close();
    }
  },
};
