/**
 * `run --interactive` as a person uses it, in a real terminal: tmux (its own server, on a socket of
 * this test) runs podlog, keys are sent, and the screen is read back. The app's shell is on a
 * terminal of the pod's own (`tty` names it inside the pod), sees the caller's window size and its
 * changes, gets Ctrl-C as SIGINT, and its exit code is `run`'s.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { podlogBin } from './podlog.js';

const work = mkdtempSync(join(tmpdir(), 'podlog-interactive-'));
const socket = join(work, 'tmux.sock');
const tmux = (...args: string[]) => spawnSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
test.after.always(() => {
  tmux('kill-server');
  rmSync(work, { recursive: true, force: true });
});

const screen = (): string => tmux('capture-pane', '-p', '-t', 'pod').stdout;

/** Waits until the screen shows `pattern`; returns the screen. */
const waitFor = async (pattern: RegExp, what: string): Promise<string> => {
  for (let i = 0; i < 200; i++) {
    const shown = screen();
    if (pattern.test(shown)) return shown;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the screen never showed ${what}:\n${screen()}`);
};

const type = (keys: string): void => {
  tmux('send-keys', '-t', 'pod', '-l', keys);
  tmux('send-keys', '-t', 'pod', 'Enter');
};

test('an interactive shell: its own terminal, the window size and its changes, Ctrl-C, the exit code', async (t) => {
  const data = join(work, 'data');
  const exit = join(work, 'exit');
  const command = `${podlogBin} --dir ${data} run --interactive ${aciPath('busybox-gzip')} --exec /bin/sh; echo $? > ${exit}; sleep 600`;
  t.is(tmux('new-session', '-d', '-s', 'pod', '-x', '80', '-y', '24', command).status, 0);
  await waitFor(/^\/ #\s*$/m, 'the shell prompt');

  type('tty; stty size');
  const first = await waitFor(/^\d+ \d+$/m, 'the window size');
  t.regex(first, /^\/dev\/pts\/0$/m, "the pod's own terminal");
  t.regex(first, /^24 80$/m);

  tmux('resize-window', '-t', 'pod', '-x', '100', '-y', '30');
  type('clear; stty size');
  t.regex(await waitFor(/^30 100$/m, 'the new window size'), /^30 100$/m, 'SIGWINCH reached the pod');

  type('sleep 300');
  await waitFor(/sleep 300/, 'the sleep');
  tmux('send-keys', '-t', 'pod', 'C-c');
  type('echo interrupted=$?');
  t.regex(await waitFor(/^interrupted=\d+$/m, 'the status of the interrupted sleep'), /^interrupted=130$/m, 'Ctrl-C was SIGINT for the app');

  type('exit 7');
  for (let i = 0; i < 100 && !existsSync(exit); i++) await new Promise((r) => setTimeout(r, 100));
  t.is(readFileSync(exit, 'utf8'), '7\n', "run exits with the app's code");
});

test('--interactive is for one app: two are refused before any pod is created', (t) => {
  const data = join(work, 'two');
  const r = spawnSync(podlogBin, ['--dir', data, 'run', '--interactive', aciPath('busybox-gzip'), aciPath('busybox-plain')], { encoding: 'utf8' });
  t.is(r.status, 254, r.stderr);
  t.regex(r.stderr, /interactive option only supports one image \(the pod has 2 apps\)/);
  const list = spawnSync(podlogBin, ['--dir', data, 'list', '--format', 'json'], { encoding: 'utf8' });
  t.is(list.stdout.trim(), '[]', 'no pod');
});
