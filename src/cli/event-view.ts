/**
 * The events table for people: one row per event (where, when, which pod, what and its fields), under
 * a header line per command that recorded them (its verb and pid), so that the command line is read
 * once per command instead of once per row; a failure's message on a line of its own under its row.
 * Rows fit 100 columns unless --wide asks for every field and the whole command line. The log's text is
 * shown with its control characters escaped (visible).
 */
import { WriteStream } from 'node:tty';
import { inspect } from 'node:util';
import { POD_STREAM_PREFIX, uuidOfStream } from '../engine/streams.js';
import { POD_EVENTS, type EventKind } from '../events/catalogue.js';
import { IMAGE_EVENTS, IMAGE_STREAM_PREFIX, LAYER_STREAM_PREFIX, TREE_STREAM_PREFIX } from '../events/images.js';
import type { RecordedEvent } from '../store/port.js';
import { HOST_SCOPE_PREFIX } from '../store/scoped.js';
import { COMMANDS } from './commands/index.js';
import { GLOBAL_VALUE_FLAGS } from './help.js';

/** Every row and header fits this, whatever the terminal: a fixed layout reads alike in a pipe or a log file. */
const ROW_WIDTH = 100;

/** What colour says of a type: the catalogue's kind, or a failure (an effect that failed, a damaged tree). */
type Shade = EventKind | 'failure';

/**
 * The failures, and the field of each that says what went wrong for people (the hashes of a damaged tree
 * or layer fit their row): the compact table gives it a line of its own under the row.
 */
const FAILURES: ReadonlyMap<string, string | undefined> = new Map([
  ['EffectFailed', 'message'],
  ['PrepareAborted', 'reason'],
  ['TreeDamaged', undefined],
  ['LayerDamaged', undefined],
]);

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
 * and elsewhere only when FORCE_COLOR asks for it, as Node reads it: a set FORCE_COLOR decides alone
 * (Node's tty getColorDepth: '', 1, true, 2 and 3 give colours; 0, false and any other value none).
 * Asked of Node with FORCE_COLOR alone: NO_COLOR beside it would only make Node warn that it is ignored.
 */
export const wantsColour = (stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean =>
  stream.isTTY ? stream.hasColors(env) : env.FORCE_COLOR !== undefined && WriteStream.prototype.hasColors({ FORCE_COLOR: env.FORCE_COLOR });

const paint = (text: string, shade: Shade | undefined): string => {
  if (shade === undefined) return text;
  const [on, off] = inspect.colors[SHADE_COLOURS[shade]]!;
  return `\x1b[${on}m${text}\x1b[${off}m`;
};

/** At most `width` characters (code points: a cut never splits one), the last one … when some were cut. */
const cut = (text: string, width: number): string => {
  if (text.length <= width) return text;
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
};

/** The characters a terminal acts on instead of showing: C0 controls (newline, ESC…), DEL and C1 controls (CSI…). */
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;
const NAMED_CONTROLS: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeControl = (c: string): string => {
  const code = c.charCodeAt(0);
  return NAMED_CONTROLS[c] ?? (code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
};

/**
 * Text of the log as a terminal shows it: every control character written as its escape (`\n`, `\x1b`,
 * `\u009b`), so that no row breaks and nothing recorded can move the cursor, colour or retitle the
 * terminal. Escaped before any cut, so that a cut never leaves half of a control sequence.
 */
const visible = (text: string): string => text.replace(CONTROLS, escapeControl);

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
  if (typeof v === 'string') return cut(shortIds(visible(v)), 24);
  if (typeof v !== 'object') return String(v);
  const named = (x: unknown): string | undefined =>
    typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string' ? (x as { name: string }).name : typeof x === 'object' ? undefined : String(x);
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    const names = v.map(named);
    return names.every((n) => n !== undefined) ? cut(shortIds(visible(names.join(','))), 24) : ELIDED;
  }
  if (Object.keys(v).length === 0) return undefined;
  const name = named(v);
  return name === undefined ? ELIDED : cut(visible(name), 24);
};

/** The pod's UUID is the row's POD already; `omitted` is shown elsewhere (a failure's message). */
const ownFields = (e: RecordedEvent, omitted?: string): Array<[string, unknown]> => Object.entries(e.data).filter(([k]) => k !== 'uuid' && k !== omitted);

/** A value in full, on one line. */
const wholeValue = (v: unknown): string => visible(typeof v === 'string' ? v : JSON.stringify(v));

/**
 * An event's fields as key=value: compact (what says least last), or every one in full (--wide, replay);
 * control characters escaped (see visible).
 */
export const fieldsText = (e: RecordedEvent, wide: boolean, omitted?: string): string => {
  const shown = ownFields(e, omitted).map(([k, v]) => [visible(k), wide ? wholeValue(v) : compactValue(v)] as const);
  const kept = shown.filter((f): f is readonly [string, string] => f[1] !== undefined);
  return (wide ? kept : [...kept.filter(([, v]) => v !== ELIDED), ...kept.filter(([, v]) => v === ELIDED)]).map(([k, v]) => `${k}=${v}`).join(' ');
};

/** The field of a failure that says what went wrong, when it has one. */
const messageField = (e: RecordedEvent): string | undefined => {
  const key = FAILURES.get(e.type);
  return key !== undefined && e.data[key] !== undefined && e.data[key] !== '' ? key : undefined;
};

/** Where a failure's message starts: under TIME, which leaves it most of the row; the arrow ties it to the row above. */
const MESSAGE_INDENT = `${' '.repeat(10)}↳ `;

/** A pod by its short UUID, as `list` shows it; an image store's stream by what it holds (its id is in its fields). */
const streamLabel = (stream: string): string => {
  if (stream.startsWith(POD_STREAM_PREFIX)) return uuidOfStream(stream).slice(0, 8);
  const unscoped = stream.startsWith(HOST_SCOPE_PREFIX) ? stream.slice(stream.indexOf('/', HOST_SCOPE_PREFIX.length) + 1) : stream;
  const family = [IMAGE_STREAM_PREFIX, TREE_STREAM_PREFIX, LAYER_STREAM_PREFIX].find((p) => unscoped.startsWith(p));
  return family === undefined ? cut(visible(unscoped), 8) : family.slice(0, -1);
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
 * The verb of a recorded command line, as main finds it: its first word that is neither a flag nor the
 * value of a global flag, when that is a registered verb; with the sub-command after it for a verb that
 * has them (`app start`, `image gc`, `log compact`: its first later word that is one of them). A program
 * of the library's records its own argv (`deploy.js run`), shown as it is.
 */
export const verbOf = (command: string[]): string => {
  const own = command.includes('--') ? command.slice(0, command.indexOf('--')) : command;
  const at = own.findIndex((a, i) => !a.startsWith('-') && !(i > 0 && GLOBAL_VALUE_FLAGS.includes(own[i - 1]!)));
  const entry = at === -1 ? undefined : COMMANDS.find((c) => c.name === own[at]);
  if (entry === undefined) return command.length > 0 ? cut(visible(command.join(' ')), 30) : '(no command line)';
  const sub = own.slice(at + 1).find((a) => entry.subcommands?.includes(a));
  return sub === undefined ? entry.name : `${entry.name} ${sub}`;
};

/**
 * An argument as bash would need it typed: bare, in '…', or with a control character in $'…' (where
 * the escapes of `visible` mean the same characters, \u under a UTF-8 locale, and \\ and \' are the
 * backslash and the quote).
 */
const shellWord = (a: string): string => {
  if (/^[\w@%+=:,./-]+$/.test(a)) return a;
  const escaped = visible(a);
  if (escaped === a) return `'${a.replaceAll("'", `'\\''`)}'`;
  return `$'${a.replace(/[\\']/g, '\\$&').replace(CONTROLS, escapeControl)}'`;
};

