/** What a CLI verb is: its flags, its help, and what it does. main.ts parses; commands only act. */
import type { ParseArgsConfig } from 'node:util';

type ParserOption = NonNullable<ParseArgsConfig['options']>[string];

/**
 * One flag of a verb: what node:util's parseArgs reads (type, multiple, short, default) and what help
 * prints, in one table, so that help cannot say what the parser does not do.
 */
export type Flag = ParserOption & {
  /** One line: what the flag does. */
  description: string;
  /** The value's placeholder in help (`--pod UUID`). */
  value?: string;
  /** The default help states when the parser has none (one computed when the verb runs). */
  shownDefault?: string;
};

export type Options = Record<string, Flag>;

/** Flags help shows under one heading: a sub-command's, or a run verb's per-app flags. */
export interface FlagGroup {
  title: string;
  options: Options;
}
export type Values = Record<string, string | boolean | Array<string | boolean> | undefined>;

export interface Invocation {
  values: Values;
  positionals: string[];
  /** The data dir (--dir, PODLOG_DIR, or the default). */
  dir: string;
  /** The event log's URL (--store, PODLOG_STORE, or sqlite:DIR/events.db). */
  store: string;
  /** This host's id in the log (--host-id, PODLOG_HOST_ID, or the machine id). */
  hostId: string;
  debug: boolean;
}

/** A verb's flags and behaviour; its name and summary are in the registry (commands/index.ts). */
export interface Command {
  /** The synopsis: the verb, its sub-commands and positional arguments (its flags are in `options`). */
  usage: string;
  options: Options;
  /** Whole command lines help shows. */
  examples: string[];
  /**
   * The flags help shows when they are not (all) in `options`: the verbs that parse their own
   * arguments, and those whose sub-commands each take their own.
   */
  flagGroups?: FlagGroup[];
  /** What completion offers: the sub-commands, and what the operands name. */
  subcommands?: string[];
  operand?: 'pod' | 'image';
  /** The verb parses its own arguments (rkt's per-app flags after each image); positionals get them all. */
  raw?: true;
  run(invocation: Invocation): Promise<number>;
}

export const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};

export const str = (values: Values, name: string): string | undefined => {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
};

export const list = (values: Values, name: string): string[] => {
  const v = values[name];
  return Array.isArray(v) ? v.flatMap((s) => String(s).split(',')).filter((s) => s !== '') : [];
};
