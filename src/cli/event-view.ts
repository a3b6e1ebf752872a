/**
 * The events table for people: one row per event (where, when, which pod, what and its fields), under
 * a header line per command that recorded them (its verb and pid), so that the command line is read
 * once per command instead of once per row. Rows fit 100 columns unless --wide asks for every field
 * and the whole command line.
 */
import { inspect } from 'node:util';
import { POD_STREAM_PREFIX, uuidOfStream } from '../engine/streams.js';
import { POD_EVENTS, type EventKind } from '../events/catalogue.js';
import { IMAGE_EVENTS, IMAGE_STREAM_PREFIX, LAYER_STREAM_PREFIX, TREE_STREAM_PREFIX } from '../events/images.js';
import type { RecordedEvent } from '../store/port.js';
import { HOST_SCOPE_PREFIX } from '../store/scoped.js';
import { COMMANDS } from './commands/index.js';
import { GLOBAL_VALUE_FLAGS } from './help.js';

/** Every row and header fits this, whatever the terminal: a fixed layout reads alike in a pipe or a log file. */
export const ROW_WIDTH = 100;

/** What colour says of a type: the catalogue's kind, or a failure (an effect that failed, a damaged tree). */
type Shade = EventKind | 'failure';

const FAILURES = new Set(['EffectFailed', 'PrepareAborted', 'TreeDamaged', 'LayerDamaged']);

const SHADE_COLOURS: Record<Shade, keyof typeof inspect.colors> = {
  intent: 'cyan',
  outcome: 'green',
  observation: 'yellow',
  decision: 'magenta',
  failure: 'red',
};

const KINDS: ReadonlyMap<string, EventKind> = new Map(Object.entries({ ...POD_EVENTS, ...IMAGE_EVENTS }).map(([type, entry]) => [type, entry.kind]));

const shadeOf = (type: string): Shade | undefined => (FAILURES.has(type) ? 'failure' : KINDS.get(type));

/**
 * Colour where a person reads: on a terminal that has colours (Node's rules: NO_COLOR, TERM, FORCE_COLOR),
 * and elsewhere only when FORCE_COLOR asks for it (as Node reads it: 0 and false do not).
 */
