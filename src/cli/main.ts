/**
 * The podlog CLI: rkt's verbs. Global flags (--dir, --store, --host-id, --debug) go before or after the
 * verb. The engine's own errors exit with 254, as rkt's do.
 */
import { dataDir, dataDirHostId, storeUrl } from '../config.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { out, str, type Invocation } from './command.js';
import { findCommand, GLOBAL_OPTIONS, GLOBAL_VALUE_FLAGS, helpText, unknownCommand } from './help.js';
import { booleanValue, parseFlags } from './parse.js';

const usage = (message: string): PodlogError => new PodlogError('EUSAGE', message);

/** The arguments podlog reads itself: those before the first `--` (after it come an app's or a command's). */
const ownArgs = (argv: string[]): string[] => (argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv);

/** Where a command's data, log and host are, from the global flags. */
const locations = (flags: { dir?: string; store?: string; hostId?: string }): Pick<Invocation, 'dir' | 'store' | 'hostId'> => {
  for (const [name, value] of Object.entries({ '--dir': flags.dir, '--store': flags.store, '--host-id': flags.hostId })) {
    // An empty --dir would make the current directory the data dir.
    if (value === '') throw usage(`${name} cannot be empty`);
  }
  const dir = dataDir(flags.dir);
  return { dir, store: storeUrl(dir, flags.store), hostId: dataDirHostId(dir, flags.hostId) };
};

export const main = async (argv: string[]): Promise<number> => {
  const verbAt = argv.findIndex((a, i) => !a.startsWith('-') && !(i > 0 && GLOBAL_VALUE_FLAGS.includes(argv[i - 1]!)));
  const own = ownArgs(argv);
  const entry = verbAt === -1 ? undefined : findCommand(argv[verbAt]!);
  if (verbAt !== -1 && !entry) throw unknownCommand(argv[verbAt]!);
  const wantsHelp = own.some((a) => a === '--help' || a === '-h');
  // rkt has `rkt version`; `--version` alone is what every other tool answers.
  const wantsVersion = !entry && !wantsHelp && own.includes('--version');
  const command = wantsHelp ? undefined : entry ?? (wantsVersion ? findCommand('version') : undefined);
  if (!command) {
    if (!entry && !wantsHelp) parseFlags(argv, GLOBAL_OPTIONS, { help: 'podlog --help', positionals: false });
    out(await helpText(entry?.name));
    return 0;
  }
  const verb = await command.load();
  const rest = verbAt === -1 ? argv.filter((a) => a !== '--version') : [...argv.slice(0, verbAt), ...argv.slice(verbAt + 1)];
  if (verb.raw) return verb.run(rawInvocation(argv.slice(0, verbAt), argv.slice(verbAt + 1)));
  const { values, positionals } = parseFlags(rest, { ...GLOBAL_OPTIONS, ...verb.options }, { verb: command.name, help: `podlog ${command.name} --help`, positionals: true });
  return verb.run({
    values,
    positionals,
    ...locations({ dir: str(values, 'dir'), store: str(values, 'store'), hostId: str(values, 'host-id') }),
    debug: values.debug === true,
  });
};

/**
 * For verbs that parse their own flags: the global flags taken out wherever they are, except among
 * an app's arguments (from `--` to `---`), which are the app's.
 */
const rawInvocation = (before: string[], after: string[]): Invocation => {
  const args = [...before, ...after];
  const flags: Record<string, string> = {};
  let debug = false;
  const kept: string[] = [];
  for (let i = 0, appArgs = false; i < args.length; i++) {
    const a = args[i]!;
    const name = GLOBAL_VALUE_FLAGS.find((f) => a === f || a.startsWith(`${f}=`));
    if (appArgs) {
      kept.push(a);
      appArgs = a !== '---';
    } else if (name !== undefined) {
      if (a === name && i + 1 === args.length) throw usage(`${name} needs a value`);
      flags[name] = a === name ? args[++i]! : a.slice(name.length + 1);
    } else if (a === '--debug' || a.startsWith('--debug=')) debug = booleanValue('--debug', a.slice('--debug='.length));
    else if (i < before.length) throw usage(`unknown flag ${a} before the command; see podlog --help`);
    else {
      kept.push(a);
      appArgs = a === '--';
    }
  }
  return { values: {}, positionals: kept, ...locations({ dir: flags['--dir'], store: flags['--store'], hostId: flags['--host-id'] }), debug };
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
      const debug = ownArgs(process.argv.slice(2)).some((a) => a === '--debug' || a === '--debug=true');
      process.stderr.write(`podlog: ${isPodlogError(e) || !debug ? (e as Error).message : (e as Error).stack}\n`);
      process.exitCode = isPodlogError(e) ? e.exitCode : 254;
    },
  );
};
