/** How the events view names a recorded command (its verb, and sub-command), and when it colours. */
import test from 'ava';
import { WriteStream } from 'node:tty';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { verbOf, wantsColour } from '../../src/cli/event-view.js';

test('a recorded command is named by its verb, and its sub-command when the verb has them', (t) => {
  t.is(verbOf(['--dir', '/var/lib/podlog', 'run', 'busybox.aci']), 'run');
  t.is(verbOf(['app', 'start', '5f3a', '--app=sh']), 'app start');
  t.is(verbOf(['app', 'stop', '5f3a']), 'app stop');
  t.is(verbOf(['app', 'rm', '5f3a', '--app=sh']), 'app rm');
  t.is(verbOf(['--host-id', 'image', 'image', 'gc', '--grace-period=0s']), 'image gc', 'a global flag\'s value is not the verb');
  t.is(verbOf(['log', '--deleted-before=720h', 'compact']), 'log compact', 'flags may come first');
  t.is(verbOf(['trust', 'list']), 'trust list');
  t.is(verbOf(['trust', '--prefix=example.com', 'key.asc']), 'trust', 'no sub-command');
  t.is(verbOf(['rm', 'list']), 'rm', 'only verbs with sub-commands have one');
});

test("a library program's argv is shown as it is, even when a later word is a verb", (t) => {
  t.is(verbOf(['deploy.js', 'run']), 'deploy.js run');
  t.is(verbOf(['--dir', 'run', 'deploy.js', 'run', 'stop']), '--dir run deploy.js run stop');
  t.is(verbOf(['--verbose', 'run']), 'run', 'a flag is not the verb');
  t.is(verbOf(['enter', '5f3a', '--', 'app', 'start']), 'enter', 'what follows -- is the command\'s own');
  t.is(verbOf([]), '(no command line)');
});

test("the registry's sub-commands are each verb's own", async (t) => {
  for (const entry of COMMANDS) t.deepEqual(entry.subcommands ?? [], (await entry.load()).subcommands ?? [], entry.name);
});

test("a pipe is coloured when FORCE_COLOR asks for it, exactly as Node's tty reads FORCE_COLOR", (t) => {
  const pipe = { isTTY: false } as NodeJS.WriteStream;
  for (const value of ['', '1', 'true', '2', '3', '0', 'false', 'yes', '4', 'TRUE', ' 1', '01']) {
    t.is(wantsColour(pipe, { FORCE_COLOR: value }), WriteStream.prototype.hasColors({ FORCE_COLOR: value }), JSON.stringify(value));
  }
  t.true(wantsColour(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' }), 'FORCE_COLOR wins, as in Node');
  t.false(wantsColour(pipe, { FORCE_COLOR: 'yes' }));
  t.false(wantsColour(pipe, { FORCE_COLOR: '4' }));
  t.false(wantsColour(pipe, { TERM: 'xterm-256color', COLORTERM: 'truecolor' }), 'a pipe without FORCE_COLOR');
});
