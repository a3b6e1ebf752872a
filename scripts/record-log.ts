/**
 * Records fixtures/logs/real-run.*: the event log of a real session of pods (run, a failing app, a
 * stop, prepare + rm, gc) made through the stage0 library as root, and next to it the state the live
 * engine reported after every append. test/engine/recorded-log.test.ts replays the log and must get
 * the same states. Run by hand (as root, after npm ci): node --import=tsx scripts/record-log.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandContext } from '../src/events/metadata.js';
import { prepare, removePod, run, runPrepared, stopPod, gc, openStage0 } from '../src/stage0/index.js';
import { DEFAULT_DNS_CONF_MODE, type PrepareConfig, type RunConfig } from '../src/stage0/config.js';
import type { Recorded } from '../src/engine/engine.js';
import { uuidOfStream } from '../src/engine/streams.js';

const root = join(import.meta.dirname, '..');
const aci = (name: string) => join(root, 'fixtures', 'build', 'aci', `${name}.aci`);
const dir = mkdtempSync(join(tmpdir(), 'podlog-record-'));
const s = await openStage0(dir, commandContext(['record-log']));

const live: Array<{ pod: string; version: number; state: string; context: unknown }> = [];
// Every append the engine makes (intents, outcomes, observations) goes through its one private append.
const engine = s.engine as unknown as { append: (...args: unknown[]) => Promise<Recorded> };
const append = engine.append.bind(s.engine);
engine.append = async (...args) => {
  const result = await append(...args);
  live.push({ pod: result.view.uuid, version: result.view.version, state: result.view.state, context: result.view.context });
  return result;
};

const config = (image: string, exec?: string[]): PrepareConfig & RunConfig => ({
  mutable: false,
  apps: [{ image: aci(image), args: exec?.slice(1) ?? [], environment: {}, ...(exec ? { exec: exec[0] } : {}) }],
  inheritEnv: false, explicitEnv: [], envFromFile: [], ports: [], volumes: [], mounts: [], useOverlay: true, privateUsers: false, userAnnotations: {}, userLabels: {},
  net: [], interactive: false, mdsRegister: false, dnsConfMode: DEFAULT_DNS_CONF_MODE, dnsConfig: { servers: [], searches: [], options: [] },
  insecureOptions: { disableCapabilities: false, disablePaths: false, disableSeccomp: false }, hostsEntries: {},
});

await run(s, config('busybox-gzip', ['/bin/sh', '-c', 'exit 3']));
await run(s, config('fail3'));
const worker = await prepare(s, config('worker'));
const running = runPrepared(s, config('worker'), worker);
while ((await s.engine.load(worker)).state !== 'running') await new Promise((ok) => setTimeout(ok, 20));
await stopPod(s, worker, false);
await running;
const unused = await prepare(s, config('busybox-gzip'));
await removePod(s, unused);
await gc(s, { gracePeriodMs: 0, expirePreparedMs: 86_400_000, markOnly: false });

const events = await s.store.readAll({ limit: 100_000, streamPrefix: 'pod-' });
const out = join(root, 'fixtures', 'logs');
writeFileSync(join(out, 'real-run.events.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
writeFileSync(join(out, 'real-run.states.json'), JSON.stringify(live, null, 1) + '\n');
console.log(`recorded ${events.length} events of ${new Set(events.map((e) => uuidOfStream(e.stream))).size} pods, ${live.length} live states`);
await s.close();
rmSync(dir, { recursive: true, force: true });
