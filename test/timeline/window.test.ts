/**
 * What a --since/--until window draws: a pod's state at any instant is the one its last event before it
 * left it in, so a window shows every pod that existed during it in the state it held, whatever the
 * window's end; and a window with no pod in it is drawn as that window, not from 1970.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podStream } from '../../src/engine/streams.js';
import { openStore } from '../../src/store/open.js';
import { podlogBin } from '../stage0/podlog.js';
import { writeSyntheticLog, type SyntheticLog } from './synthetic.js';
import type { Trace, TraceEvent } from './trace-format.js';

const HOST = 'synthetic-host';
const dir = mkdtempSync(join(tmpdir(), 'podlog-timeline-window-'));
let log: SyntheticLog | undefined;
/** Pod 0 (synthetic.ts SHAPES: collected by a gc a minute after it exited): the times of its events. */
let times: Map<string, number> | undefined;

test.before(async () => {
  log = await writeSyntheticLog(dir, 10, { hostId: HOST });
  const store = await openStore(dir, { access: 'inspect' });
  try {
    times = new Map((await store.readStream(podStream(log.uuids[0]!))).map((e) => [e.type, Date.parse(e.meta.time)]));
  } finally {
    await store.close();
  }
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]): string => {
  const r = spawnSync(podlogBin, ['--dir', dir, '--host-id', HOST, 'timeline', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`timeline ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
};
const iso = (ms: number): string => new Date(ms).toISOString();

/** A pod's state slices in a trace, as [state, start, end] in ms after the trace's origin. */
const slicesOf = (trace: Trace & { otherData?: { origin: string } }, uuid: string): Array<[string, number, number]> => {
  const thread = trace.traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name' && String(e.args!.name).startsWith(uuid.slice(0, 8)));
  if (thread === undefined) return [];
  return trace.traceEvents
    .filter((e): e is TraceEvent & { ts: number; dur: number } => e.ph === 'X' && e.pid === thread.pid && e.tid === thread.tid)
    .map((e) => [e.name, Math.round(e.ts / 1000), Math.round((e.ts + e.dur) / 1000)]);
};

test('a pod exited through the whole window is drawn exited over it, with --until as without', (t) => {
  const exited = times!.get('PodExited')!;
  const gc = times!.get('PodMarkedGarbage')!;
  t.true(gc - exited > 10_000, 'the synthetic pod is collected long after it exits');
  const [since, until] = [exited + 1000, exited + 5000];
  const pod = log!.uuids[0]!;
  const windowed = JSON.parse(run('--format', 'trace', '--since', iso(since), '--until', iso(until))) as Trace;
  // The window is the trace's: its origin is --since.
  t.is((windowed as { otherData?: { origin: string } }).otherData?.origin, iso(since));
  t.deepEqual(slicesOf(windowed, pod), [['exited', 0, 4000]]);
  // --since alone shows the same state at the same instants (and the gc after the window).
  const open = JSON.parse(run('--format', 'trace', '--since', iso(since))) as Trace;
  t.deepEqual(slicesOf(open, pod).slice(0, 1), [['exited', 0, gc - since]]);
  // A window ending while the pod was still running shows it running to the window's end.
  const started = times!.get('PodStarted')!;
  const early = JSON.parse(run('--format', 'trace', '--since', iso(started + 1), '--until', iso(started + 500))) as Trace;
  t.deepEqual(slicesOf(early, pod), [['running', 0, 499]]);
});

test('a window with no pod in it is drawn as that window; an empty log as now, without an axis', (t) => {
  const [since, until] = [Date.parse('2001-02-03T04:00:00.000Z'), Date.parse('2001-02-03T05:00:00.000Z')];
  const trace = JSON.parse(run('--format', 'trace', '--since', iso(since), '--until', iso(until))) as Trace & { otherData: { origin: string } };
  t.is(trace.otherData.origin, iso(since));
  t.is(trace.traceEvents.filter((e) => e.ph !== 'M').length, 0);
  const svg = run('--format', 'svg', '--since', iso(since), '--until', iso(until));
  t.regex(svg, /podlog timeline: 0 pods/);
  t.regex(svg, /no pod of the log matches from 2001-02-03T04:00:00.000Z to 2001-02-03T05:00:00.000Z/);
  // An hour's axis: ticks in minutes up to 60, none in days or years.
  const ticks = [...svg.matchAll(/<text x="[\d.]+" y="\d+" text-anchor="middle">([^<]+)<\/text>/g)].map((m) => m[1]!);
  t.true(ticks.length > 0);
  t.true(ticks.every((l) => / min$/.test(l) && Number.parseFloat(l) <= 60), ticks.join(', '));
  // A log with no pods at all (another data dir): the trace starts now, the chart has no axis.
  const empty = mkdtempSync(join(tmpdir(), 'podlog-timeline-none-'));
  try {
    const before = Date.now();
    const none = spawnSync(podlogBin, ['--dir', empty, 'timeline', '--format', 'trace'], { encoding: 'utf8' });
    t.is(none.status, 0, none.stderr);
    const origin = Date.parse((JSON.parse(none.stdout) as { otherData: { origin: string } }).otherData.origin);
    t.true(origin >= before - 1000 && origin <= Date.now() + 1000, iso(origin));
    const chart = spawnSync(podlogBin, ['--dir', empty, 'timeline', '--format', 'svg'], { encoding: 'utf8' }).stdout;
    t.regex(chart, /no pod of the log matches</);
    t.false(/text-anchor="middle"/.test(chart), 'no axis');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
