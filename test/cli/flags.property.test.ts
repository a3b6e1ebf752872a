/**
 * The flag grammar under generated input, in process: whatever the command line, the parse, config
 * and check layer of the run verbs, and `main()` of the other verbs on an empty data dir, either
 * accept it or refuse it with a PodlogError (exit 254) that says something; nothing else is thrown.
 */
import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { main } from '../../src/cli/main.js';
import { checkRunFlags, parseRunFlags, type RunVerb } from '../../src/cli/run-flags.js';
import { PodlogError } from '../../src/errors.js';
import { stage1Path } from '../../src/native.js';
import { checkPrepareConfig, stage1RunOptions } from '../../src/stage0/config.js';
import { anyRunArgv, appVerbArgv, makeWorld } from './flag-arbitraries.js';

const world = makeWorld();
// The same stage1 as without it, found once: src/native.ts reads package.json to find it on every call.
process.env.PODLOG_STAGE1 = stage1Path();
test.after.always(() => world.cleanup());

const RUN_VERBS: RunVerb[] = ['run', 'prepare', 'run-prepared', 'app-sandbox', 'app-add'];
let cases = 0;

/** A refusal as the CLI reports it: a PodlogError with a message, which exits 254. */
const isRefusal = (e: unknown): boolean => e instanceof PodlogError && e.message.trim() !== '' && e.exitCode === 254;

test.serial('run, prepare and run-prepared: any command line is accepted whole, or refused with a PodlogError', (t) => {
  const numRuns = 85_000;
  let accepted = 0;
  fc.assert(
    fc.property(fc.oneof(...RUN_VERBS.map((verb) => anyRunArgv(world, { anyString: true }, verb).map((argv) => [verb, argv] as const))), ([verb, argv]) => {
      let input;
      try {
        input = checkRunFlags(argv, verb);
      } catch (e) {
        return isRefusal(e);
      }
      accepted++;
      // Accepted: the checks hold again on what they returned, and no file is left to read.
      stage1RunOptions(input.cfg);
      return verb === 'run-prepared' || (input.cfg.envFromFile.length === 0 && isDeepStrictEqual(checkPrepareConfig(input.cfg), input.cfg));
    }),
    { numRuns },
  );
  cases += numRuns;
  t.log(`${numRuns} generated command lines of ${RUN_VERBS.join(', ')}: ${accepted} accepted, the others refused`);
  t.pass();
});

test.serial('everything after "--" up to "---" is the app\'s, -h and flags included', (t) => {
  const numRuns = 10_000;
  const arg = fc.oneof(fc.constantFrom('-h', '--help', '--exec', '--', '--name=x', '-'), fc.string({ unit: 'binary', maxLength: 8 })).filter((a) => a !== '---');
  fc.assert(
    fc.property(fc.array(arg, { maxLength: 8 }), fc.boolean(), (args, end) => {
      const f = parseRunFlags(['img', '--', ...args, ...(end ? ['---', 'img2'] : [])], 'run');
      return isDeepStrictEqual(f.apps[0]!.args, args) && f.apps.length === (end ? 2 : 1);
    }),
    { numRuns },
  );
  cases += numRuns;
  t.log(`${numRuns} generated app argument lists`);
  t.pass();
});

/** Verbs `main()` can run on an empty data dir in a moment: no network, no pod, nothing that waits. */
const NON_RUN_VERBS = ['stop', 'rm', 'enter', 'gc', 'status', 'list', 'cat-manifest', 'replay', 'events', 'run-prepared', 'app'];
/** status parses its own flags. */
const STATUS_FLAGS = ['--wait', '--wait=1ms', '--wait=soon', '--format', 'json', '--format=yaml', '--uuid-file'];
const WORDS = ['', '0', '0123abcd', '-', '--', '-h', '--help', '--debug', 'json', '30s', '1e5', '-1', '2024-01-01', 'junk'];

const verbArgv = async (verb: string): Promise<fc.Arbitrary<string[]>> => {
  if (verb === 'run-prepared') return anyRunArgv(world, { anyString: false }, verb);
  if (verb === 'app') return appVerbArgv(world).map((argv) => argv.slice(1));
  const { options } = await COMMANDS.find((c) => c.name === verb)!.load();
  const value = fc.oneof(fc.constantFrom(...WORDS, world.values['uuid-file']!.ok[0]!), fc.string({ maxLength: 10 }));
  const flags = Object.entries(options)
    .filter(([name]) => name !== 'follow')
    .map(([name, o]) =>
      o.type === 'boolean'
        ? fc.constantFrom([`--${name}`], [`--${name}=true`])
        : fc.oneof(value.map((v) => [`--${name}=${v}`]), value.map((v) => [`--${name}`, v]), fc.constant([`--${name}`])),
    );
  const word = fc.oneof(fc.constantFrom(...WORDS, ...(verb === 'status' ? STATUS_FLAGS : [])), fc.uuid(), fc.string({ maxLength: 10 }));
  return fc.array(fc.oneof(...flags, word.map((w) => [w])), { maxLength: 6 }).map((groups) => groups.flat());
};

/** Runs `fn` with stdout and stderr swallowed (usage texts, "no matches" lines) and in a scratch cwd. */
const quietly = async <T>(cwd: string, fn: () => Promise<T>): Promise<T> => {
  const [out, err, before] = [process.stdout.write, process.stderr.write, process.cwd()];
  process.stdout.write = (() => true) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  process.chdir(cwd);
  try {
    return await fn();
  } finally {
    process.chdir(before);
    process.stdout.write = out;
    process.stderr.write = err;
  }
};

test.serial('main() of the other verbs on an empty data dir: an exit code, or a PodlogError', async (t) => {
  const numRuns = 5_000;
  const codes = new Map<string, number>();
  const scratch = mkdtempSync(join(tmpdir(), 'podlog-main-'));
  const dir = join(scratch, 'data');
  try {
    const perVerb = await Promise.all(NON_RUN_VERBS.map(async (verb) => (await verbArgv(verb)).map((argv) => [verb, ...argv])));
    // --dir is always the test's own: a generated one could name any directory.
    const argvs = fc.oneof(...perVerb).filter((argv) => !argv.some((a) => a.startsWith('--dir')));
    await fc.assert(
      fc.asyncProperty(argvs, async (argv) => {
        let outcome: string;
        try {
          outcome = `exit ${await quietly(scratch, () => main(['--dir', dir, ...argv]))}`;
        } catch (e) {
          if (!isRefusal(e)) return false;
          outcome = 'refused';
        }
        codes.set(outcome, (codes.get(outcome) ?? 0) + 1);
        return outcome === 'exit 0' || outcome === 'exit 254' || outcome === 'refused';
      }),
      { numRuns },
    );
    cases += numRuns;
    t.log(`${numRuns} generated command lines of ${NON_RUN_VERBS.join(', ')}: ${[...codes].map(([o, n]) => `${n} ${o}`).join(', ')}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  t.pass();
});

test.after('the case count', (t) => {
  t.log(`${cases} generated cases in all`);
});
