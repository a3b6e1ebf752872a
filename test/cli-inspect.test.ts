/** The inspection CLI as a user runs it: bin/podlog against a data dir. */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandContext, newMetadata } from '../src/events/metadata.js';
import { podStream } from '../src/engine/streams.js';
import { aciPath, repoRoot } from './helpers/fixtures.js';
import { tempDataDir } from './helpers/store.js';

const podlog = (args: string[]) => spawnSync(join(repoRoot, 'bin/podlog'), args, { encoding: 'utf8' });

interface Logged {
  type: string;
  stream: string;
  version: number;
  position: number;
  data: Record<string, unknown>;
  meta: { command: string[] };
}
const logged = (dir: string, ...args: string[]): Logged[] =>
  podlog(['events', '--dir', dir, '--json', ...args])
    .stdout.split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Logged);

/** A real pod, run by `podlog run`, whose app exits with 3; returns its UUID. */
const exitedPod = (dir: string): string => {
  const uuidFile = join(dir, `uuid-${process.hrtime.bigint()}`);
  const r = podlog(['run', '--dir', dir, '--uuid-file-save', uuidFile, aciPath('busybox-gzip'), '--exec', '/bin/sh', '--', '-c', 'exit 3']);
  if (r.status !== 3) throw new Error(`podlog run exited ${r.status}: ${r.stderr}`);
  return readFileSync(uuidFile, 'utf8').trim();
};

/** The events of a pod that was prepared, ran, and exited, in order. */
const RUN = [
  'PrepareRequested', 'PodCreated', 'ImageRenderRequested', 'ImageRendered', 'OverlayPrepareRequested', 'OverlayPrepared',
  'PodManifestWriteRequested', 'PodManifestWritten', 'PodPrepared', 'Stage1StartRequested', 'PodStarted', 'AppExited', 'PodExited',
];
/** The version of a run's event: a stream with N events is at version N. */
const versionOf = (type: string): number => RUN.indexOf(type) + 1;

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
  const { dir, cleanup } = await tempDataDir();
  try {
    const a = exitedPod(dir);
    const b = exitedPod(dir);
    const everything = logged(dir);
    t.true(everything.some((e) => e.type === 'ImageImported'), "the image store's events are in the same log");
    const all = podlog(['events', '--dir', dir]);
    t.is(all.status, 0, all.stderr);
    const lines = all.stdout.trim().split('\n');
    t.regex(lines[0]!, /POSITION\s+TIME\s+POD\s+VER\s+TYPE\s+DETAILS/);
    // Each command's rows come under a header naming it: both runs, each once.
    const commands = lines.filter((l) => l.startsWith('── '));
    t.is(commands.length, 2);
    for (const header of commands) t.regex(header, /^── run · pid \d+ · \d{4}-\d{2}-\d{2} UTC ──$/);
    t.is(lines.length - commands.length, everything.length + 1);
    t.regex(all.stdout, new RegExp(`${a.slice(0, 8)}\\s+${versionOf('PodExited')}\\s+PodExited\\s+code=3\n`));
    const pod = logged(dir, '--pod', b.slice(0, 6));
    t.deepEqual(pod.map((e) => e.type), RUN);
    t.true(pod.every((e) => e.stream === podStream(b)));
    t.deepEqual(pod[versionOf('PodExited') - 1]!.data, { code: 3 });
    t.true(pod[versionOf('PodExited') - 1]!.meta.command.includes('run'));
    t.deepEqual(logged(dir, '--type', 'PodExited,PodStarted').map((e) => e.type), ['PodStarted', 'PodExited', 'PodStarted', 'PodExited']);
    const from = everything[everything.length - 6]!.position;
    t.deepEqual(logged(dir, '--from-position', String(from)).map((e) => e.position), everything.slice(-5).map((e) => e.position));
    t.is(logged(dir, '--since', '1h').length, everything.length);
    t.deepEqual(logged(dir, '--until', '2000-01-01T00:00:00Z'), []);
  } finally {
    await cleanup();
  }
});

test('events --follow prints events appended after it started', async (t) => {
  const { dir, cleanup } = await tempDataDir();
  try {
    exitedPod(dir);
    const child = spawn(join(repoRoot, 'bin/podlog'), ['events', '--dir', dir, '--json', '--follow']);
    let output = '';
    const exits = () => output.split('\n').filter((l) => l.includes('"type":"PodExited"')).length;
    const seen = new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (exits() >= 2) resolve();
      });
    });
    await new Promise((ok) => setTimeout(ok, 300));
    const second = exitedPod(dir);
    await seen;
    child.kill('SIGTERM');
    const events = output.trim().split('\n').map((l) => JSON.parse(l) as Logged);
    t.deepEqual(events.map((e) => e.position), Array.from({ length: events.length }, (_, i) => i + 1));
    t.deepEqual(events.filter((e) => e.stream === podStream(second)).map((e) => e.type), RUN);
  } finally {
    await cleanup();
  }
});

