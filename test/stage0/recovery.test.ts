/**
 * What a user meets when something else goes wrong, end to end as root: a delete that fails once is
 * retried, a `podlog run` or `podlog enter` killed with -9, and one broken pod among good ones.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { commandContext } from '../../src/events/metadata.js';
import { PodEngine } from '../../src/engine/engine.js';
import type { EffectInterpreter } from '../../src/engine/effects.js';
import { podStream } from '../../src/engine/streams.js';
import { newMetadata } from '../../src/events/metadata.js';
import { openStore } from '../../src/store/open.js';
import { prepareData, START } from '../engine/samples.js';
import { aciPath } from '../helpers/fixtures.js';
import { DataDir, mountTable, podlogBin, processesMentioning, type ListedPod } from './harness.js';

const mountsBefore = mountTable();

const busybox = aciPath('busybox-gzip');
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

const exitedPod = async (d: DataDir): Promise<string> => {
  const uuidFile = join(d.dir, 'uuid');
  const r = await d.podlog(['run', '--uuid-file-save', uuidFile, busybox, '--exec', '/bin/true']);
  if (r.status !== 0) throw new Error(r.stderr);
  return readFileSync(uuidFile, 'utf8').trim();
};

const stateOf = async (d: DataDir, uuid: string): Promise<string> => (await d.list()).find((p) => p.uuid === uuid)?.state ?? 'deleted';

/** Starts a pod whose app runs until stopped; resolves once the log says it started. */
const longPod = async (d: DataDir, marker: string) => {
  const uuidFile = join(d.dir, `uuid-${marker}`);
  const run = d.start(['run', '--uuid-file-save', uuidFile, busybox, '--exec', '/bin/sh', '--', '-c', `echo ${marker}; exec sleep 1000`]);
  for (;;) {
    if (existsSync(uuidFile)) {
      const uuid = readFileSync(uuidFile, 'utf8').trim();
      if ((await d.podlog(['events', '--json', '--type', 'PodStarted', '--pod', uuid])).stdout.trim() !== '') return { uuid, run };
    }
    await sleep(20);
  }
};

test('a gc whose delete fails (the pod directory locked for a moment) leaves the pod to the next gc, or to rm', async (t) => {
  const d = new DataDir();
  try {
    for (const retry of [['gc', '--grace-period=0s'], ['rm']]) {
      const uuid = await exitedPod(d);
      // As a user reproduces it: gc runs while another process holds the pod directory's lock.
      const first = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn('flock', ['-x', d.podDir(uuid), podlogBin, '--dir', d.dir, 'gc', '--grace-period=0s'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        child.on('exit', (status) => resolve({ status, stderr }));
      });
      t.is(first.status, 254, 'gc says it could not delete the pod');
      t.regex(first.stderr, new RegExp(`${uuid}.*locked`));
      t.is(await stateOf(d, uuid), 'deleting');
      const again = await d.podlog(retry[0] === 'rm' ? ['rm', uuid] : retry);
      t.is(again.status, 0, again.stderr);
      t.is(await stateOf(d, uuid), 'deleted', `${retry[0]!} deletes it`);
      t.false(existsSync(d.podDir(uuid)));
      const types = (await d.events(uuid)).map((e) => e.type);
      t.deepEqual(types.slice(-4), ['GcRequested', 'EffectFailed', 'GcRequested', 'PodDeleted']);
    }
  } finally {
    d.cleanup();
  }
});

test('kill -9 of a foreground run kills its pod; the next verb that looks records the exit', async (t) => {
  const d = new DataDir();
  try {
    const marker = `podlog-killed-run-${uuidv4()}`;
    const { uuid, run } = await longPod(d, marker);
    t.not(processesMentioning(marker).length, 0, 'the pod runs');
    process.kill(run.pid, 'SIGKILL');
    t.is((await run.done).signal, 'SIGKILL');
    for (let i = 0; i < 100 && processesMentioning(marker).length > 0; i++) await sleep(20);
    t.deepEqual(processesMentioning(marker), [], 'nothing of the pod runs');
    t.deepEqual(processesMentioning(d.podDir(uuid)), [], 'nor its stage1');
    t.is(await stateOf(d, uuid), 'exited');
    const exit = (await d.events(uuid)).find((e) => e.type === 'PodExited')!;
    t.deepEqual(exit.data, { code: 137 });
    t.regex(exit.meta.command.join(' '), /\blist\b/);
    t.is((await d.podlog(['gc', '--grace-period=0s'])).status, 0);
    t.is(await stateOf(d, uuid), 'deleted');
    t.is(mountTable(), mountsBefore);
  } finally {
    d.cleanup();
  }
});

