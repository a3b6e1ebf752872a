/**
 * Benchmarks of the lifecycle core: folding events through the pod machine, and `list` from the pod
 * list projection. Printed figures, never timed tests. Targets on the 2-core VM: fold ≥ 300,000
 * events/s; the list of 10,000 pods from the projection ≤ 20 ms in process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initialTransition, transition } from 'xstate';
import { v4 as uuidv4 } from 'uuid';
import { podMachine, type PodMachineEvent } from '../machines/pod.js';
import { commandContext, newMetadata } from '../src/events/metadata.js';
import { POD_EVENTS } from '../src/events/catalogue.js';
import { foldPod, initialPod, toMachineEvent } from '../src/engine/fold.js';
import { catchUpPodList } from '../src/engine/pod-list.js';
import { podStream } from '../src/engine/streams.js';
import { openStore } from '../src/store/open.js';
import type { NewEvent, RecordedEvent } from '../src/store/port.js';
import { history } from './histories.js';
import { median, report } from './report.js';

const ctx = commandContext(['bench']);

/** One pod's whole life, prepare to delete. */
const lifecycle = (uuid: string) => history(uuid, 'deleted', 0);

const newEvents = (uuid: string, upTo = Infinity): NewEvent[] =>
  lifecycle(uuid)
    .slice(0, upTo)
    .map(({ type, data }) => ({ type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta: newMetadata(ctx) }));

const recorded = (uuid: string): RecordedEvent[] =>
  newEvents(uuid).map((e, i) => ({ ...e, stream: podStream(uuid), version: i + 1, position: i + 1 }));

const foldRate = (): void => {
  const pods = Array.from({ length: 4000 }, () => recorded(uuidv4()));
  const events = pods.reduce((n, p) => n + p.length, 0);
  const rates: number[] = [];
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (const p of pods) foldPod(initialPod(p[0]!.stream), p);
    rates.push(events / ((performance.now() - t0) / 1000));
  }
  // The reference: the same events through xstate's exported transition(), which builds an actor per call.
  const sample = pods.slice(0, 400);
  const t0 = performance.now();
  for (const p of sample) {
    let [s] = initialTransition(podMachine, { uuid: 'x' });
    for (const e of p) s = transition(podMachine, s, toMachineEvent(e) as PodMachineEvent)[0];
  }
  const reference = (sample.length * 13) / ((performance.now() - t0) / 1000);
  const rate = median(rates);
  report('fold (events/s, median of 5 over 52,000 events)', rate, { target: '≥ 300,000', ok: rate >= 300_000, reference: `xstate transition() ${Math.round(reference).toLocaleString()}/s, ×${(rate / reference).toFixed(1)}` });
};

const listRate = async (): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-'));
  const store = await openStore(dir);
  try {
    // 10,000 pods, most of them exited, a few still running: the shape of a busy host's list.
    for (let i = 0; i < 10_000; i++) {
      const uuid = uuidv4();
      await store.append(podStream(uuid), newEvents(uuid, i % 10 === 0 ? 8 : 10), 'no_stream');
    }
    let t0 = performance.now();
    await catchUpPodList(store);
    const build = performance.now() - t0;
    const times: number[] = [];
    for (let round = 0; round < 15; round++) {
      t0 = performance.now();
      const rows = await catchUpPodList(store);
      times.push(performance.now() - t0);
      if (rows.size !== 10_000) throw new Error(`list has ${rows.size} rows`);
    }
    const ms = median(times);
    report('list of 10,000 pods from the projection (ms, in process)', ms, { target: '≤ 20', ok: ms <= 20, reference: `first catch-up over 96,000 events: ${build.toFixed(0)} ms` });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

export const run = async (): Promise<void> => {
  foldRate();
  await listRate();
};
