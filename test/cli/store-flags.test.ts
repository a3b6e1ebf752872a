/**
 * The global flags that choose the log and the host: --store (PODLOG_STORE) and --host-id
 * (PODLOG_HOST_ID), before or after the verb, for verbs that parse their own flags (run) too.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bindHostId, dataDirHostId } from '../../src/config.js';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir } from '../stage0/podlog.js';

const run = ['run', aciPath('busybox-gzip'), '--exec', '/bin/true'];

test('--store sqlite:PATH puts the log there, and every event carries --host-id; PODLOG_STORE and PODLOG_HOST_ID do the same', (t) => {
  const d = dataDir();
  const elsewhere = mkdtempSync(join(tmpdir(), 'podlog-store-'));
  try {
    const url = `sqlite:${join(elsewhere, 'fleet.db')}`;
    const r = d.podlog([...run.slice(0, 1), '--store', url, '--host-id=rack-7', ...run.slice(1)]);
    t.is(r.status, 0, r.stderr);
    t.true(existsSync(join(elsewhere, 'fleet.db')));
    t.false(existsSync(join(d.dir, 'events.db')), 'the data dir holds pods, not the log');
    const events = d.podlog(['--store', url, 'events', '--json', '--all-hosts']).stdout.trim().split('\n').map((l) => JSON.parse(l) as { meta: { hostId: string } });
    t.true(events.length > 5);
    t.true(events.every((e) => e.meta.hostId === 'rack-7'));

    const viaEnv = d.podlog(['list', '--format=json'], { PODLOG_STORE: url, PODLOG_HOST_ID: 'rack-7' });
    t.is((JSON.parse(viaEnv.stdout) as Array<{ host: string }>)[0]?.host, 'rack-7');
    // The data dir is rack-7's now: another id on it is refused, and the default is the dir's.
    t.is(readFileSync(join(d.dir, 'host-id'), 'utf8'), 'rack-7\n');
    const refused = d.podlog(['list', '--host-id', 'rack-8'], { PODLOG_STORE: url });
    t.is(refused.status, 254);
    t.regex(refused.stderr, /--host-id rack-8: the data dir .* is host rack-7's/);
    t.is((JSON.parse(d.podlog(['list', '--format=json'], { PODLOG_STORE: url }).stdout) as Array<{ host: string }>)[0]?.host, 'rack-7');
    // Another host (its own data dir) on the same log sees none of rack-7's pods unless asked for every host's.
    const other = dataDir();
    try {
      t.deepEqual(JSON.parse(other.podlog(['list', '--format=json', '--host-id', 'rack-8'], { PODLOG_STORE: url }).stdout), []);
      t.is((JSON.parse(other.podlog(['list', '--format=json', '--all-hosts', '--host-id', 'rack-8'], { PODLOG_STORE: url }).stdout) as unknown[]).length, 1);
    } finally {
      other.cleanup();
    }
  } finally {
    d.cleanup();
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('without --host-id, events carry the machine id', (t) => {
  const d = dataDir();
  try {
    t.is(d.podlog(run).status, 0);
    const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    t.true(d.events().every((e) => (e.meta as { hostId?: string }).hostId === machineId));
  } finally {
    d.cleanup();
  }
});

test('a malformed --store or --host-id is refused before anything is created (254, naming it)', (t) => {
  const d = dataDir();
  try {
    for (const [args, message] of [
      [['--store', 'mysql://db/podlog', 'list'], /--store: "mysql:\/\/db\/podlog" is not a store URL \(sqlite:PATH or postgres:\/\/USER@HOST\/DB\)/],
      [['--store=sqlite:', 'list'], /is not a store URL/],
      [['--store=', 'list'], /--store cannot be empty/],
      [['--host-id', 'a b', ...run], /--host-id: "a b" is not a host id/],
      [['list', '--host-id=../x'], /--host-id: "..\/x" is not a host id/],
    ] as const) {
      const r = d.podlog([...args]);
      t.is(r.status, 254, args.join(' '));
      t.regex(r.stderr, message);
    }
    t.false(existsSync(join(d.dir, 'events.db')));
  } finally {
    d.cleanup();
  }
});

test('bindHostId (a library caller): binds a new data dir, accepts its own host again, refuses another', (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'podlog-bind-')), 'data');
  try {
    bindHostId(dir, 'rack-7');
    t.is(readFileSync(join(dir, 'host-id'), 'utf8'), 'rack-7\n');
    t.notThrows(() => bindHostId(dir, 'rack-7'));
    t.throws(() => bindHostId(dir, 'rack-8'), { code: 'EHOST_ID', message: /--host-id rack-8: the data dir .* is host rack-7's/ });
    t.is(dataDirHostId(dir), 'rack-7');
  } finally {
    rmSync(dirname(dir), { recursive: true, force: true });
  }
});
