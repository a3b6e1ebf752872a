/**
 * One writer of bench/writers.ts, a process of its own as a `podlog` is: opens the log, waits for the
 * common start time, appends single events to its own stream, prints its time in ms.
 *   node --import=tsx bench/writer.ts FILE ID COMMITS START_EPOCH_MS
 */
import { commandContext, newMetadata } from '../src/events/metadata.js';
import { openSqliteStore } from '../src/store/sqlite.js';

const [file, id, commits, start] = process.argv.slice(2) as [string, string, string, string];
const store = await openSqliteStore(file);
const ctx = commandContext(['bench', 'writer']);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(start) - Date.now())));
const t0 = performance.now();
for (let i = 0; i < Number(commits); i++) {
  await store.append(`bench-${id}`, [{ type: 'BenchEvent', schema: 1, data: { i }, meta: newMetadata(ctx) }], i === 0 ? 'no_stream' : i);
}
console.log(performance.now() - t0);
await store.close();
