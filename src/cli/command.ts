/** What a CLI verb is: its flags, its help, and what it does. main.ts parses; commands only act. */
import type { ParseArgsConfig } from 'node:util';

export type Options = NonNullable<ParseArgsConfig['options']>;
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
  usage: string;
  options: Options;
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
