/** The inspection CLI as a user runs it: bin/podlog against a data dir. */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { commandContext, newMetadata } from '../src/events/metadata.js';
import { PodEngine } from '../src/engine/engine.js';
import type { EffectInterpreter } from '../src/engine/effects.js';
import { podStream } from '../src/engine/streams.js';
import type { EventStore } from '../src/store/port.js';
import { repoRoot } from './helpers/fixtures.js';
import { tempDataDir } from './helpers/store.js';
import { ranAndExited } from './engine/samples.js';

const podlog = (args: string[]) => spawnSync(join(repoRoot, 'bin/podlog'), args, { encoding: 'utf8' });
const recordOnly: EffectInterpreter = { run: async () => [], reconcile: async () => [] };

/** A pod that ran and exited with 3, written through the engine. */
const exitedPod = async (store: EventStore, uuid = uuidv4()): Promise<string> => {
  const engine = new PodEngine(store, recordOnly, commandContext(['podlog', 'run', 'busybox']));
  for (const { type, data } of ranAndExited(uuid, 4242, 3)) await engine.record(uuid, type, data as never);
  return uuid;
};

test('machine prints the real machine as JSON, Mermaid and DOT', (t) => {
  const json = podlog(['machine', '--format', 'json']);
  t.is(json.status, 0, json.stderr);
  const graph = JSON.parse(json.stdout) as { initial: string; states: Array<{ name: string; transitions: Array<{ event: string; target?: string }> }> };
  t.is(graph.initial, 'embryo');
  t.is(graph.states.length, 10);
  t.true(graph.states.find((s) => s.name === 'running')!.transitions.some((tr) => tr.event === 'PodExited' && tr.target === 'exited'));
  t.regex(podlog(['machine']).stdout, /^stateDiagram-v2\n {2}\[\*\] --> embryo/);
  t.regex(podlog(['machine', '--format', 'dot']).stdout, /digraph pod \{[\s\S]*running -> exited \[label="PodExited"\]/);
  const bad = podlog(['machine', '--format', 'svg']);
  t.is(bad.status, 254);
  t.regex(bad.stderr, /unknown format "svg"/);
});

test('events prints the log as a table or JSON lines, filtered by pod, type, time and position', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const a = await exitedPod(store);
    const b = await exitedPod(store);
    const all = podlog(['events', '--dir', dir]);
    t.is(all.status, 0, all.stderr);
    const lines = all.stdout.trim().split('\n');
    t.regex(lines[0]!, /POSITION\s+TIME\s+POD\s+VER\s+TYPE\s+DETAILS/);
    t.is(lines.length, 21);
    t.regex(all.stdout, new RegExp(`${a.slice(0, 8)}\\s+10\\s+PodExited\\s+code=3 \\(pid \\d+: podlog run busybox\\)`));
    const json = podlog(['events', '--dir', dir, '--json', '--pod', b.slice(0, 6)]).stdout.trim().split('\n').map((l) => JSON.parse(l));
    t.is(json.length, 10);
    t.true(json.every((e) => e.stream === podStream(b)));
    t.deepEqual(json[9].data, { code: 3 });
    t.is(json[9].meta.command.join(' '), 'podlog run busybox');
    const exits = podlog(['events', `--dir=${dir}`, '--json', '--type', 'PodExited,PodStarted']).stdout.trim().split('\n');
    t.is(exits.length, 4);
    const after = podlog(['events', '--dir', dir, '--json', '--from-position', '15']).stdout.trim().split('\n');
    t.is(after.length, 5);
    t.is(podlog(['events', '--dir', dir, '--json', '--since', '1h']).stdout.trim().split('\n').length, 20);
    t.is(podlog(['events', '--dir', dir, '--json', '--until', '2000-01-01T00:00:00Z']).stdout.trim(), '');
  } finally {
    await cleanup();
  }
});

