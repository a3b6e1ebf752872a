/**
 * Three hosts on one PostgreSQL log, simulated on this machine: three data dirs and three host ids
 * (--host-id through PODLOG_HOST_ID), each running real pods through bin/podlog. Each host lists and acts
 * on its own pods, `--all-hosts` shows the fleet, a fourth process following the log sees every event of
 * every host in per-stream order, and no host's reconciler or gc records anything on another host's pods.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { openStoreAt } from '../../src/store/open.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { aciPath } from '../helpers/fixtures.js';
import { usePostgres } from '../helpers/postgres.js';
import { dataDir, podlogAsync, waitForFile, type DataDir } from '../stage0/podlog.js';

const server = usePostgres(test);

const busybox = aciPath('busybox-gzip');
const sh = (script: string) => [busybox, '--exec', '/bin/sh', '--', '-c', script];

interface Host {
  id: string;
  d: DataDir;
  env: Record<string, string>;
  run: (args: string[], env?: Record<string, string>) => Promise<{ status: number | null; stdout: string; stderr: string }>;
}

const hostOn = (url: string, id: string): Host => {
  const d = dataDir();
  const env = { PODLOG_STORE: url, PODLOG_HOST_ID: id };
  return { id, d, env, run: (args, extra = {}) => podlogAsync(d, args, { ...env, ...extra }) };
};

interface ListedPod {
  uuid: string;
  host?: string;
  state: string;
  exit_code?: number;
}

const listed = async (h: Host, args: string[] = []): Promise<ListedPod[]> => {
  const r = await h.run(['list', '--format=json', ...args]);
  if (r.status !== 0) throw new Error(`list on ${h.id}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ListedPod[];
};

/** The lines `events --follow --json` printed, once it has printed the event at `position`. */
const followedUpTo = async (child: ChildProcess, lines: () => string[], position: number): Promise<RecordedEvent[]> => {
  for (let i = 0; i < 600; i++) {
    const events = lines().map((l) => JSON.parse(l) as RecordedEvent);
    if (events.some((e) => e.position >= position)) return events;
    if (child.exitCode !== null) throw new Error(`the follower exited with ${child.exitCode}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`the follower never printed position ${position}`);
};

test('three hosts on one log: each lists and acts on its own pods, --all-hosts shows the fleet, a fourth process follows every host in order, and no host touches another host\'s pods', async (t) => {
  const { url: base, schema } = server();
  const url = `${base}?schema=${schema()}`;
  const [a, b, c] = ['host-a', 'host-b', 'host-c'].map((id) => hostOn(url, id)) as [Host, Host, Host];
  const watcher = hostOn(url, 'watcher');
  let follower: ChildProcess | undefined;
  try {
    // The first pod creates the log (a read-only follower needs it to exist).
    t.is((await a.run(['run', ...sh('exit 0')])).status, 0);
    follower = watcher.d.start(['events', '--follow', '--all-hosts', '--json'], watcher.env);
    let printed = '';
    follower.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    // Whole lines only: the last may still be arriving.
    const lines = () => printed.slice(0, printed.lastIndexOf('\n') + 1).split('\n').filter((l) => l.startsWith('{'));

    // The hosts at once: pods that exit with their own codes, a pod prepared and left, and on host B a run
    // killed right after its Stage1StartRequested was committed (an open intent whose process is gone).
    const runs = await Promise.all([
      a.run(['run', ...sh('exit 3')]),
      b.run(['run', ...sh('exit 4')]),
      c.run(['run', '--user-label=tier=db', ...sh('exit 5')]),
      b.run(['prepare', ...sh('exit 6')]),
      b.run(['run', ...sh('exit 7')], { PODLOG_CRASH_AT: 'after-intent:Stage1StartRequested' }),
    ]);
    t.deepEqual(runs.map((r) => r.status), [3, 4, 5, 0, null], runs.map((r) => r.stderr).join('\n'));

    const store = await openStoreAt(url, 'inspect');
    try {
      const podsOf = async (host: string) => {
        const all = await store.readAll({ streamPrefix: 'pod-', types: ['PrepareRequested'], limit: 10_000 });
        return all.filter((e) => e.data['host'] === host).map((e) => e.stream.slice('pod-'.length)).sort();
      };
      const [podsA, podsB, podsC] = await Promise.all([podsOf('host-a'), podsOf('host-b'), podsOf('host-c')]);
      t.is(podsA.length, 2);
      t.is(podsB.length, 3);
      t.is(podsC.length, 1);
      // Each host's image store recorded the same image under its own scope: nothing shared, nothing clashed.
      const imageScopes = (await store.listStreams('host/')).filter((s) => s.stream.includes('/image-')).map((s) => s.stream.split('/')[1]);
      t.deepEqual([...new Set(imageScopes)].sort(), ['host-a', 'host-b', 'host-c']);
      t.deepEqual(await store.listStreams('image-'), []);
      const versionsOfB = async () => Promise.all(podsB.map((uuid) => store.streamVersion(`pod-${uuid}`)));
      const bBefore = await versionsOfB();

      // Each host lists its own pods; --all-hosts lists the fleet, with each pod's host.
      t.deepEqual((await listed(a)).map((p) => p.uuid).sort(), podsA);
      t.deepEqual((await listed(c)).map((p) => p.uuid).sort(), podsC);
      const fleet = await listed(a, ['--all-hosts']);
      t.deepEqual(fleet.map((p) => p.uuid).sort(), [...podsA, ...podsB, ...podsC].sort());
      t.deepEqual([...new Set(fleet.map((p) => p.host))].sort(), ['host-a', 'host-b', 'host-c']);
      const table = (await a.run(['list', '--all-hosts'])).stdout;
      t.regex(table.split('\n')[0]!, /^UUID\s+HOST\s+APP/);
      for (const uuid of podsB) t.regex(table, new RegExp(`${uuid.slice(0, 8)}\\s+host-b`));

      // events: this host's pods' events by default; another host's pod found by its labels, from the log.
      const eventsOf = async (h: Host, args: string[]) =>
        (await h.run(['events', '--json', ...args])).stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RecordedEvent);
      const podStreams = (events: RecordedEvent[]) => [...new Set(events.filter((e) => e.stream.startsWith('pod-')).map((e) => e.stream.slice(4)))].sort();
      t.deepEqual(podStreams(await eventsOf(a, [])), podsA);
      t.deepEqual(podStreams(await eventsOf(a, ['--all-hosts', '--filter=label=tier=db'])), podsC);
      t.true((await eventsOf(c, [])).every((e) => !e.stream.startsWith('host/') || e.stream.startsWith('host/host-c/')));

      // Host A's list and gc neither reconcile B's open intent nor collect B's pods; its own exited pods go.
      t.is((await a.run(['gc', '--grace-period=0s', '--expire-prepared=0s'])).status, 0);
      t.deepEqual(await versionsOfB(), bBefore, "host A recorded nothing on host B's pods");
      t.deepEqual(await listed(a), []);
      const stuck = (await listed(b)).find((p) => p.state !== 'exited' && p.state !== 'prepared');
      t.is(stuck, undefined, 'host B reconciles its own pod left by the killed run');
      t.notDeepEqual(await versionsOfB(), bBefore);

      // Acting on another host's pod is refused by name, a running one too; reading it is not.
      const other = podsB[0]!;
      const rm = await a.run(['rm', other]);
      t.is(rm.status, 254);
      t.regex(rm.stderr, new RegExp(`pod ${other} is on host host-b: only podlog on that host can act on it`));
      t.regex((await a.run(['status', '--all-hosts', other])).stdout, /host=host-b/);
      t.is((await a.run(['status', other])).status, 254);
      const uuidFile = join(b.d.dir, 'running-uuid');
      const running = b.run(['run', `--uuid-file-save=${uuidFile}`, ...sh('sleep 60')]);
      const runningUuid = await waitForFile(uuidFile, 60_000);
      while (!(await a.run(['status', '--all-hosts', runningUuid])).stdout.includes('state=running')) await new Promise((ok) => setTimeout(ok, 100));
      const stop = await a.run(['stop', runningUuid]);
      t.is(stop.status, 254);
      t.regex(stop.stderr, new RegExp(`pod ${runningUuid} is on host host-b: only podlog on that host can act on it`));
      t.is((await b.run(['stop', runningUuid])).status, 0);
      t.is((await running).status, 143);

      // Every event of host B's pods was recorded for host B; every stream's versions are 1..N.
      const head = await store.headPosition();
      const log = await store.readAll({ limit: 100_000 });
      for (const e of log.filter((x) => podsB.some((uuid) => x.stream === `pod-${uuid}`))) t.is(e.meta.hostId, 'host-b', `${e.type} on ${e.stream}`);

      // The follower saw the whole log, each event once, in position order (so per stream in version order).
      const seen = await followedUpTo(follower, lines, head);
      t.deepEqual(seen.map((e) => [e.position, e.meta.id]), log.map((e) => [e.position, e.meta.id]));
      const versions = new Map<string, number>();
      for (const e of seen) {
        t.is(e.version, (versions.get(e.stream) ?? 0) + 1, `${e.stream} in order`);
        versions.set(e.stream, e.version);
      }
    } finally {
      await store.close();
    }
  } finally {
    follower?.kill('SIGINT');
    for (const h of [a, b, c, watcher]) h.d.cleanup();
  }
});
