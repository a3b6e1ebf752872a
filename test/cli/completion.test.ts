/**
 * Shell completion as a user gets it: the script `podlog completion bash` prints, loaded in a real
 * bash, completes verbs, sub-commands, flags, the UUID of a pod from a prefix, and image names, from
 * the data dir the command line names.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { aciPath, repoRoot } from '../helpers/fixtures.js';
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

/** The line as a real interactive bash leaves it after one TAB (readline's own word splitting and quoting). */
const tab = (line: string, env: Record<string, string> = {}): string => {
  const script = join(mkdtempSync(join(tmpdir(), 'podlog-completion-')), 'podlog.bash');
  writeFileSync(script, spawnSync(podlogBin, ['completion', 'bash'], { encoding: 'utf8' }).stdout);
  const r = spawnSync('python3', [join(repoRoot, 'test', 'helpers', 'complete-line.py'), line, script], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${dirname(podlogBin)}:${process.env.PATH}`, ...env },
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`complete-line.py: ${r.stderr}`);
  return r.stdout.trimEnd();
};

/** A data dir of the test's own with one prepared pod. */
const preparedPod = (t: ExecutionContext) => {
  const d = dataDir();
  t.teardown(d.cleanup);
  const prepared = d.podlog(['prepare', aciPath('busybox-gzip')]);
  t.is(prepared.status, 0, prepared.stderr);
  return { d, uuid: prepared.stdout.trim() };
};

test('bash: the script registers itself and completes verbs, sub-commands and flags', (t) => {
  const { registered, replies } = complete(['podlog', 'st']);
  t.is(registered, 'complete -o bashdefault -o default -F _podlog podlog');
  t.deepEqual(replies, ['status', 'stop']);
  t.deepEqual(complete(['podlog', 'image', 'r']).replies, ['render', 'rm']);
  t.deepEqual(complete(['podlog', 'gc', '--gr']).replies, ['--grace-period=']);
  t.deepEqual(complete(['podlog', 'run', 'img', '--volu']).replies, ['--volume=']);
  // Global flags after the verb are the verb's too.
  t.deepEqual(complete(['podlog', 'list', '--host']).replies, ['--host-id=']);
});

test('bash: a UUID prefix completes to the pod, and an image name to the images in the store, of the --dir given', (t) => {
  const { d, uuid } = preparedPod(t);
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

test('an unknown shell or list is refused', (t) => {
  const run = (args: string[]) => spawnSync(podlogBin, args, { encoding: 'utf8' });
  t.is(run(['completion', 'bash', 'zsh']).stderr, 'podlog: completion: takes one shell (bash, zsh or fish)\n');
  const bad = run(['completion', 'tcsh']);
  t.is(bad.status, 254);
  t.is(bad.stderr, 'podlog: completion: unknown shell "tcsh" (bash, zsh or fish)\n');
  t.is(run(['completion', '--list', 'volumes']).status, 254);
});

test('bash, through readline: --dir=DIR and ~ are read as the shell reads them, file names keep their spaces', (t) => {
  const { d, uuid } = preparedPod(t);
  // bash splits --dir=DIR at '=' into three words; the script puts them back together.
  t.is(tab(`podlog --dir=${d.dir} status ${uuid.slice(0, 6)}`), `podlog --dir=${d.dir} status ${uuid}`);
  t.is(tab(`podlog --dir=${d.dir} sta`), `podlog --dir=${d.dir} status`);
  // ~ in --dir is the home directory, as podlog will get it from the shell.
  t.is(tab(`podlog --dir ~/${d.dir.split('/').at(-1)} rm ${uuid.slice(0, 6)}`, { HOME: dirname(d.dir) }), `podlog --dir ${dirname(d.dir)}/${d.dir.split('/').at(-1)} rm ${uuid}`);
  // Anything else is bash's own file name completion: a space stays in the name, a directory gets its slash.
  const files = join(d.dir, 'some files');
  mkdirSync(join(files, 'subdir'), { recursive: true });
  writeFileSync(join(files, 'an image.aci'), '');
  t.is(tab(`podlog fetch ${files.replaceAll(' ', '\\ ')}/an`), `podlog fetch ${files}/an image.aci`);
  t.is(tab(`podlog fetch ${files.replaceAll(' ', '\\ ')}/su`), `podlog fetch ${files}/subdir/`);
  // A flag's value is a file name too, not a verb or a pod.
  t.is(tab(`podlog --dir ${files.replaceAll(' ', '\\ ')}/su`), `podlog --dir ${files}/subdir/`);
  t.is(tab(`podlog status --uuid-file ${files.replaceAll(' ', '\\ ')}/an`), `podlog status --uuid-file ${files}/an image.aci`);
});

test('zsh (through bashcompinit) and fish complete a UUID prefix and verbs, for the --dir given', (t) => {
  const { d, uuid } = preparedPod(t);
  const env = { ...process.env, PATH: `${dirname(podlogBin)}:${process.env.PATH}` };
  for (const shell of ['zsh', 'fish']) {
    if (spawnSync(shell, ['--version']).error !== undefined) return t.fail(`${shell} is not installed (debian-packages.txt has it)`);
  }
  // zsh: the bash function, run by zsh with arrays as bash has them. bashcompinit's compgen leaves the
  // matching of the typed prefix to zsh, so the replies are every candidate.
  const zsh = (words: string[]) => {
    const r = spawnSync('zsh', ['-c', `source <(podlog completion zsh) && COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}) && COMP_CWORD=${words.length - 1}; _podlog; print -l -- $COMPREPLY`], { encoding: 'utf8', env });
    t.is(r.stderr, '');
    return r.stdout.split('\n').filter((l) => l !== '');
  };
  t.deepEqual(zsh(['podlog', '--dir', d.dir, 'status', uuid.slice(0, 4)]), [uuid]);
  t.deepEqual(zsh(['podlog', '--dir', `${d.dir}/other`, 'status', uuid.slice(0, 4)]), []);
  t.true(zsh(['podlog', `--dir=${d.dir}`, 'sto']).includes('stop'));
  t.deepEqual(zsh(['podlog', 'image', '']), ['list', 'rm', 'gc', 'render', 'extract', 'export', 'verify', 'cat-manifest']);
  // fish: what `complete -C` offers for the line, as fish's own TAB would.
  const fish = (line: string) =>
    spawnSync('fish', ['-c', `podlog completion fish | source; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8', env }).stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0]).sort();
  t.deepEqual(fish(`podlog --dir ${d.dir} status ${uuid.slice(0, 4)}`), [uuid]);
  t.deepEqual(fish(`podlog --dir ${d.dir} image rm bus`).length > 0, true);
  t.deepEqual(fish('podlog st'), ['status', 'stop']);
  t.deepEqual(fish('podlog gc --grace'), ['--grace-period']);
});
