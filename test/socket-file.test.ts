/** claimSocket: what a service may take over before it listens, and what it must leave alone. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimSocket } from '../src/socket-file.js';

const scratch = (t: { teardown: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-socket-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

test('a file that is not a socket is refused and left as it was (a mistyped --socket removes nothing)', async (t) => {
  const file = join(scratch(t), 'events.db');
  writeFileSync(file, 'the log');
  await t.throwsAsync(claimSocket(file, 'an API service'), { code: 'EUSAGE', message: /exists and is not a socket: an API service will not replace it/ });
  t.is(readFileSync(file, 'utf8'), 'the log');
});

test('a live socket is refused; a stale one is removed; a missing one is fine', async (t) => {
  const path = join(scratch(t), 'api.sock');
  await t.notThrowsAsync(claimSocket(path, 'an API service'));
  const server = createServer();
  await new Promise<void>((ok) => server.listen(path, ok));
  await t.throwsAsync(claimSocket(path, 'an API service'), { message: /an API service already listens on/ });
  await new Promise((ok) => server.close(ok));
  // A service killed with SIGKILL leaves its socket file behind, with nobody answering on it.
  const stale = join(scratch(t), 'stale.sock');
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  t.true(lstatSync(stale).isSocket());
  await claimSocket(stale, 'an API service');
  t.false(existsSync(stale));
});
