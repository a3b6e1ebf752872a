/**
 * Benchmarks of the lifecycle core: folding events through the pod machine, and `list` from the pod
 * list projection. Printed figures, never timed tests. Targets on the 2-core VM: fold ≥ 300,000
 * events/s (issue 11: ≥ 500,000), beside xstate's own `machine.transition` fold in the same run; the
 * list of 10,000 pods from the projection ≤ 15 ms in process, its first catch-up over 98,000 events ≤ 250 ms.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { commandContext, newMetadata } from '../src/events/metadata.js';
import { POD_EVENTS } from '../src/events/catalogue.js';
import { foldPod, initialPod, machineFoldPod, machineInitialPod } from '../src/engine/fold.js';
import { catchUpPodList, POD_LIST } from '../src/engine/pod-list.js';
import { podStream } from '../src/engine/streams.js';
import { openStore } from '../src/store/open.js';
import type { NewEvent, RecordedEvent } from '../src/store/port.js';
import { repoRoot } from '../test/helpers/fixtures.js';
import { history } from './histories.js';
import { median, report } from './report.js';

const ctx = commandContext(['bench']);

/** One pod's whole life, prepare to delete. */
const lifecycle = (uuid: string) => history(uuid, 'deleted', 0);

const newEvents = (uuid: string, upTo = Infinity): NewEvent[] =>
  lifecycle(uuid)
    .slice(0, upTo)
    .map(({ type, data }) => ({ type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta: newMetadata(ctx) }));

/**
 * Built as the store's reader builds them, one literal each: events made by spreading folded at half
 * the rate here (the fields added after a spread are kept outside the object).
 */
const recorded = (uuid: string): RecordedEvent[] =>
  newEvents(uuid).map(({ type, schema, data, meta }, i) => ({ stream: podStream(uuid), version: i + 1, position: i + 1, type, schema, data, meta }));

const rate = (n: number) => Math.round(n).toLocaleString('en-US');
const spread = (xs: number[]) => `min ${rate(Math.min(...xs))}, median ${rate(median(xs))}, max ${rate(Math.max(...xs))}`;

/** The streams of the log recorded from a real session (scripts/record-log.ts), repeated to about 64,000 events. */
const realRunPods = (): RecordedEvent[][] => {
  const streams = new Map<string, RecordedEvent[]>();
  for (const line of readFileSync(join(repoRoot, 'fixtures', 'logs', 'real-run.events.jsonl'), 'utf8').trim().split('\n')) {
    const e = JSON.parse(line) as RecordedEvent;
    streams.set(e.stream, [...(streams.get(e.stream) ?? []), e]);
  }
  const once = [...streams.values()];
  const events = once.reduce((n, p) => n + p.length, 0);
  return Array.from({ length: Math.ceil(64_000 / events) }, () => once).flat();
};

/** The fold through the transition table and through xstate's `machine.transition`, rounds alternating. */
const foldRate = (what: string, pods: RecordedEvent[][]): void => {
  const events = pods.reduce((n, p) => n + p.length, 0);
  const timed = (fold: typeof foldPod, initial: typeof initialPod): number => {
    const t0 = performance.now();
    for (const p of pods) fold(initial(p[0]!.stream), p);
    return events / ((performance.now() - t0) / 1000);
  };
  const table: number[] = [];
  const machine: number[] = [];
  // One round each to warm the JIT up, not counted.
  timed(foldPod, initialPod);
  timed(machineFoldPod, machineInitialPod);
  for (let round = 0; round < 7; round++) {
    table.push(timed(foldPod, initialPod));
    machine.push(timed(machineFoldPod, machineInitialPod));
  }
  const ratios = table.map((t, i) => t / machine[i]!);
  const value = median(table);
  report(`fold ${what} through the transition table (events/s, ${rate(events)} events, 7 rounds after a warm-up: ${spread(table)})`, value, {
    target: '≥ 500,000',
    ok: value >= 500_000,
    reference: `xstate machine.transition in alternating rounds: ${spread(machine)}; table/xstate per round: median ×${median(ratios).toFixed(1)} (×${Math.min(...ratios).toFixed(1)}–×${Math.max(...ratios).toFixed(1)})`,
  });
};

const ms = (xs: number[]) => `min ${Math.min(...xs).toFixed(1)}, median ${median(xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}`;

const listRate = async (): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-'));
  const store = await openStore(dir);
  try {
    // 10,000 pods, 1,000 of them preparing and the others prepared with their start asked for: 98,000 events.
    for (let i = 0; i < 10_000; i++) {
      const uuid = uuidv4();
      await store.append(podStream(uuid), newEvents(uuid, i % 10 === 0 ? 8 : 10), 'no_stream');
    }
    // A first catch-up each round: the list emptied and marked as another schema's is built from the whole log.
    const builds: number[] = [];
    for (let round = 0; round < 3; round++) {
      const { checkpoint } = await store.loadProjection(POD_LIST);
      await store.saveProjection({ name: POD_LIST, schema: 'another', expectedCheckpoint: checkpoint, checkpoint, upserts: new Map(), reset: true });
      const t0 = performance.now();
      await catchUpPodList(store);
      builds.push(performance.now() - t0);
    }
    const times: number[] = [];
    for (let round = 0; round < 15; round++) {
      const t0 = performance.now();
      const rows = await catchUpPodList(store);
      times.push(performance.now() - t0);
      if (rows.size !== 10_000) throw new Error(`list has ${rows.size} rows`);
    }
    const list = median(times);
    report('list of 10,000 pods from the projection (ms, in process)', list, { target: '≤ 15', ok: list <= 15, reference: `15 rounds: ${ms(times)}` });
    const build = median(builds);
    report('first catch-up of the pod list over 98,000 events (ms)', build, { target: '≤ 250', ok: build <= 250, reference: `3 rounds: ${ms(builds)}` });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

export const run = async (): Promise<void> => {
  foldRate('of 4,000 synthetic lifecycles (bench/histories.ts)', Array.from({ length: 4000 }, () => recorded(uuidv4())));
  foldRate('of the recorded real-run log', realRunPods());
  await listRate();
};
