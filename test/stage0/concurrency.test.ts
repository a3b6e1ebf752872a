/**
 * Concurrency, end to end as root: 8 workers run `run`, `stop`, `rm`, `gc` and `list` on one data dir
 * at once (PODLOG_STRESS_SECONDS, default 60), each a loop of bin/podlog processes. Then:
 *   - no command crashed: every failure is one of the refusals a race explains (a pod that another
 *     worker stopped, removed or collected first), counted and printed; anything else fails the test;
 *   - every `run` returned the code its pod's PodExited recorded (the app's, or the stop's);
 *   - the log, read whole from the store: per stream, versions 1..N without gaps or duplicates,
 *     positions strictly increasing; every pod's history replays through the machine, and the pod
 *     list projection agrees with the replays;
 *   - after stopping what still runs and a final `gc --grace-period=0`: every pod is deleted, nothing
 *     is in preparing or deleting or has an open intent, no pod directory, process or mount is left.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { catchUpPodList } from '../../src/engine/pod-list.js';
import { POD_STREAM_PREFIX, uuidOfStream } from '../../src/engine/streams.js';
import { replayPod } from '../../src/inspect/replay.js';
import { openStore } from '../../src/store/open.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { aciPath } from '../helpers/fixtures.js';
import { DataDir, mountTable, processesMentioning, type ListedPod, type Result } from './harness.js';

const SECONDS = Number(process.env.PODLOG_STRESS_SECONDS ?? 60);
const busybox = aciPath('busybox-gzip');
const worker = aciPath('worker');

/**
 * Failures a race explains, per verb: the pod changed (or went) between the worker's look and its
 * command. gc has none: a pod another process marked or is deleting is theirs, not an error (rkt PR #3515).
 */
const EXPECTED_REFUSALS: Record<string, Array<[string, RegExp]>> = {
  stop: [
    ['gone meanwhile', /no matches found for/],
    ['another stop in progress', /cannot stop pod [0-9a-f-]+: it is running \(StopRequested is not allowed there; StopRequested is still in progress\)/],
  ],
  rm: [
    ['gone meanwhile', /no matches found for/],
    ['running', /is currently running/],
    ['being deleted by gc', /is currently being deleted|is already removed/],
  ],
};

interface Outcome {
  worker: string;
  args: string[];
  result: Result;
  ms: number;
}

const failureKind = (verb: string, r: Result): string | undefined => {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  if (r.signal !== null) return `killed by ${r.signal}`;
  const kinds = lines.map((l) => (EXPECTED_REFUSALS[verb] ?? []).find(([, re]) => re.test(l))?.[0] ?? `UNEXPECTED: ${l}`);
  return kinds.find((k) => k.startsWith('UNEXPECTED')) ?? kinds[0];
};

