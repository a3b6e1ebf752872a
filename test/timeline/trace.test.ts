/**
 * `podlog timeline --format trace` over a log written by real runs (as root, under scripts/isolated.sh):
 * a pod whose app exits 3, a run whose overlay effect fails, a run killed after an intent that `list`
 * reconciles, a long-running pod stopped, and a gc of them all. The trace must be what Perfetto and
 * chrome://tracing read (trace-format.ts), and say what happened: one track per pod, the states in the
 * machine's order, the exit code, the failure, the reconciler's answer and who recorded each.
 */
import test from 'ava';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, startRun, waitForRunning, type DataDir } from '../stage0/podlog.js';
import { traceProblems, type Trace, type TraceEvent } from './trace-format.js';

const busybox = aciPath('busybox-gzip');

interface Scenario {
  d: DataDir;
  exit3: string;
  failed: string;
  crashed: string;
  stopped: string;
  trace: Trace;
}
let scenario: Scenario | undefined;
const s = (): Scenario => scenario!;

/** The pods of the log, oldest first (deleted ones too: `list` no longer shows them after the gc). */
const podsOf = (d: DataDir): string[] => [...new Set(d.events().filter((e) => e.type === 'PrepareRequested').map((e) => e.data.uuid as string))];

test.before(async () => {
  const d = dataDir();
  const newPod = (before: string[]): string => podsOf(d).find((p) => !before.includes(p))!;
  let known = podsOf(d);
  const exited = d.podlog(['run', busybox, '--exec', '/bin/sh', '--', '-c', 'exit 3']);
  if (exited.status !== 3) throw new Error(`run exit 3: ${exited.status} ${exited.stderr}`);
  const exit3 = newPod(known);
  known = podsOf(d);
  const failed = d.podlog(['run', busybox], { PODLOG_FAIL_AT: 'effect:prepareOverlay' });
  if (failed.status !== 254) throw new Error(`a run whose overlay fails exits 254, not ${failed.status}: ${failed.stderr}`);
  const failedPod = newPod(known);
  known = podsOf(d);
  d.podlog(['run', busybox], { PODLOG_CRASH_AT: 'after-intent:OverlayPrepareRequested' });
  const crashed = newPod(known);
  // list finds the intent the killed run left open and answers it: the reconciler's work.
  d.podlog(['list']);
  const worker = await startRun(d, [aciPath('worker')]);
  await waitForRunning(d, worker.uuid);
  const stop = d.podlog(['stop', worker.uuid]);
  if (stop.status !== 0) throw new Error(`stop: ${stop.stderr}`);
  await worker.exited;
  const gc = d.podlog(['gc', '--grace-period=0s']);
  if (gc.status !== 0) throw new Error(`gc: ${gc.stderr}`);
  const r = d.podlog(['timeline', '--format', 'trace']);
  if (r.status !== 0) throw new Error(`timeline: ${r.status} ${r.stderr}`);
  scenario = { d, exit3, failed: failedPod, crashed, stopped: worker.uuid, trace: JSON.parse(r.stdout) as Trace };
});

test.after.always(() => scenario?.d.cleanup());

/** The track of a pod (by its thread_name), and its events in time order. */
const track = (uuid: string): { tid: number; name: string; slices: TraceEvent[]; instants: TraceEvent[] } => {
  const meta = s().trace.traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name' && String(e.args?.name).startsWith(uuid.slice(0, 8)));
  if (meta === undefined) throw new Error(`no track for ${uuid}`);
  const own = s().trace.traceEvents.filter((e) => e.ph !== 'M' && e.pid === meta.pid && e.tid === meta.tid).sort((a, b) => a.ts! - b.ts!);
  return { tid: meta.tid, name: String(meta.args!.name), slices: own.filter((e) => e.ph === 'X'), instants: own.filter((e) => e.ph === 'i') };
};