test('replay shows the state and context at any version, with the events that led there', async (t) => {
  const { dir, cleanup } = await tempDataDir();
  try {
    const uuid = exitedPod(dir);
    const history = logged(dir, '--pod', uuid);
    const rendered = history.find((e) => e.type === 'ImageRendered')!.data;
    const pid = history.find((e) => e.type === 'PodStarted')!.data.pid as number;
    const prepared = versionOf('PodPrepared');
    const atPrepared = JSON.parse(podlog(['replay', uuid.slice(0, 8), '--dir', dir, '--at', String(prepared), '--json']).stdout);
    t.is(atPrepared.state, 'prepared');
    t.is(atPrepared.version, prepared);
    t.is(atPrepared.latest, RUN.length);
    t.is(atPrepared.steps.length, prepared);
    t.is(atPrepared.context.apps[0].treeStoreId, rendered.treeStoreId);
    t.regex(atPrepared.context.apps[0].treeStoreId, /^deps-sha512-[0-9a-f]+$/);
    const now = JSON.parse(podlog(['replay', uuid, '--dir', dir, '--json']).stdout);
    t.is(now.rktState, 'exited');
    t.is(now.context.exitCode, 3);
    t.is(now.context.apps[0].exitCode, 3);
    const started = versionOf('PodStarted');
    const text = podlog(['replay', uuid, '--dir', dir, '--at', String(started)]);
    t.regex(text.stdout, new RegExp(`pod ${uuid} at version ${started} of ${RUN.length}: running`));
    t.regex(text.stdout, new RegExp(`${started}\\s+\\S+\\s+PodStarted\\s+running\\s+pid=${pid}`));
    const beyond = podlog(['replay', uuid, '--dir', dir, '--at', String(RUN.length + 1)]);
    t.is(beyond.status, 254);
    t.regex(beyond.stderr, new RegExp(`has versions 0 to ${RUN.length}; --at ${RUN.length + 1}`));
  } finally {
    await cleanup();
  }
});

test('bad UUIDs get rkt messages and exit 254', async (t) => {
  const { dir, cleanup } = await tempDataDir();
  try {
    // Real pods, prepared until two share a first character.
    const uuids: string[] = [];
    while (new Set(uuids.map((u) => u[0])).size === uuids.length) {
      const r = podlog(['prepare', '--dir', dir, aciPath('busybox-gzip')]);
      t.is(r.status, 0, r.stderr);
      uuids.push(r.stdout.trim());
    }
    const shared = uuids[uuids.length - 1]![0]!;
    const sharing = uuids.filter((u) => u.startsWith(shared)).length;
    const absent = '0123456789abcdef'.split('').find((c) => !uuids.some((u) => u.startsWith(c)))!;
    const cases: Array<[string[], RegExp]> = [
      [['replay', `${absent}fff`], new RegExp(`no matches found for "${absent}fff"`)],
      [['replay', shared], new RegExp(`ambiguous uuid, ${sharing} matches`)],
      [['replay', ''], /UUID cannot be empty/],
      [['events', '--pod', shared], new RegExp(`ambiguous uuid, ${sharing} matches`)],
    ];
    for (const [args, message] of cases) {
      const r = podlog([...args, '--dir', dir]);
      t.is(r.status, 254, args.join(' '));
      t.regex(r.stderr, message);
    }
    t.is(podlog(['replay', uuids[0]!, '--dir', dir, '--json']).status, 0);
  } finally {
    await cleanup();
  }
});

test('an event type this podlog does not know is an error, not a silent skip', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const uuid = exitedPod(dir);
    await store.append(podStream(uuid), [{ type: 'PodTeleported', schema: 1, data: {}, meta: newMetadata(commandContext(['test'])) }], RUN.length);
    const r = podlog(['replay', uuid, '--dir', dir]);
    t.is(r.status, 254);
    t.regex(r.stderr, new RegExp(`pod-${uuid}@${RUN.length + 1}: unknown pod event type "PodTeleported"`));
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
    // A data dir that does not exist is an empty log to a read verb (and stays absent).
    const missing = podlog(['events', '--dir', join(dir, 'nowhere'), '--json']);
    t.is(missing.status, 0, missing.stderr);
    t.is(missing.stdout, '');
    t.false(existsSync(join(dir, 'nowhere')));
  } finally {
    await cleanup();
  }
});
