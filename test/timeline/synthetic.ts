/**
 * A log of many pods for the timeline's chart test and benchmark, written through the store's append
 * API as the engine writes it (bench/histories.ts: what `podlog run` records), with times spread as on a
 * busy host: a pod started every `stride` ms, each living a few seconds, some collected by a later gc,
 * some with a failed start retried, a few still running.
 */
import { v4 as uuidv4 } from 'uuid';
import { history, type Step } from '../../bench/histories.js';
import { podStream } from '../../src/engine/streams.js';
import { POD_EVENTS } from '../../src/events/catalogue.js';
import { commandContext, newMetadata } from '../../src/events/metadata.js';
import { openStore } from '../../src/store/open.js';
import type { NewEvent, StreamAppend } from '../../src/store/port.js';

export interface SyntheticLog {
  uuids: string[];
  events: number;
}

/** Mostly collected pods, as on a host that gc's, with every other end among them. */
const SHAPES: Array<Parameters<typeof history>[1]> = ['deleted', 'exited', 'deleted', 'exited', 'prepared', 'exited', 'aborted', 'deleted', 'prepared', 'running'];

/** A failed stage1 start (EffectFailed), then a second start that works: the pod's history goes on. */
const withFailedStart = (steps: Step[]): Step[] => {
  const at = steps.findIndex((s) => s.type === 'Stage1StartRequested');
  if (at === -1) return steps;
  const failed: Step = { type: 'EffectFailed', data: { effect: 'startStage1', code: 'ESTAGE1', message: 'stage1 exited before the pod was up' } };
  return [...steps.slice(0, at + 1), failed, steps[at]!, ...steps.slice(at + 1)];
};

/** The steps with the app named `app` (history() names it busybox). */
const renamed = (steps: Step[], app: string): Step[] =>
  steps.map((s) => {
    const data = s.data as Record<string, unknown>;
    if (Array.isArray(data.apps)) return { ...s, data: { ...data, apps: (data.apps as Array<Record<string, unknown>>).map((a) => ({ ...a, name: app })) } as Step['data'] };
    return typeof data.app === 'string' ? { ...s, data: { ...data, app } as Step['data'] } : s;
  });

/** Appends `count` pods to the log of data dir `dir` (its host: `hostId`), `perCommit` pods a transaction. */
/** `code`: every pod's exit code (else the i-th pod's is i % 4). */
export const writeSyntheticLog = async (
  dir: string,
  count: number,
  { hostId = 'synthetic-host', stride = 1000, perCommit = 500, app = 'busybox', code = undefined as number | undefined } = {},
): Promise<SyntheticLog> => {
  const store = await openStore(dir);
  // The last pod is collected a minute before now: only the pods still prepared or running reach it.
  const base = Date.now() - count * stride - 120_000;
  const uuids: string[] = [];
  let events = 0;
  try {
    for (let from = 0; from < count; from += perCommit) {
      const appends: StreamAppend[] = [];
      for (let i = from; i < Math.min(count, from + perCommit); i++) {
        const uuid = uuidv4();
        const shape = SHAPES[i % SHAPES.length]!;
        const exit = code ?? i % 4;
        const lived = history(uuid, shape, exit);
        const steps = renamed(i % 7 === 3 ? withFailedStart(lived) : lived, app);
        const run = commandContext(['--dir', dir, 'run', 'podlog.test/busybox', '--exec', '/bin/sh', '--', '-c', `exit ${exit}`], hostId);
        const gc = commandContext(['--dir', dir, 'gc', '--grace-period=0s'], hostId);
        const start = base + i * stride;
        // A few ms an effect, a few seconds running; the gc comes a minute later.
        const timeOf = (step: Step, j: number): number =>
          start + j * 4 + (['AppExited', 'PodExited'].includes(step.type) ? 2000 + (i % 13) * 700 : 0) + (['PodMarkedGarbage', 'GcRequested', 'PodDeleted'].includes(step.type) ? 60_000 : 0);
        const newEvents: NewEvent[] = steps.map((step, j) => {
          const collecting = ['PodMarkedGarbage', 'GcRequested', 'PodDeleted'].includes(step.type);
          const meta = newMetadata(collecting ? gc : run);
          return { type: step.type, schema: POD_EVENTS[step.type].schema, data: { ...(step.data as Record<string, unknown>), ...(step.type === 'PrepareRequested' ? { host: hostId } : {}) }, meta: { ...meta, time: new Date(timeOf(step, j)).toISOString() } };
        });
        appends.push({ stream: podStream(uuid), events: newEvents, expected: 'no_stream' });
        uuids.push(uuid);
        events += newEvents.length;
      }
      await store.appendMany(appends);
    }
  } finally {
    await store.close();
  }
  return { uuids, events };
};