test('the trace has the format essentials: phases, µs timestamps, durations, named processes and threads, slices nested per track', (t) => {
  t.deepEqual(traceProblems(s().trace), []);
  t.is(s().trace.displayTimeUnit, 'ms');
  const uuids = podsOf(s().d);
  t.is(uuids.length, 4);
  const threads = s().trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name');
  t.is(threads.length, uuids.length, 'one track per pod');
  t.deepEqual(new Set(threads.map((e) => e.tid)).size, uuids.length);
  const process = s().trace.traceEvents.find((e) => e.ph === 'M' && e.name === 'process_name');
  t.regex(String(process?.args?.name), /^host /);
});

test('a pod whose app exits 3, then collected: its states in order, its exit code, and who moved it', (t) => {
  const { name, slices, instants } = track(s().exit3);
  t.regex(name, /^[0-9a-f]{8} busybox$/);
  t.deepEqual(slices.map((x) => x.name), ['preparing', 'prepared', 'running', 'exited', 'exited garbage', 'deleting', 'deleted']);
  t.like(slices.find((x) => x.name === 'running')!.args, { event: 'PodStarted', verb: 'run' });
  t.like(slices.find((x) => x.name === 'deleting')!.args, { event: 'GcRequested', verb: 'gc' });
  t.is(slices.at(-1)!.args!.exitCode, 3);
  t.like(instants.find((e) => e.name === 'PodExited'), { cat: 'observation', args: { code: 3, verb: 'run' } });
  t.like(instants.find((e) => e.name === 'AppExited'), { cat: 'observation', args: { code: 3 } });
  t.like(instants.find((e) => e.name === 'Stage1StartRequested'), { cat: 'intent' });
  for (const e of [...slices, ...instants]) {
    t.true(Number.isInteger(e.args!.position) && Number.isInteger(e.args!.version) && Number.isInteger(e.args!.pid), `${e.name} carries position, version and pid`);
  }
});

test('the failed effect is marked as a failure, and the pod ends in aborted prepare', (t) => {
  const { slices, instants } = track(s().failed);
  t.like(instants.find((e) => e.name === 'EffectFailed'), { cat: 'failure', args: { effect: 'prepareOverlay', code: 'EINJECTED', verb: 'run' } });
  t.true(slices.some((x) => x.name === 'aborted prepare'));
});

test("the reconciler's answer to a killed run's intent is marked, recorded by list", (t) => {
  const { instants } = track(s().crashed);
  const answers = instants.filter((e) => e.cat?.split(',').includes('reconciler'));
  t.true(answers.length > 0, JSON.stringify(instants.map((e) => [e.name, e.cat])));
  t.true(answers.every((e) => e.args!.verb === 'list'));
});

test('a stopped pod: the stop is an intent of stop, and its running slice lasts as long as the log says, in µs', (t) => {
  const { slices, instants } = track(s().stopped);
  t.like(instants.find((e) => e.name === 'StopRequested'), { cat: 'intent', args: { verb: 'stop' } });
  const events = s().d.events(s().stopped);
  const at = (type: string) => Date.parse((events.find((e) => e.type === type)!.meta as unknown as { time: string }).time);
  const running = slices.find((x) => x.name === 'running')!;
  // A slice's start is nudged by a µs where states share a millisecond: a few µs at most.
  t.true(Math.abs(running.dur! - (at('PodExited') - at('PodStarted')) * 1000) <= 10, `${running.dur} µs`);
  t.true(running.dur! > 0);
});

test('the validator rejects what Perfetto would misread: overlapping slices, missing names, no timestamps', (t) => {
  const bad: Trace = {
    traceEvents: [
      { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: 'h' } },
      { name: 'a', ph: 'X', ts: 0, dur: 10, pid: 1, tid: 1 },
      { name: 'b', ph: 'X', ts: 5, dur: 10, pid: 1, tid: 1 },
      { name: 'c', ph: 'i', pid: 1, tid: 2 } as TraceEvent,
    ],
  };
  const problems = traceProblems(bad);
  t.true(problems.some((p) => p.includes('overlaps')));
  t.true(problems.some((p) => p.includes('has no thread_name')));
  t.true(problems.some((p) => p.includes('ts undefined')));
});