/** A recorded command line as it would be typed in bash (--wide's headers, replay). */
const commandLine = (command: string[]): string => command.map(shellWord).join(' ');

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
    const host = e.meta.hostId !== undefined && (options.allHosts || e.meta.hostId !== options.hostId) ? [visible(e.meta.hostId)] : [];
    const who = [verbOf(e.meta.command), visible(`pid ${e.meta.pid}`), ...host, `${day} UTC`].join(' · ');
    return options.wide ? `── ${who}: ${commandLine(e.meta.command)}` : cut(`── ${who} ──`, ROW_WIDTH);
  };
  return (e: RecordedEvent): string[] => {
    const [day = '', clock = ''] = visible(e.meta.time).split('T');
    const lines: string[] = [];
    const key = `${e.meta.correlationId} ${day}`;
    if (key !== group) lines.push(header(e, day));
    group = key;
    const start = `${lead(String(e.position), clock.replace(/Z$/, ''), streamLabel(e.stream), String(e.version))}  `;
    const type = visible(e.type);
    const pad = ' '.repeat(Math.max(0, TYPE_WIDTH - type.length));
    const message = options.wide ? undefined : messageField(e);
    const fields = fieldsText(e, options.wide, message);
    // Widths count what is seen: the colour codes around the type take no column.
    const details = options.wide ? fields : cut(fields, ROW_WIDTH - start.length - type.length - pad.length - 2);
    lines.push(`${start}${paint(type, options.colour ? shadeOf(e.type) : undefined)}${details ? `${pad}  ${details}` : ''}`);
    if (message !== undefined) lines.push(cut(`${MESSAGE_INDENT}${wholeValue(e.data[message])}`, ROW_WIDTH));
    return lines;
  };
};

/** One line of what an event says: every field of its data, and who caused it (replay's DETAILS), control characters escaped. */
export const describeData = (e: RecordedEvent): string => {
  const data = fieldsText(e, true);
  return `${data}${data ? ' ' : ''}(${visible(`pid ${e.meta.pid}`)}: ${commandLine(e.meta.command) || '-'})`;
};
