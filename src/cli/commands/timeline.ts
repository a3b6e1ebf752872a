import { writeFileSync } from 'node:fs';
import { RKT_STATE_NAMES, type PodStateName } from '../../../machines/pod.js';
import { readBatches } from '../../api/subscribe.js';
import { ownsPod } from '../../engine/hosts.js';
import { POD_STREAM_PREFIX, podStream } from '../../engine/streams.js';
import { PodlogError } from '../../errors.js';
import { openStore } from '../../store/open.js';
import type { EventStore } from '../../store/port.js';
import { ganttSvg } from '../../timeline/gantt.js';
import { ganttHtml } from '../../timeline/html.js';
import { frameTimeline, TimelineBuilder, type Timeline } from '../../timeline/model.js';
import { traceOf } from '../../timeline/trace.js';
import { list, out, str, type Command } from '../command.js';
import { parseTime } from '../duration.js';
import { factsOf, podOfHost } from '../event-selection.js';
import { verbOf } from '../event-view.js';

const RENDERERS: Record<string, (t: Timeline) => string> = { html: ganttHtml, svg: ganttSvg, trace: traceOf };
const DEFAULT_FORMAT = 'html';
/**
 * Events read per query. Small: a batch's events are parsed, folded and dropped while V8's young
 * generation still holds them; batches of 20,000 outlived it, and collecting them took 2 of the 7 s a
 * log of 120,000 events cost (500: 3.5 s, on the 2-core VM).
 */
const BATCH = 500;

/** --state takes list's names; `aborted-prepare` for `aborted prepare` spares the quoting. */
const parseStates = (names: string[]): Set<PodStateName> | undefined => {
  if (names.length === 0) return undefined;
  const byName = new Map(Object.entries(RKT_STATE_NAMES).map(([state, name]) => [name, state as PodStateName]));
  return new Set(
    names.map((n) => {
      const state = byName.get(n.trim().replace(/-/g, ' '));
      if (state === undefined) throw new PodlogError('EUSAGE', `--state: unknown state ${JSON.stringify(n)} (${[...byName.keys()].map((k) => k.replace(/ /g, '-')).join(', ')})`);
      return state;
    }),
  );
};

interface Selection {
  pods: string[];
  since: string | undefined;
  until: string | undefined;
  states: Set<PodStateName> | undefined;
  allHosts: boolean;
  hostId: string;
}

/** The selected pods' lives, read in one pass over their streams (up to --until: what came later is not shown). */
const readTimeline = async (store: EventStore, sel: Selection): Promise<Timeline> => {
  const uuids: string[] = [];
  for (const input of sel.pods) uuids.push(await podOfHost(store, input, sel.hostId, sel.allHosts));
  // A pod's first event names the host that prepared it (a compacted pod's tombstone, the host that
  // compacted it: factsOf): another host's pods are left out unless --all-hosts.
  const builder = new TimelineBuilder({ hostOf: (first) => factsOf(first).host, keep: (host) => sel.allHosts || ownsPod(sel.hostId, { host }), verbOf });
  const streams = uuids.length > 0 ? { streams: [...new Set(uuids)].map(podStream) } : { streamPrefix: POD_STREAM_PREFIX };
  for await (const batch of readBatches(store, { ...streams, ...(sel.until === undefined ? {} : { until: sel.until }), batchSize: BATCH, stopAtHead: true })) {
    builder.addBatch(batch);
  }
  const until = sel.until === undefined ? undefined : Date.parse(sel.until);
  const now = Date.now();
  return frameTimeline(
    // What is still so is drawn up to now: a later --until widens the window, not what has happened.
    builder.finish(Math.min(until ?? now, now)),
    {
      ...(sel.since === undefined ? {} : { since: Date.parse(sel.since) }),
      ...(until === undefined ? {} : { until }),
      ...(sel.states === undefined ? {} : { states: sel.states }),
    },
    now,
  );
};

export const timeline: Command = {
  usage: 'podlog timeline [--pod UUID]... [--since TIME] [--until TIME] [--state STATE]... [--all-hosts] [--format html|svg|trace] [--output FILE]',
  options: {
    pod: { type: 'string', multiple: true, value: 'UUID', description: 'only this pod: a UUID or a unique prefix of one, deleted pods too' },
    since: { type: 'string', value: 'TIME', description: 'only pods that existed at or after TIME (ISO 8601, or a duration ago: 30m, 2h), drawn from TIME on; a pod holds the state its last event left it in until its next one, or until the end (an exited pod stays exited until it is collected)' },
    until: { type: 'string', value: 'TIME', description: 'only pods that existed before TIME, drawn as they were up to TIME: a pod not deleted by then holds its last state until TIME', shownDefault: 'now' },
    state: { type: 'string', multiple: true, value: 'STATE', description: `only pods in these states at the end, as list names them (a comma list; aborted-prepare for aborted prepare): ${Object.values(RKT_STATE_NAMES).join(', ')}` },
    'all-hosts': { type: 'boolean', default: false, description: "every host's pods of a shared log, not only this host's" },
    format: {
      type: 'string',
      value: 'FORMAT',
      default: DEFAULT_FORMAT,
      description: 'html: a self-contained page with a Gantt chart; svg: the chart alone; trace: Chrome Trace Event JSON for ui.perfetto.dev or chrome://tracing',
    },
    output: { type: 'string', short: 'o', value: 'FILE', description: 'write to FILE instead of standard output' },
  },
  examples: [
    'podlog timeline --output pods.html',
    'podlog timeline --format trace --since 2h --output pods.trace.json',
    'podlog timeline --pod 5f3a --format svg > pod.svg',
    'podlog timeline --state running,exited --all-hosts --format trace -o fleet.json',
  ],
  async run({ values, positionals, dir, store: url, hostId }) {
    if (positionals.length > 0) throw new PodlogError('EUSAGE', `timeline takes no arguments (${JSON.stringify(positionals[0])}): name pods with --pod UUID`);
    const format = str(values, 'format') ?? DEFAULT_FORMAT;
    const render = Object.hasOwn(RENDERERS, format) ? RENDERERS[format]! : undefined;
    if (render === undefined) throw new PodlogError('EUSAGE', `--format: unknown format ${JSON.stringify(format)} (${Object.keys(RENDERERS).join(', ')})`);
    const output = str(values, 'output');
    if (output === '') throw new PodlogError('EUSAGE', '--output cannot be empty');
    const since = str(values, 'since');
    const until = str(values, 'until');
    // One clock for both: --since 1h --until 1h is an empty window, whatever ran between two reads of it.
    const now = Date.now();
    const selection: Selection = {
      pods: list(values, 'pod'),
      since: since === undefined ? undefined : parseTime(since, '--since', now),
      until: until === undefined ? undefined : parseTime(until, '--until', now),
      states: parseStates(list(values, 'state')),
      allHosts: values['all-hosts'] === true,
      hostId,
    };
    if (selection.since !== undefined && selection.until !== undefined && selection.since >= selection.until) {
      throw new PodlogError('EUSAGE', `--since ${since} is not before --until ${until}`);
    }
    const store = await openStore(dir, { access: 'inspect', url });
    let text: string;
    try {
      text = render(await readTimeline(store, selection));
    } finally {
      await store.close();
    }
    if (output === undefined) out(text);
    else writeFileSync(output, text);
    return 0;
  },
};
