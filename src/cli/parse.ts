/**
 * A verb's flags, read strictly with node:util's parseArgs from the table help prints. rkt's flags are
 * Go's: a boolean also takes `=true` or `=false` (`--no-legend=true`, `cat-manifest
 * --pretty-print=false`), which parseArgs refuses; those are read here. An unknown flag is refused with
 * the closest known one.
 */
import { parseArgs } from 'node:util';
import { PodlogError } from '../errors.js';
import type { Options, Values } from './command.js';
import { didYouMeanFlag } from './suggest.js';

const BOOLEAN_VALUE = /^--([^=]+)=(true|false)$/;

/** A boolean flag's value as Go reads it: `--flag` and `--flag=true` hold, `--flag=false` does not. */
export const booleanValue = (flag: string, v: string): boolean => {
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  throw new PodlogError('EUSAGE', `${flag}: ${JSON.stringify(v)} is not true or false`);
};

/** `where.verb` names the verb in messages (`stop`, `app start`); `where.help` is where its help is. */
export const parseFlags = (args: string[], options: Options, where: { verb?: string; help: string; positionals: boolean }): { values: Values; positionals: string[] } => {
  const end = args.includes('--') ? args.indexOf('--') : args.length;
  const given: Record<string, boolean> = {};
  const kept = args.filter((a, i) => {
    const m = i < end ? BOOLEAN_VALUE.exec(a) : null;
    if (m === null || options[m[1]!]?.type !== 'boolean') return true;
    given[m[1]!] = m[2] === 'true';
    return false;
  });
  try {
    const { values, positionals } = parseArgs({ args: kept, options, allowPositionals: where.positionals, strict: true });
    return { values: { ...values, ...given }, positionals };
  } catch (e) {
    const unknown = (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec((e as Error).message)?.[1] : undefined;
    const message = unknown === undefined ? (e as Error).message : `unknown flag ${unknown}${didYouMeanFlag(unknown, Object.keys(options))}`;
    throw new PodlogError('EUSAGE', `${where.verb === undefined ? '' : `${where.verb}: `}${message} (see ${where.help})`);
  }
};
