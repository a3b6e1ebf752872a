/**
 * Compacted pods stay their host's: two hosts share one SQLite log, each prepares, removes and compacts
 * a pod of its own; events and timeline on each show its own PodCompacted only, unless --all-hosts.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { podlogBin } from '../stage0/podlog.js';

const dirA = mkdtempSync(join(tmpdir(), 'podlog-events-host-a-'));
const dirB = mkdtempSync(join(tmpdir(), 'podlog-events-host-b-'));
const store = `sqlite:${join(dirA, 'events.db')}`;
const pods: Record<'A' | 'B', string> = { A: '', B: '' };

const podlog = (host: 'A' | 'B', args: string[]) => {
  const r = spawnSync(podlogBin, ['--dir', host === 'A' ? dirA : dirB, '--store', store, '--host-id', host, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ok = (host: 'A' | 'B', args: string[]): string => {
  const r = podlog(host, args);
  if (r.status !== 0) throw new Error(`${host}: podlog ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
};

test.before(() => {
  for (const host of ['A', 'B'] as const) {
    pods[host] = ok(host, ['prepare', '--insecure-options=image', aciPath('busybox-gzip')]).trim().split('\n').at(-1)!;
    ok(host, ['rm', pods[host]]);
    if (!ok(host, ['log', 'compact']).includes(`compacted pod ${pods[host]}`)) throw new Error(`${host} compacted nothing`);
  }
});
test.after.always(() => {
  for (const dir of [dirA, dirB]) rmSync(dir, { recursive: true, force: true });
});

const compactedIn = (stdout: string): string[] =>
  stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string; stream: string }).filter((e) => e.type === 'PodCompacted').map((e) => e.stream.slice('pod-'.length));

test("each host's events show its own compacted pods, another host's only with --all-hosts", (t) => {
  t.deepEqual(compactedIn(ok('B', ['events', '--json'])), [pods.B]);
  t.deepEqual(compactedIn(ok('A', ['events', '--json'])), [pods.A]);
  t.deepEqual(compactedIn(ok('B', ['events', '--json', '--all-hosts'])).sort(), [pods.A, pods.B].sort());
  const table = ok('B', ['events']);
  t.false(table.includes(pods.A.slice(0, 8)), table);
  t.true(table.includes(pods.B.slice(0, 8)));
});

test("--pod names another host's compacted pod only with --all-hosts", (t) => {
  const refused = podlog('B', ['events', '--pod', pods.A]);
  t.is(refused.status, 254);
  t.regex(refused.stderr, /is on host A/);
  t.deepEqual(compactedIn(ok('B', ['events', '--pod', pods.A, '--json', '--all-hosts'])), [pods.A]);
});

/** The pods a trace draws, by their short UUIDs. */
const tracks = (trace: string): string[] =>
  (JSON.parse(trace) as { traceEvents: Array<{ ph: string; name: string; args?: { name?: string } }> }).traceEvents
    .filter((e) => e.ph === 'M' && e.name === 'thread_name')
    .map((e) => String(e.args?.name).slice(0, 8));

test("timeline leaves another host's compacted pods out unless --all-hosts", (t) => {
  t.deepEqual(tracks(ok('B', ['timeline', '--format', 'trace'])), [pods.B.slice(0, 8)]);
  t.deepEqual(tracks(ok('A', ['timeline', '--format', 'trace'])), [pods.A.slice(0, 8)]);
  t.deepEqual(tracks(ok('B', ['timeline', '--format', 'trace', '--all-hosts'])), [pods.A.slice(0, 8), pods.B.slice(0, 8)]);
});
