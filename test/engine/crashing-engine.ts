/**
 * A child process for the crash tests: prepares a pod and asks for one more intent with the fake
 * interpreter; PODLOG_CRASH_AT makes the engine kill -9 itself at the named step.
 * Usage: crashing-engine.ts DATA_DIR WORLD_DIR UUID
 */
import { commandContext } from '../../src/events/metadata.js';
import { PodEngine } from '../../src/engine/engine.js';
import { openStore } from '../../src/store/open.js';
import { preparePod, START } from './samples.js';
import { fakeEffects } from './fake-effects.js';

const [dir, world, uuid] = process.argv.slice(2) as [string, string, string];
const store = await openStore(dir);
const engine = new PodEngine(store, fakeEffects(world), commandContext(['crashing-engine', uuid]));
await preparePod(engine, uuid);
await engine.request(uuid, 'Stage1StartRequested', START);
await store.close();
