/**
 * A log recorded from a real session of pods (scripts/record-log.ts: run, a failing app, a stop,
 * prepare + rm, gc) replays, in a fresh store, to the very states the live engine reported.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { catchUpPodList } from '../../src/engine/pod-list.js';
import { podStream } from '../../src/engine/streams.js';
import { replayPod } from '../../src/inspect/replay.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDataDir } from '../helpers/store.js';

const logs = join(repoRoot, 'fixtures', 'logs');
const events = readFileSync(join(logs, 'real-run.events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RecordedEvent);
const live = JSON.parse(readFileSync(join(logs, 'real-run.states.json'), 'utf8')) as Array<{ pod: string; version: number; state: string; context: unknown }>;
const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

test('replaying the recorded log gives the states of the live run that produced it', async (t) => {
  const { store, cleanup } = await tempDataDir();
  try {
    // Re-appended event by event in their original order, each with its exact expected version.
    for (const { stream, version, type, schema, data, meta } of events) {
      await store.append(stream, [{ type, schema, data, meta }], version - 1);
    }
    t.true(live.length > 30, `${live.length} live states`);
    for (const { pod, version, state, context } of live) {
      const replayed = await replayPod(store, pod, version);
      t.is<string, string>(replayed.state, state, `${pod}@${version}`);
      t.deepEqual(plain(replayed.context), context, `${pod}@${version}`);
    }
    const rows = await catchUpPodList(store);
    const finals = new Map(live.map((l) => [l.pod, l.state]));
    // Every pod of the session was deleted at its end: the pod list no longer has them.
    t.deepEqual([...new Set(finals.values())].sort(), ['deleted']);
    for (const pod of finals.keys()) {
      t.false(rows.has(pod));
      t.is((await replayPod(store, pod)).version, await store.streamVersion(podStream(pod)));
    }
    t.true(events.some((e) => e.type === 'PodExited' && e.data.code === 3));
    t.true(events.some((e) => e.type === 'StopRequested'));
  } finally {
    await cleanup();
  }
});