test('events --follow prints events appended after it started', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    await exitedPod(store);
    const child = spawn(join(repoRoot, 'bin/podlog'), ['events', '--dir', dir, '--json', '--follow']);
    let output = '';
    const seen = new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.trim().split('\n').length >= 20) resolve();
      });
    });
    await new Promise((ok) => setTimeout(ok, 300));
    await exitedPod(store);
    await seen;
    child.kill('SIGTERM');
    const positions = output.trim().split('\n').map((l) => (JSON.parse(l) as { position: number }).position);
    t.deepEqual(positions, Array.from({ length: 20 }, (_, i) => i + 1));
  } finally {
    await cleanup();
  }
});

test('replay shows the state and context at any version, with the events that led there', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const uuid = await exitedPod(store);
    const at6 = JSON.parse(podlog(['replay', uuid.slice(0, 8), '--dir', dir, '--at', '6', '--json']).stdout);
    t.is(at6.state, 'prepared');
    t.is(at6.version, 6);
    t.is(at6.latest, 10);
    t.is(at6.steps.length, 6);
    t.is(at6.context.apps[0].treeStoreId, 'deps-sha512-a');
    const now = JSON.parse(podlog(['replay', uuid, '--dir', dir, '--json']).stdout);
    t.is(now.rktState, 'exited');
    t.is(now.context.exitCode, 3);
    t.is(now.context.apps[0].exitCode, 3);
    const text = podlog(['replay', uuid, '--dir', dir, '--at', '8']);
    t.regex(text.stdout, new RegExp(`pod ${uuid} at version 8 of 10: running`));
    t.regex(text.stdout, /8\s+\S+\s+PodStarted\s+running\s+pid=4242/);
    const beyond = podlog(['replay', uuid, '--dir', dir, '--at', '11']);
    t.is(beyond.status, 254);
    t.regex(beyond.stderr, /has versions 0 to 10; --at 11/);
  } finally {
    await cleanup();
  }
});

test('bad UUIDs get rkt messages and exit 254', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    await exitedPod(store, 'abcd0000-0000-4000-8000-000000000001');
    await exitedPod(store, 'abcd0000-0000-4000-8000-000000000002');
    const cases: Array<[string[], RegExp]> = [
      [['replay', 'ffff'], /no matches found for "ffff"/],
      [['replay', 'abcd'], /ambiguous uuid, 2 matches/],
      [['replay', ''], /UUID cannot be empty/],
      [['events', '--pod', 'abcd0000'], /ambiguous uuid, 2 matches/],
    ];
    for (const [args, message] of cases) {
      const r = podlog([...args, '--dir', dir]);
      t.is(r.status, 254, args.join(' '));
      t.regex(r.stderr, message);
    }
    t.is(podlog(['replay', 'abcd0000-0000-4000-8000-000000000002', '--dir', dir, '--json']).status, 0);
  } finally {
    await cleanup();
  }
});

test('an event type this podlog does not know is an error, not a silent skip', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const uuid = await exitedPod(store);
    await store.append(podStream(uuid), [{ type: 'PodTeleported', schema: 1, data: {}, meta: newMetadata(commandContext(['test'])) }], 10);
    const r = podlog(['replay', uuid, '--dir', dir]);
    t.is(r.status, 254);
    t.regex(r.stderr, new RegExp(`pod-${uuid}@11: unknown pod event type "PodTeleported"`));
  } finally {
    await cleanup();
  }
});

test('a corrupt or foreign event log is refused with 254 and left unchanged', async (t) => {
  const { dir, cleanup } = await tempDataDir();
  try {
    const file = join(dir, 'events.db');
    writeFileSync(file, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4080, 0x5a)]));
    const before = readFileSync(file);
    for (const args of [['events'], ['replay', 'abc']]) {
      const r = podlog([...args, '--dir', dir]);
      t.is(r.status, 254);
      t.regex(r.stderr, /events\.db/);
    }
    t.deepEqual(readFileSync(file), before);
    const missing = podlog(['events', '--dir', join(dir, 'nowhere')]);
    t.is(missing.status, 254);
    t.regex(missing.stderr, /no podlog event log in/);
  } finally {
    await cleanup();
  }
});
