/** `podlog timeline` refuses what it cannot draw with rkt's usage exit code (254), naming the problem; and its selection flags select. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podlogBin } from '../stage0/podlog.js';
import { writeSyntheticLog, type SyntheticLog } from './synthetic.js';
import type { Trace } from './trace-format.js';

const HOST = 'synthetic-host';
const dir = mkdtempSync(join(tmpdir(), 'podlog-timeline-refusals-'));
let log: SyntheticLog | undefined;

test.before(async () => {
  log = await writeSyntheticLog(dir, 40, { hostId: HOST });
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const timeline = (...args: string[]) => spawnSync(podlogBin, ['--dir', dir, '--host-id', HOST, 'timeline', ...args], { encoding: 'utf8' });

/** The pods a trace has a track for, by their short UUIDs. */
const tracks = (stdout: string): string[] =>
  (JSON.parse(stdout) as Trace).traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => String(e.args!.name).slice(0, 8));

const refused = (args: string[], message: RegExp) => (t: import('ava').ExecutionContext) => {
  const r = timeline(...args);
  t.is(r.status, 254, r.stderr);
  t.is(r.stdout, '');
  t.regex(r.stderr, message);
};

test('an unknown --format is refused, naming the formats', refused(['--format', 'png'], /^podlog: --format: unknown format "png" \(html, svg, trace\)\n$/));
test('an unknown --state is refused, naming the states', refused(['--state', 'running,sleeping'], /^podlog: --state: unknown state "sleeping" \(embryo, preparing, aborted-prepare, prepared, running, exited, exited-garbage, garbage, deleting, deleted\)\n$/));
test('an unknown --pod is refused', refused(['--pod', '0123abcd-0000'], /^podlog: no matches found for "0123abcd-0000"\n$/));
test('a --since after --until is refused', refused(['--since', '1m', '--until', '2h'], /^podlog: --since 1m is not before --until 2h\n$/));
test('the same --since and --until, read on one clock, are an empty window: refused', refused(['--since', '1h', '--until', '1h'], /^podlog: --since 1h is not before --until 1h\n$/));
test('a pod given as an argument, not with --pod, is refused', refused(['5f3a'], /^podlog: timeline takes no arguments \("5f3a"\): name pods with --pod UUID\n$/));
test('a bad --since is refused', refused(['--since', 'yesterday'], /^podlog: --since: invalid duration "yesterday"/));

test('an ambiguous --pod prefix is refused', (t) => {
  // 40 UUIDs share first hex digits: take one that two of them start with.
  const first = log!.uuids.map((u) => u[0]!);
  const shared = first.find((c, i) => first.indexOf(c) !== i)!;
  refused(['--pod', shared], /^podlog: ambiguous uuid, \d+ matches\n$/)(t);
});

test("another host's pod is named only with --all-hosts", async (t) => {
  const other = mkdtempSync(join(tmpdir(), 'podlog-timeline-hosts-'));
  try {
    const { uuids } = await writeSyntheticLog(other, 2, { hostId: 'host-b' });
    const mine = spawnSync(podlogBin, ['--dir', other, '--host-id', 'host-a', 'timeline', '--pod', uuids[0]!, '--format', 'trace'], { encoding: 'utf8' });
    t.is(mine.status, 254);
    t.regex(mine.stderr, /is on host host-b/);
    const none = spawnSync(podlogBin, ['--dir', other, '--host-id', 'host-a', 'timeline', '--format', 'trace'], { encoding: 'utf8' });
    t.deepEqual(tracks(none.stdout), [], "this host's pods only by default");
    const all = spawnSync(podlogBin, ['--dir', other, '--host-id', 'host-a', 'timeline', '--all-hosts', '--format', 'trace'], { encoding: 'utf8' });
    t.deepEqual(tracks(all.stdout), uuids.map((u) => u.slice(0, 8)));
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

test('--pod, --state and --since select: the named pods, the pods in those states, the pods alive in the window', (t) => {
  const uuids = log!.uuids;
  t.deepEqual(tracks(timeline('--format', 'trace', '--pod', uuids[3]!.slice(0, 13), '--pod', uuids[5]!).stdout), [uuids[3]!.slice(0, 8), uuids[5]!.slice(0, 8)]);
  // Every tenth synthetic pod is still running (SHAPES), the rest ended.
  const running = tracks(timeline('--format', 'trace', '--state', 'running').stdout);
  t.deepEqual(running, uuids.filter((_, i) => i % 10 === 9).map((u) => u.slice(0, 8)));
  const ended = tracks(timeline('--format', 'trace', '--state', 'aborted-prepare,deleted').stdout);
  t.deepEqual(ended, uuids.filter((_, i) => [0, 2, 6, 7].includes(i % 10)).map((u) => u.slice(0, 8)));
  // The last synthetic pod was collected a minute ago: the pods that exist in the last 10 s are those not
  // collected (exited, aborted, prepared, running), each in the state it holds; the deleted ones are not.
  const recent = tracks(timeline('--format', 'trace', '--since', '10s').stdout);
  t.deepEqual(recent, uuids.filter((_, i) => [1, 3, 4, 5, 6, 8, 9].includes(i % 10)).map((u) => u.slice(0, 8)));
});