export const wantsColour = (stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean =>
  stream.isTTY ? stream.hasColors(env) : env.FORCE_COLOR !== undefined && !['0', 'false'].includes(env.FORCE_COLOR);

const paint = (text: string, shade: Shade | undefined): string => {
  if (shade === undefined) return text;
  const [on, off] = inspect.colors[SHADE_COLOURS[shade]]!;
  return `\x1b[${on}m${text}\x1b[${off}m`;
};

const cut = (text: string, width: number): string => (text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`);

/** Ids as `list` and `image list` show them: a pod's UUID by its first 8 digits, an image's or tree's hash by 12. */
const shortIds = (text: string): string =>
  text
    .replace(/\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '$1')
    .replace(/\b(sha(?:256|384|512)[-:][0-9a-f]{12})[0-9a-f]{20,}\b/g, '$1');

/** What a compact row shows of a nested object: that it is there, for --wide to show. */
const ELIDED = '{…}';

/** A value most of whose words stay on a row: ids shortened, lists by their names, nested objects elided, empty ones left out. */
const compactValue = (v: unknown): string | undefined => {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return cut(shortIds(v), 24);
  if (typeof v !== 'object') return String(v);
  const named = (x: unknown): string | undefined =>
    typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string' ? (x as { name: string }).name : typeof x === 'object' ? undefined : String(x);
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    const names = v.map(named);
    return names.every((n) => n !== undefined) ? cut(shortIds(names.join(',')), 24) : ELIDED;
  }
  if (Object.keys(v).length === 0) return undefined;
  return named(v) ?? ELIDED;
};

/** The pod's UUID is the row's POD already. */
const ownFields = (e: RecordedEvent): Array<[string, unknown]> => Object.entries(e.data).filter(([k]) => k !== 'uuid');

/** An event's fields as key=value: compact (what says least last), or every one in full (--wide, replay). */
export const fieldsText = (e: RecordedEvent, wide: boolean): string => {
  const shown = ownFields(e).map(([k, v]) => [k, wide ? (typeof v === 'string' ? v : JSON.stringify(v)) : compactValue(v)] as const);
  const kept = shown.filter((f): f is readonly [string, string] => f[1] !== undefined);
  return (wide ? kept : [...kept.filter(([, v]) => v !== ELIDED), ...kept.filter(([, v]) => v === ELIDED)]).map(([k, v]) => `${k}=${v}`).join(' ');
};

/** A pod by its short UUID, as `list` shows it; an image store's stream by what it holds (its id is in its fields). */
const streamLabel = (stream: string): string => {
  if (stream.startsWith(POD_STREAM_PREFIX)) return uuidOfStream(stream).slice(0, 8);
  const unscoped = stream.startsWith(HOST_SCOPE_PREFIX) ? stream.slice(stream.indexOf('/', HOST_SCOPE_PREFIX.length) + 1) : stream;
  const family = [IMAGE_STREAM_PREFIX, TREE_STREAM_PREFIX, LAYER_STREAM_PREFIX].find((p) => unscoped.startsWith(p));
  return family === undefined ? cut(unscoped, 8) : family.slice(0, -1);
};

/**
 * Wide enough for every type that has fields but MetadataRegisterRequested, whose row is the one that
 * shifts: a longer type (PodManifestWriteRequested) would take columns from every row's fields.
 */
const TYPE_WIDTH = 22;

/** The columns before TYPE. */
const lead = (position: string, time: string, pod: string, version: string): string =>
  [position.padStart(8), time.padEnd(12), pod.padEnd(8), version.padStart(3)].join('  ');

export const TABLE_HEADER = `${lead('POSITION', 'TIME', 'POD', 'VER')}  ${'TYPE'.padEnd(TYPE_WIDTH)}  DETAILS`;

/**
 * The verb of a recorded command line: its first registered verb that is not the value of a global flag.
 * A program of the library's records its own argv, shown as it is.
 */
export const verbOf = (command: string[]): string => {
  const at = command.findIndex((a, i) => COMMANDS.some((c) => c.name === a) && !GLOBAL_VALUE_FLAGS.includes(command[i - 1] ?? ''));
  return at !== -1 ? command[at]! : command.length > 0 ? cut(command.join(' '), 30) : '(no command line)';
};

/** An argument as a shell would need it typed. */
const shellWord = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);

export interface ViewOptions {
  wide: boolean;
  colour: boolean;
  /** Named in every command's header: this host's, with --all-hosts (other hosts' events are always named). */
  hostId: string;
  allHosts: boolean;
}

/**
 * Renders events as table lines, in order; a command's header comes before its first row and again when
 * another command's rows came between, or the day changed (rows show the time of day).
 */
export const eventTable = (options: ViewOptions) => {
  let group: string | undefined;
  const header = (e: RecordedEvent, day: string): string => {
    const host = e.meta.hostId !== undefined && (options.allHosts || e.meta.hostId !== options.hostId) ? [e.meta.hostId] : [];
    const who = [verbOf(e.meta.command), `pid ${e.meta.pid}`, ...host, `${day} UTC`].join(' · ');
    return options.wide ? `── ${who}: ${e.meta.command.map(shellWord).join(' ')}` : cut(`── ${who} ──`, ROW_WIDTH);
  };
  return (e: RecordedEvent): string[] => {
    const [day = '', clock = ''] = e.meta.time.split('T');
    const lines: string[] = [];
    const key = `${e.meta.correlationId} ${day}`;
    if (key !== group) lines.push(header(e, day));
    group = key;
    const start = `${lead(String(e.position), clock.replace(/Z$/, ''), streamLabel(e.stream), String(e.version))}  `;
    const pad = ' '.repeat(Math.max(0, TYPE_WIDTH - e.type.length));
    const fields = fieldsText(e, options.wide);
    // Widths count what is seen: the colour codes around the type take no column.
    const details = options.wide ? fields : cut(fields, ROW_WIDTH - start.length - e.type.length - pad.length - 2);
    lines.push(`${start}${paint(e.type, options.colour ? shadeOf(e.type) : undefined)}${details ? `${pad}  ${details}` : ''}`);
    return lines;
  };
};
