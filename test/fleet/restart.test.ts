/**
 * PostgreSQL restarted (fast shutdown, then start) while two hosts' pods start and exit. In its own file,
 * with its own server: a restart would fail other files' tests. What must hold: a command whose append
 * met the restart fails with a clear error or succeeds, nothing is half-written, a follower of the log
 * resumes and sees every event once, and once each host has looked at its pods the log says what the
 * world shows: every pod finished, with the exit code its app exited with.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStoreAt } from '../../src/store/open.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { aciPath } from '../helpers/fixtures.js';
import { usePostgres } from '../helpers/postgres.js';
import { dataDir, podlogAsync, waitForFile, type DataDir } from '../stage0/podlog.js';

const server = usePostgres(test);

const busybox = aciPath('busybox-gzip');
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

const waitForRunning = async (d: DataDir, uuid: string, env: Record<string, string>): Promise<void> => {
  for (let i = 0; i < 400; i++) {
    if ((await podlogAsync(d, ['status', uuid], env)).stdout.includes('state=running')) return;
    await sleep(50);
  }
  throw new Error(`pod ${uuid} never ran`);
};

test('a PostgreSQL restart amid pods starting and exiting: commands fail clearly or succeed, a follower resumes, and the log ends as the world is', async (t) => {
  const pg = server();
  const url = `${pg.url}?schema=${pg.schema()}`;
  const hosts = ['host-a', 'host-b'].map((id) => ({ id, d: dataDir(), env: { PODLOG_STORE: url, PODLOG_HOST_ID: id } }));
  const watcher = dataDir();
  const trigger = mkdtempSync(join(tmpdir(), 'podlog-trigger-'));
  // The log must exist before the read-only follower opens it: one pod first.
  const first = await podlogAsync(hosts[0]!.d, ['run', busybox, '--exec', '/bin/true'], hosts[0]!.env);
  t.is(first.status, 0, first.stderr);
  const follower = watcher.start(['events', '--follow', '--all-hosts', '--json'], { PODLOG_STORE: url, PODLOG_HOST_ID: 'watcher' });
  try {
    let printed = '';
    follower.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString()));

    // Pods whose lives straddle the restart: each runs until a file appears in its host volume, then exits
    // with its own code. The files are made while the server is down; two more runs start meanwhile.
    const run = (i: number, uuidFile?: string) => {
      const host = hosts[i % 2]!;
      const code = 10 + i;
      const save = uuidFile === undefined ? [] : [`--uuid-file-save=${uuidFile}`];
      const script = `while [ ! -e /trigger/go ]; do sleep 0.1; done; exit ${code}`;
      const args = ['run', ...save, `--volume=t,kind=host,source=${trigger}`, '--mount=volume=t,target=/trigger', busybox, '--exec', '/bin/sh', '--', '-c', script];
      return podlogAsync(host.d, args, host.env).then((r) => ({ ...r, code }));
    };
    const uuidFiles = [0, 1, 2, 3, 4, 5].map((i) => `${hosts[i % 2]!.d.dir}/uuid-${i}`);
    const runs = uuidFiles.map((file, i) => run(i, file));
    const uuids = await Promise.all(uuidFiles.map((file) => waitForFile(file, 60_000)));
    await Promise.all(uuids.map((uuid, i) => waitForRunning(hosts[i % 2]!.d, uuid, hosts[i % 2]!.env)));
    const down = Date.now();
    await pg.pause();
    writeFileSync(join(trigger, 'go'), '');
    runs.push(run(6), run(7));
    await sleep(2500);
    await pg.resume();
    t.log(`PostgreSQL was down for ${Date.now() - down} ms`);
    const results = await Promise.all(runs);
    for (const r of results) t.log(`run exiting ${r.code}: status ${r.status} ${r.stderr.trim()}`);
    for (const r of results) {
      // The pod's own code, or the engine's 254 naming the store it could not reach.
      if (r.status === r.code) continue;
      t.is(r.status, 254, r.stderr);
      t.regex(r.stderr, /event store|PostgreSQL|connect/i);
    }
    t.log(`${results.filter((r) => r.status === r.code).length} of ${results.length} runs ended with their pod's code`);

    // Each host looks at its pods (list observes exits and finishes or compensates open intents) until none runs.
    for (let i = 0; ; i++) {
      const states = await Promise.all(hosts.map(async (h) => JSON.parse((await podlogAsync(h.d, ['list', '--format=json'], h.env)).stdout) as Array<{ state: string }>));
      if (states.flat().every((p) => p.state !== 'running')) break;
      if (i === 100) {
        t.fail('pods still running 20 s after their apps exited');
        break;
      }
      await sleep(200);
    }

    const store = await openStoreAt(url, 'inspect');
    try {
      const log = await store.readAll({ limit: 100_000 });
      // Nothing half-written: every stream's versions are 1..N with no gap.
      const versions = new Map<string, number>();
      for (const e of log) {
        t.is(e.version, (versions.get(e.stream) ?? 0) + 1, `${e.stream} has no gap`);
        versions.set(e.stream, e.version);
      }
      // The log says what the world shows: every pod exited with its app's code, or its preparation was
      // aborted (a run that failed before its pod ran). None is left running or with an open intent.
      const prepared = log.filter((e) => e.type === 'PrepareRequested');
      t.true(prepared.length >= 7, `${prepared.length} pods`);
      for (const p of prepared) {
        const host = hosts.find((h) => h.id === p.data['host'])!;
        const status = await podlogAsync(host.d, ['status', '--format=json', p.stream.slice('pod-'.length)], host.env);
        const view = JSON.parse(status.stdout) as { state: string; pending?: unknown; apps: Array<{ exitCode?: number; exec?: string[] }> };
        t.is(view.pending, undefined, `${p.stream} has no open intent`);
        const script = view.apps[0]!.exec?.at(-1) ?? '';
        const expected = /exit (\d+)/.exec(script)?.[1];
        if (view.state === 'exited') t.is(view.apps[0]!.exitCode, expected === undefined ? 0 : Number(expected), `${p.stream}: ${script}`);
        else t.true(['aborted prepare', 'prepared'].includes(view.state), `${p.stream} is ${view.state}`);
      }

      // The follower outlived the restart and printed every event once, in order.
      const head = await store.headPosition();
      // Whole lines only: the last may still be arriving.
      const seenSoFar = () => printed.slice(0, printed.lastIndexOf('\n') + 1).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as RecordedEvent);
      for (let i = 0; i < 400 && !seenSoFar().some((e) => e.position >= head); i++) await sleep(50);
      const seen = seenSoFar();
      t.is(follower.exitCode, null, 'the follower is still following');
      t.deepEqual(seen.map((e) => e.meta.id), log.map((e) => e.meta.id));
    } finally {
      await store.close();
    }
  } finally {
    follower.kill('SIGINT');
    for (const h of hosts) h.d.cleanup();
    watcher.cleanup();
    rmSync(trigger, { recursive: true, force: true });
  }
});
