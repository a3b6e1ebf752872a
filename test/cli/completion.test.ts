/**
 * Shell completion as a user gets it: the script `podlog completion bash` prints, loaded in a real
 * bash, completes verbs, sub-commands, flags, the UUID of a pod from a prefix, and image names, from
 * the data dir the command line names.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, podlogBin } from '../stage0/podlog.js';

/** What bash's completion function offers for `line` (the word being completed is its last). */
const complete = (line: string[], env: Record<string, string> = {}) => {
  const script = [
    'source <(podlog completion bash)',
    'complete -p podlog',
    `COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${line.length - 1}`,
    '_podlog',
    "printf 'reply:%s\\n' \"${COMPREPLY[@]}\"",
  ].join('\n');
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${dirname(podlogBin)}:${process.env.PATH}`, ...env } });
  if (r.status !== 0) throw new Error(`bash: ${r.stderr}`);
  const [registered, ...replies] = r.stdout.trimEnd().split('\n');
  return { registered, replies: replies.map((l) => l.replace(/^reply:/, '')).filter((l) => l !== '').sort() };
};

test('bash: the script registers itself and completes verbs, sub-commands and flags', (t) => {
  const { registered, replies } = complete(['podlog', 'st']);
  t.is(registered, 'complete -F _podlog podlog');
  t.deepEqual(replies, ['status', 'stop']);
  t.deepEqual(complete(['podlog', 'image', 'r']).replies, ['render', 'rm']);
  t.deepEqual(complete(['podlog', 'gc', '--gr']).replies, ['--grace-period=']);
  t.deepEqual(complete(['podlog', 'run', 'img', '--volu']).replies, ['--volume=']);
  // Global flags after the verb are the verb's too.
  t.deepEqual(complete(['podlog', 'list', '--host']).replies, ['--host-id=']);
});

test('bash: a UUID prefix completes to the pod, and an image name to the images in the store, of the --dir given', (t) => {
  const d = dataDir();
  t.teardown(d.cleanup);
  const prepared = d.podlog(['prepare', aciPath('busybox-gzip')]);
  t.is(prepared.status, 0, prepared.stderr);
  const uuid = prepared.stdout.trim();
  t.regex(uuid, /^[0-9a-f-]{36}$/);
  t.deepEqual(complete(['podlog', '--dir', d.dir, 'status', uuid.slice(0, 4)]).replies, [uuid]);
  t.deepEqual(complete(['podlog', '--dir', d.dir, 'app', 'list', uuid.slice(0, 2)]).replies, [uuid]);
  // Another data dir has no pods: nothing to offer.
  t.deepEqual(complete(['podlog', '--dir', `${d.dir}/other`, 'status', uuid.slice(0, 4)]).replies, []);
  const images = complete(['podlog', '--dir', d.dir, 'image', 'rm', '']).replies;
  t.true(images.length > 0 && images.every((n) => n.includes('busybox')), images.join(' '));
  // A removed pod is offered no more.
  t.is(d.podlog(['rm', uuid]).status, 0);
  t.deepEqual(complete(['podlog', '--dir', d.dir, 'status', uuid.slice(0, 4)]).replies, []);
});

test('completion --list reads without writing: a data dir without a log stays without one', (t) => {
  const d = dataDir();
  t.teardown(d.cleanup);
  const r = d.podlog(['completion', '--list', 'pods']);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '');
  t.is(spawnSync('ls', ['-A', d.dir], { encoding: 'utf8' }).stdout, '');
});

test('zsh and fish get scripts; an unknown shell or list is refused', (t) => {
  const run = (args: string[]) => spawnSync(podlogBin, args, { encoding: 'utf8' });
  t.regex(run(['completion', 'zsh']).stdout, /^# podlog completion for zsh.*\nautoload -U \+X bashcompinit && bashcompinit\n(.*\n)*complete -F _podlog podlog\n$/);
  const fish = run(['completion', 'fish']).stdout;
  t.regex(fish, /\ncomplete -c podlog -n __fish_use_subcommand -a timeline -d /);
  t.regex(fish, /\ncomplete -c podlog -n '__fish_seen_subcommand_from stop' -a '\(podlog completion --list pods 2>\/dev\/null\)'\n/);
  const bad = run(['completion', 'tcsh']);
  t.is(bad.status, 254);
  t.is(bad.stderr, 'podlog: completion: unknown shell "tcsh" (bash, zsh or fish)\n');
  t.is(run(['completion', '--list', 'volumes']).status, 254);
});
