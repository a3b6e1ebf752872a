/**
 * A child process that writes one pod's lifecycle into a data dir, pausing between events, so that
 * another process can watch it live. Usage: pod-writer.ts DATA_DIR UUID DELAY_MS
 */
import { commandContext } from '../../src/events/metadata.js';
import { PodEngine } from '../../src/engine/engine.js';
import type { EffectInterpreter } from '../../src/engine/effects.js';
import { openStore } from '../../src/store/open.js';
import { ranAndExited } from '../engine/samples.js';

const [dir, uuid, delay] = process.argv.slice(2) as [string, string, string];
const store = await openStore(dir);
const recordOnly: EffectInterpreter = { run: async () => [], reconcile: async () => [] };
const engine = new PodEngine(store, recordOnly, commandContext(['pod-writer', uuid]));
const pause = () => new Promise((ok) => setTimeout(ok, Number(delay)));
for (const { type, data } of ranAndExited(uuid, process.pid, 0)) {
  await engine.record(uuid, type, data as never);
  await pause();
}
await store.close();