test(`8 workers run, stop, rm, gc and list on one data dir for ${SECONDS} s`, async (t) => {
  t.timeout((SECONDS + 240) * 1000);
  const mountsBefore = mountTable();
  const d = new DataDir();
  try {
    // Both images imported before the workers start, so that runs by name never import.
    t.is((await d.podlog(['run', busybox, '--exec', '/bin/true'])).status, 0);
    const imported = (await d.ok(['prepare', worker])).trim();
    t.is((await d.podlog(['rm', imported])).status, 0);

    const deadline = Date.now() + SECONDS * 1000;
    const outcomes: Outcome[] = [];
    /** Every `run` and the pod it made (from --uuid-file-save), to compare its code with the log. */
    const runs: Array<{ uuidFile: string; result: Result }> = [];
    const exec = async (name: string, args: string[]): Promise<Result> => {
      const t0 = Date.now();
      const result = await d.podlog(args);
      outcomes.push({ worker: name, args, result, ms: Date.now() - t0 });
      return result;
    };
    const podsNow = async (name: string): Promise<ListedPod[]> => {
      const r = await exec(name, ['list', '--format', 'json']);
      return r.status === 0 ? (JSON.parse(r.stdout) as ListedPod[]) : [];
    };
    const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];
    let runCount = 0;

    const runner = (n: number) => async () => {
      // One runner names the image by its file (an idempotent import each time), the others by name.
      const image = n === 0 ? busybox : 'podlog.test/busybox';
      for (let i = 0; Date.now() < deadline; i++) {
        const script = ['exit 0', 'exit 1', 'exit 3', 'kill -TERM $$', 'sleep 0.5; exit 0'][(i + n) % 5]!;
        const uuidFile = join(d.dir, `run-${n}-${i}.uuid`);
        runCount++;
        const result = await exec(`run${n}`, ['run', '--uuid-file-save', uuidFile, image, '--exec', '/bin/sh', '--', '-c', script]);
        runs.push({ uuidFile, result });
      }
    };
    /** Keeps one long pod running and stops every running pod it sees; returns the long pod's `run`. */
    const stopper = async () => {
      let long = d.start(['run', worker]);
      for (let i = 0; Date.now() < deadline; i++) {
        for (const p of (await podsNow('stop')).filter((x) => x.state === 'running')) {
          await exec('stop', ['stop', ...(i % 3 === 2 ? ['--force'] : []), p.uuid]);
        }
        const ended = await Promise.race([long.done, Promise.resolve(undefined)]);
        if (ended !== undefined && Date.now() < deadline) {
          outcomes.push({ worker: 'stop', args: ['run', worker], result: ended, ms: 0 });
          long = d.start(['run', worker]);
        }
      }
      return long;
    };
    const remover = async () => {
      for (let i = 0; Date.now() < deadline; i++) {
        const pods = await podsNow('rm');
        // Mostly pods that can go; now and then a running one, which must be refused.
        const target = i % 5 === 4 ? pick(pods.filter((p) => p.state === 'running')) : pick(pods.filter((p) => p.state === 'exited'));
        if (target) await exec('rm', ['rm', target.uuid]);
      }
    };
    const collector = async () => {
      while (Date.now() < deadline) await exec('gc', ['gc', '--grace-period=0']);
    };
    const lister = (n: number) => async () => {
      for (let i = 0; Date.now() < deadline; i++) await exec(`list${n}`, i % 2 ? ['list', '--format', 'json'] : ['list', '--full']);
    };

    const [long] = await Promise.all([stopper(), runner(0)(), runner(1)(), runner(2)(), remover(), collector(), lister(0)(), lister(1)()]);
    // Every worker is done; the long pod still runs (or is still being prepared): stop it, and anything else.
    let longEnded: Result | undefined;
    void long.done.then((r) => (longEnded = r));
    for (let i = 0; longEnded === undefined || (await d.list()).some((p) => p.state === 'running'); i++) {
      if (i > 600) throw new Error('the pods never stopped');
      for (const p of (await d.list()).filter((x) => x.state === 'running')) await d.podlog(['stop', p.uuid]);
      await Promise.race([long.done, new Promise((ok) => setTimeout(ok, 100))]);
    }
    outcomes.push({ worker: 'stop', args: ['run', worker], result: await long.done, ms: 0 });
    for (let i = 0; i < 2; i++) t.is((await d.podlog(['gc', '--grace-period=0'])).status, 0);

    // No command crashed; refusals are counted.
    const counts = new Map<string, number>();
    const examples = new Map<string, string>();
    const unexpected: string[] = [];
    for (const { worker: w, args, result } of outcomes) {
      const isRun = args[0] === 'run';
      const gcErrors = args[0] === 'gc' && result.stderr !== '';
      if (result.status === 0 && !gcErrors) continue;
      if (isRun && result.status !== null && result.status !== 254 && result.stderr === '') continue; // the pod's own code
      const kind = failureKind(args[0]!, result) ?? `exit ${result.status} without a message`;
      const key = `${args[0]}: ${kind}`;
      if (!counts.has(key)) examples.set(key, result.stderr.trim().split('\n')[0]!);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (kind.startsWith('UNEXPECTED') || kind.startsWith('killed') || kind.startsWith('exit')) {
        unexpected.push(`${w}: podlog ${args.join(' ')} → ${result.status ?? result.signal}\n${result.stderr}`);
      }
    }
    const perWorker = new Map<string, number>();
    for (const o of outcomes) perWorker.set(o.worker, (perWorker.get(o.worker) ?? 0) + 1);
    t.log(`commands: ${outcomes.length} (${[...perWorker].map(([w, n]) => `${w} ${n}`).join(', ')}), runs: ${runCount}`);
    const byVerb = new Map<string, number[]>();
    for (const o of outcomes.filter((x) => x.ms > 0)) byVerb.set(o.args[0]!, [...(byVerb.get(o.args[0]!) ?? []), o.ms]);
    t.log(`median ms per command: ${[...byVerb].map(([v, ms]) => `${v} ${ms.sort((a, b) => a - b)[ms.length >> 1]}`).join(', ')}`);
    for (const [kind, n] of counts) t.log(`${n} × ${kind}, e.g. ${examples.get(kind)}`);
    t.deepEqual(unexpected, [], 'no command failed in a way a race does not explain');

    // The whole log, from the store itself (writable: catching the pod list up saves it; nothing else writes now).
    const store = await openStore(d.dir);
    try {
      const all: RecordedEvent[] = [];
      for (let after = 0; ; ) {
        const page = await store.readAll({ after, limit: 1000 });
        if (page.length === 0) break;
        all.push(...page);
        after = page[page.length - 1]!.position;
      }
      t.true(all.every((e, i) => i === 0 || e.position > all[i - 1]!.position), 'positions strictly increase');
      const streams = new Map<string, number[]>();
      for (const e of all) streams.set(e.stream, [...(streams.get(e.stream) ?? []), e.version]);
      for (const [stream, versions] of streams) {
        if (!versions.every((v, i) => v === i + 1)) t.fail(`${stream}: versions ${versions.join(',')} are not 1..N`);
      }
      const pods = [...streams.keys()].filter((s) => s.startsWith(POD_STREAM_PREFIX)).map(uuidOfStream);
      t.true(pods.length > 10, `${pods.length} pods`);

      // Every history is valid for the machine, and the projection says what the replays say.
      const rows = await catchUpPodList(store);
      const stuck: string[] = [];
      for (const uuid of pods) {
        const replay = await replayPod(store, uuid);
        if (replay.state !== 'deleted' || replay.context.pending !== undefined) {
          stuck.push(`${uuid}: ${replay.state}${replay.context.pending ? ` (open ${replay.context.pending.intent})` : ''}`);
        }
        // The pod list drops a deleted pod's row.
        t.is(rows.get(uuid)?.state ?? 'deleted', replay.state, uuid);
      }
      t.deepEqual(stuck, [], 'every pod is deleted after the final gc, with nothing left open');
      t.is(rows.size, 0);

      // Each run returned the code the log recorded for its pod.
      const mismatched: string[] = [];
      let checked = 0;
      for (const { uuidFile, result } of runs) {
        let uuid: string;
        try {
          uuid = readFileSync(uuidFile, 'utf8').trim();
        } catch {
          mismatched.push(`${uuidFile}: no pod was created (${result.status}: ${result.stderr})`);
          continue;
        }
        const exit = (await store.readStream(`${POD_STREAM_PREFIX}${uuid}`)).find((e) => e.type === 'PodExited');
        checked++;
        if (exit?.data.code !== result.status) mismatched.push(`${uuid}: run returned ${result.status}, the log says ${JSON.stringify(exit?.data)}`);
      }
      t.deepEqual(mismatched, []);
      t.true(checked > 0);
    } finally {
      await store.close();
    }

    t.deepEqual(readdirSync(join(d.dir, 'pods')), [], 'no pod directory is left');
    t.deepEqual(processesMentioning(d.dir), [], 'no process of any pod is left');
    t.is(mountTable(), mountsBefore);
  } finally {
    d.cleanup();
  }
});
