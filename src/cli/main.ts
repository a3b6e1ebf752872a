/**
 * The podlog CLI: rkt's verbs. Global flags (--dir, --debug) go before or after the verb. The
 * engine's own errors exit with 254, as rkt's do.
 */
import { parseArgs } from 'node:util';
import { dataDir } from '../config.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { out, type Invocation, type Options } from './command.js';
import { COMMANDS } from './commands/index.js';

const GLOBAL_OPTIONS: Options = {
  dir: { type: 'string' },
  debug: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

const help = (): string =>
  [
    'podlog: an event-sourced pod lifecycle engine (rkt stage0 in TypeScript)',
    '',
    'Usage: podlog [--dir DIR] [--debug] COMMAND [ARGS]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(14)}${c.summary}`),
    '',
    'The data dir is --dir, else $PODLOG_DIR, else /var/lib/podlog (root) or ~/.local/share/podlog.',
  ].join('\n');

export const main = async (argv: string[]): Promise<number> => {
  const verbAt = argv.findIndex((a, i) => !a.startsWith('-') && !(i > 0 && argv[i - 1] === '--dir'));
  const entry = verbAt === -1 ? undefined : COMMANDS.find((c) => c.name === argv[verbAt]);
  if (verbAt !== -1 && !entry) throw new PodlogError('EUSAGE', `unknown command ${JSON.stringify(argv[verbAt])}; see podlog --help`);
  if (!entry) {
    out(help());
    return 0;
  }
  const command = await entry.load();
  if (argv.includes('--help') || argv.includes('-h')) {
    out(`Usage: ${command.usage}\n\n${entry.summary}`);
    return 0;
  }
  if (command.raw) return command.run(rawInvocation(argv.slice(0, verbAt), argv.slice(verbAt + 1)));
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv.slice(0, verbAt), ...argv.slice(verbAt + 1)],
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new PodlogError('EUSAGE', `${entry.name}: ${(e as Error).message}\nUsage: ${command.usage}`);
  }
  const { values, positionals } = parsed;
  return command.run({
    values,
    positionals,
    dir: dataDir(typeof values.dir === 'string' ? values.dir : undefined),
    debug: values.debug === true,
  });
};

/** Global flags before the verb, or anywhere before a `--`, for verbs that parse their own flags. */
const rawInvocation = (before: string[], after: string[]): Invocation => {
  const end = after.includes('--') ? after.indexOf('--') : after.length;
  const flags = [...before, ...after.slice(0, end)];
  let dir: string | undefined;
  let debug = false;
  const kept: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const a = flags[i]!;
    if (a === '--dir') dir = flags[++i];
    else if (a.startsWith('--dir=')) dir = a.slice('--dir='.length);
    else if (a === '--debug' || a === '--debug=true') debug = true;
    else if (i >= before.length) kept.push(a);
  }
  return { values: {}, positionals: [...kept, ...after.slice(end)], dir: dataDir(dir), debug };
};

export const run = (): void => {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    // A closed pipe (`podlog events | head`) is the reader's choice, not an error.
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      const debug = process.argv.includes('--debug');
      process.stderr.write(`podlog: ${isPodlogError(e) || !debug ? (e as Error).message : (e as Error).stack}\n`);
      process.exitCode = isPodlogError(e) ? e.exitCode : 254;
    },
  );
};
