/**
 * What `podlog help VERB` and `VERB --help` print, from the flag tables the parsers read: the
 * synopsis, every flag with its value, default and what it does, and examples.
 */
import type { Command, Flag, FlagGroup, Options } from './command.js';
import { PodlogError } from '../errors.js';
import { COMMANDS, type CommandEntry } from './commands/index.js';
import { closest } from './suggest.js';

/** The flags every verb takes, before or after it. */
export const GLOBAL_OPTIONS: Options = {
  dir: { type: 'string', value: 'DIR', description: 'the data dir: pods, images, the default log', shownDefault: '$PODLOG_DIR, else /var/lib/podlog (root) or ~/.local/share/podlog' },
  store: { type: 'string', value: 'URL', description: 'the event log: sqlite:PATH, or postgres://USER@HOST/DB for one log shared by hosts', shownDefault: '$PODLOG_STORE, else sqlite:DIR/events.db' },
  'host-id': { type: 'string', value: 'ID', description: "this host's id in the log (a data dir keeps the first one used on it, in DIR/host-id)", shownDefault: "$PODLOG_HOST_ID, else DIR/host-id, else /etc/machine-id, else the host name" },
  debug: { type: 'boolean', default: false, description: 'print the stack of an unexpected error' },
  help: { type: 'boolean', short: 'h', default: false, description: 'print help: podlog --help, or a verb\'s with podlog VERB --help' },
};

/** The global flags that take a value (`--dir DIR`): the word after one is not the verb. */
export const GLOBAL_VALUE_FLAGS: readonly string[] = Object.entries(GLOBAL_OPTIONS).filter(([, f]) => f.type === 'string').map(([n]) => `--${n}`);

export const globalHelp = (): string =>
  [
    'podlog: an event-sourced pod lifecycle engine (rkt stage0 in TypeScript)',
    '',
    'Usage: podlog [GLOBAL FLAGS] COMMAND [FLAGS] [ARGS]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(17)}${c.summary}`),
    '',
    'Global flags (before or after the command):',
    ...flagLines(GLOBAL_OPTIONS),
    '',
    "podlog help COMMAND (or podlog COMMAND --help) prints a command's flags and examples.",
  ].join('\n');

/** `--pod UUID`; a value only after '=' (status --wait) is shown as `--wait[=DURATION]`. */
const flagName = (name: string, flag: Flag): string => {
  const value = flag.type === 'string' ? (flag.value ?? 'VALUE') : '';
  return `${flag.short !== undefined ? `-${flag.short}, ` : ''}--${name}${value === '' || value.startsWith('[') ? value : ` ${value}`}`;
};

const defaultOf = (flag: Flag): string | undefined => {
  if (flag.shownDefault !== undefined) return flag.shownDefault;
  if (flag.default === undefined) return flag.type === 'boolean' ? 'false' : undefined;
  return Array.isArray(flag.default) ? flag.default.join(',') : String(flag.default);
};

/** One line a flag: its name and value, then what it does, whether it repeats, and its default. */
export const flagLines = (options: Options): string[] => {
  const rows = Object.entries(options).map(([name, flag]) => {
    const shown = defaultOf(flag);
    const notes = [flag.multiple === true ? 'repeatable' : undefined, shown === undefined ? undefined : `default: ${shown}`].filter((n) => n !== undefined);
    return [flagName(name, flag), `${flag.description}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`] as const;
  });
  const width = Math.min(34, Math.max(0, ...rows.map(([n]) => n.length)));
  // A long placeholder (--seccomp's) takes its own line rather than pushing every description right.
  return rows.map(([n, d]) => (n.length > width ? `  ${n}\n  ${' '.repeat(width)}  ${d}` : `  ${n.padEnd(width)}  ${d}`));
};

/** The flag groups of a verb, as help shows them. */
export const flagGroupsOf = (command: Command): FlagGroup[] =>
  command.flagGroups ?? (Object.keys(command.options).length > 0 ? [{ title: 'Flags', options: command.options }] : []);

export const verbHelp = (summary: string, command: Command): string =>
  [
    `Usage: ${command.usage.replace(/\n(?=podlog )/g, '\n       ')}`,
    '',
    summary,
    ...flagGroupsOf(command).flatMap((g) => ['', `${g.title}:`, ...flagLines(g.options)]),
    '',
    'Global flags:',
    ...flagLines(GLOBAL_OPTIONS),
    ...(command.examples.length > 0 ? ['', 'Examples:', ...command.examples.map((e) => `  ${e}`)] : []),
  ].join('\n');

export const findCommand = (name: string): CommandEntry | undefined => COMMANDS.find((c) => c.name === name);

export const unknownCommand = (name: string): PodlogError => {
  const near = closest(name, COMMANDS.map((c) => c.name));
  return new PodlogError('EUSAGE', `unknown command ${JSON.stringify(name)}${near === undefined ? '' : ` (did you mean ${near}?)`}; see podlog --help`);
};

/** What `podlog help [COMMAND]` and `podlog [COMMAND] --help` print. */
export const helpText = async (name: string | undefined): Promise<string> => {
  if (name === undefined) return globalHelp();
  const entry = findCommand(name);
  if (!entry) throw unknownCommand(name);
  return verbHelp(entry.summary, await entry.load());
};