test('kill -9 of podlog enter leaves the pod running, stoppable and collectable', async (t) => {
  const d = new DataDir();
  try {
    const marker = `podlog-killed-enter-${uuidv4()}`;
    const { uuid, run } = await longPod(d, marker);
    // What is entered runs in the pod's namespaces; a pid namespace's processes all end with the pod.
    const nap = 'sleep 987';
    const enter = d.start(['enter', uuid, '--', '/bin/sh', '-c', `exec ${nap}`]);
    for (let i = 0; i < 200 && processesMentioning(nap).length === 0; i++) await sleep(20);
    t.not(processesMentioning(nap).length, 0, 'the entered command runs');
    process.kill(enter.pid, 'SIGKILL');
    t.is((await enter.done).signal, 'SIGKILL');
    t.is(await stateOf(d, uuid), 'running');
    const stop = await d.podlog(['stop', uuid]);
    t.is(stop.status, 0, stop.stderr);
    await run.done;
    t.is(await stateOf(d, uuid), 'exited');
    t.is((await d.podlog(['gc', '--grace-period=0s'])).status, 0);
    t.is(await stateOf(d, uuid), 'deleted');
    t.deepEqual(processesMentioning(marker), [], 'nothing of the pod, nor of what was entered, runs');
    t.deepEqual(processesMentioning(nap), []);
    t.is(mountTable(), mountsBefore);
  } finally {
    d.cleanup();
  }
});

/** Records a pod's history up to running with no effect done: its directory never existed. */
const forgeRunningPod = async (dir: string): Promise<string> => {
  const store = await openStore(dir);
  const none: EffectInterpreter = { run: () => Promise.reject(new Error('no effects')), reconcile: () => Promise.reject(new Error('no effects')) };
  const engine = new PodEngine(store, none, commandContext(['test', 'forge']));
  const uuid = uuidv4();
  const rendered = { app: 'a', imageId: 'sha512-1', treeStoreId: 'deps-sha512-1' };
  await engine.record(uuid, [
    { type: 'PrepareRequested', data: prepareData(uuid) }, { type: 'PodCreated', data: {} },
    { type: 'ImageRenderRequested', data: { app: 'a', image: 'sha512-1' } }, { type: 'ImageRendered', data: rendered },
    { type: 'OverlayPrepareRequested', data: {} }, { type: 'OverlayPrepared', data: {} },
    { type: 'PodManifestWriteRequested', data: {} }, { type: 'PodManifestWritten', data: {} }, { type: 'PodPrepared', data: {} },
    { type: 'Stage1StartRequested', data: START }, { type: 'PodStarted', data: { pid: 1 } },
  ]);
  await store.close();
  return uuid;
};

test('one broken pod is one error: list, gc and status go on with the others and name it', async (t) => {
  const d = new DataDir();
  try {
    const good = await exitedPod(d);
    const gone = await forgeRunningPod(d.dir);
    const unreadable = await exitedPod(d);
    // An event this podlog cannot read (from a newer one, or written by hand) in one pod's stream.
    const store = await openStore(d.dir);
    const version = await store.streamVersion(podStream(unreadable));
    await store.append(podStream(unreadable), [{ type: 'PodTeleported', schema: 1, data: {}, meta: newMetadata(commandContext(['test'])) }], version);
    await store.close();

    const list = await d.podlog(['list', '--format', 'json']);
    t.is(list.status, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as ListedPod[];
    t.is(listed.find((p) => p.uuid === good)?.state, 'exited');
    t.truthy(listed.find((p) => p.uuid === unreadable), 'the unreadable pod is listed as last known');
    t.regex(list.stderr, new RegExp(`pod ${gone}: .*directory .* is gone`));
    t.regex(list.stderr, new RegExp(`pod ${unreadable}: .*unknown pod event type "PodTeleported"`));

    const gc = await d.podlog(['gc', '--grace-period=0s']);
    t.is(gc.status, 0, 'a broken pod is not gc\'s failure');
    t.regex(gc.stderr, new RegExp(`${gone} skipped`));
    t.regex(gc.stderr, new RegExp(`${unreadable} skipped`));
    t.is(await stateOf(d, good), 'deleted', 'the good pod is collected');

    for (const uuid of [gone, unreadable]) {
      const status = await d.podlog(['status', uuid]);
      t.is(status.status, 254, 'asked for by name, the broken pod is an error');
      t.regex(status.stderr, /^podlog: .+/);
      const rm = await d.podlog(['rm', uuid]);
      t.is(rm.status, 254);
    }
  } finally {
    d.cleanup();
  }
});
