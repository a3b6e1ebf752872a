/**
 * Help that answers: every verb's help is generated from the flag table its parser reads, so every flag
 * it accepts is in it with what it does; mistyped flags and verbs name the closest real one; `version`
 * asks each part for its version.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { flagGroupsOf, GLOBAL_OPTIONS } from '../../src/cli/help.js';
import { parseFlags } from '../../src/cli/parse.js';
import { parseRunFlags, RUN_VERB_FLAGS, type RunVerb } from '../../src/cli/run-flags.js';
import { closest } from '../../src/cli/suggest.js';
import { repoRoot } from '../helpers/fixtures.js';
import { dataDir, podlogBin } from '../stage0/podlog.js';

const podlog = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(podlogBin, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

test('help VERB and VERB --help print the same text, with every flag of the verb, its description and examples', async (t) => {
  for (const entry of COMMANDS) {
    const command = await entry.load();
    const help = podlog(['help', entry.name]);
    t.is(help.status, 0, `${entry.name}: ${help.stderr}`);
    t.is(podlog([entry.name, '--help']).stdout, help.stdout, entry.name);
    t.regex(help.stdout, new RegExp(`^Usage: podlog ${entry.name}\\b`), entry.name);
    t.true(help.stdout.includes(entry.summary), entry.name);
    const groups = flagGroupsOf(command);
    for (const { options } of groups) {
      for (const [name, flag] of Object.entries(options)) {
        t.truthy(flag.description, `${entry.name} --${name} has a description`);
        t.true(help.stdout.includes(`--${name}`) && help.stdout.includes(flag.description), `${entry.name} --${name} is in its help`);
      }
    }
    t.true(command.examples.length > 0, `${entry.name} has an example`);
    t.regex(help.stdout, /\nExamples:\n {2}\S/, entry.name);
    // The global flags are every verb's.
    t.regex(help.stdout, /\n {2}--store URL +the event log/, entry.name);
  }
});

test('help shows defaults: the parser\'s, and those computed when the verb runs', (t) => {
  const gc = podlog(['gc', '--help']).stdout;
  t.regex(gc, /--grace-period DURATION +how long a pod stays marked as garbage before it is removed \(default: 30m\)/);
  const run = podlog(['help', 'run']).stdout;
  t.regex(run, /--hostname NAME +the pod's host name \(default: podlog-UUID\)/);
  // The run verbs' per-app flags are their own group, as they apply to the image before them.
  t.regex(run, /\nApp flags \(each applies to the IMAGE before it\):\n(.*\n)*? {2}--exec PATH /);
  t.regex(podlog(['status', '--help']).stdout, /--wait\[=DURATION\] /);
  // app add takes only fetch flags for the pod: its --mount follows the image, as the app's.
  const addGroup = /\nadd: App flags[^\n]*:\n((?: {2}.*\n)*)/.exec(podlog(['app', '--help']).stdout)?.[1] ?? '';
  t.regex(addGroup, /--mount volume=NAME,target=PATH/);
});

test('the run verbs\' help is their parser\'s table: every flag of the verb, no other', (t) => {
  const help = podlog(['help', 'run-prepared']).stdout;
  for (const [name, spec] of RUN_VERB_FLAGS) {
    t.is(new RegExp(`\\n {2}--${name}\\b`).test(help), spec.verbs.includes('run-prepared'), name);
  }
});

test('status accepts every flag its help lists (its parser is its own)', async (t) => {
  const status = await COMMANDS.find((c) => c.name === 'status')!.load();
  const d = dataDir();
  t.teardown(d.cleanup);
  for (const name of Object.keys(flagGroupsOf(status)[0]!.options)) {
    const arg = name === 'format' ? '--format=json' : name === 'uuid-file' ? `--uuid-file=${join(d.dir, 'absent')}` : `--${name}`;
    const r = d.podlog(['status', arg, '0123abcd']);
    t.is(r.status, 254);
    t.notRegex(r.stderr, /unknown flag/, name);
  }
});

test('a mistyped flag or verb names the closest one; a word like no other gets no guess', (t) => {
  const cases: Array<[string[], string]> = [
    [['stop', '--forse', 'x'], 'podlog: stop: unknown flag --forse (did you mean --force?) (see podlog stop --help)\n'],
    [['run', '--volum=data,kind=empty', 'img'], 'podlog: unknown flag --volum (did you mean --volume?) (see podlog run --help)\n'],
    [['status', '--wiat', 'x'], 'podlog: status: unknown flag --wiat (did you mean --wait?)\n'],
    [['app', 'start', '--ap=web', 'x'], 'podlog: app start: unknown flag --ap (did you mean --app?) (see podlog app --help)\n'],
    [['lsit'], 'podlog: unknown command "lsit" (did you mean list?); see podlog --help\n'],
    [['gc', '--xyzzy'], 'podlog: gc: unknown flag --xyzzy (see podlog gc --help)\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = podlog(['--dir', '/nonexistent/podlog-help-test', ...args]);
    t.is(r.status, 254, args.join(' '));
    t.is(r.stderr, stderr);
  }
});

test('closest: within a third of the word, a unique prefix, or nothing', (t) => {
  t.is(closest('volum', ['volume', 'mount']), 'volume');
  t.is(closest('hsotname', ['hostname', 'host-id']), 'hostname');
  t.is(closest('grace', ['grace-period', 'expire-prepared']), 'grace-period');
  t.is(closest('zz', ['net', 'dns']), undefined);
  t.is(closest('d', ['dns', 'dir']), undefined);
});

test('version and --version: podlog, stage1 and addon each say their version; a missing stage1 is named and exits 254', (t) => {
  const pkg = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const crate = /^version = "([^"]+)"/m.exec(readFileSync(join(repoRoot, 'crates', 'stage1', 'Cargo.toml'), 'utf8'))![1]!;
  const v = podlog(['version']);
  t.is(v.status, 0, v.stderr);
  t.is(podlog(['--version']).stdout, v.stdout);
  t.regex(v.stdout, new RegExp(`^podlog Version: ${pkg}\n`));
  t.regex(v.stdout, new RegExp(`\nstage1 Version: ${crate} \\(`));
  t.regex(v.stdout, /\nstage1 Features: .*\+seccomp/);
  t.regex(v.stdout, /\naddon Version: \d+\.\d+\.\d+ \(/);
  t.regex(v.stdout, /\naddon Features: \+gzip \+bzip2 \+xz \+zstd\n/);
  t.regex(v.stdout, /\nStore Schema Version: sqlite \d+, postgresql \d+\n/);
  // A server's log is named, its password not; nothing is asked of it.
  const pg = podlog(['--store', 'postgres://bob:s3cret@db.invalid/podlog', 'version']);
  t.is(pg.status, 0, pg.stderr);
  t.regex(pg.stdout, /\nEvent Log: postgres:\/\/bob:<redacted>@db\.invalid\/podlog \(a server: not asked\)\n/);
  t.notRegex(pg.stdout, /s3cret/);
  const missing = podlog(['version'], { PODLOG_STAGE1: '/nonexistent/podlog-stage1' });
  t.is(missing.status, 254);
  t.regex(missing.stdout, /\nstage1 Version: unknown\n/);
  t.regex(missing.stderr, /^podlog: version: stage1 \/nonexistent\/podlog-stage1 did not run: .*ENOENT/);
});

/** An example's words as a shell splits them (single quotes only), up to a pipe or a redirection. */
const words = (line: string): string[] => {
  const all = [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  const end = all.findIndex((w) => w === '|' || w.startsWith('>'));
  return end === -1 ? all : all.slice(0, end);
};

test("every example in help is taken by its verb's parser (the run verbs' own, or the flag table's)", async (t) => {
  const RUN_VERBS: Record<string, RunVerb> = { run: 'run', prepare: 'prepare', 'run-prepared': 'run-prepared' };
  for (const entry of COMMANDS) {
    const command = await entry.load();
    for (const example of command.examples.filter((e) => e.startsWith(`podlog ${entry.name}`))) {
      const args = words(example).slice(2);
      if (RUN_VERBS[entry.name] !== undefined) t.notThrows(() => parseRunFlags(args, RUN_VERBS[entry.name]), example);
      // status and app read their flags by hand; their tables are checked by running them (above and in the app tests).
      else if (!command.raw) t.notThrows(() => parseFlags(args, { ...GLOBAL_OPTIONS, ...command.options }, { verb: entry.name, help: '', positionals: true }), example);
    }
  }
});

test("boolean flags take Go's =true and =false, as rkt's do", (t) => {
  const options = { 'pretty-print': { type: 'boolean', default: true, description: 'x' }, 'no-legend': { type: 'boolean', default: false, description: 'y' } } as const;
  t.deepEqual(parseFlags(['--pretty-print=false', '--no-legend=true', 'a'], options, { help: '', positionals: true }), { values: { 'pretty-print': false, 'no-legend': true }, positionals: ['a'] });
  // After "--" a word is an argument, whatever it looks like.
  t.deepEqual(parseFlags(['--', '--no-legend=true'], options, { help: '', positionals: true }).positionals, ['--no-legend=true']);
  const status = podlog(['--dir', '/nonexistent/podlog-help-test', 'status', '--all-hosts=true', '0123abcd']);
  t.is(status.stderr, 'podlog: no matches found for "0123abcd"\n');
  // The verbs that read their own flags take the global ones so too.
  for (const args of [['--debug=false', 'status', '0123abcd'], ['status', '0123abcd', '--debug=false']]) {
    t.is(podlog(['--dir', '/nonexistent/podlog-help-test', ...args]).stderr, 'podlog: no matches found for "0123abcd"\n', args.join(' '));
  }
  t.is(podlog(['--dir', '/nonexistent/podlog-help-test', 'status', '--format']).stderr, 'podlog: status: --format needs a value\n');
});
