/**
 * podlog-stage1's cgroups, for real, as root: each app in its own cgroup below the pod's, its limits
 * from the appc isolators stage0 writes (docs/stage1.md, "cgroups"), `<pod>/cgroups.json` and
 * `<pod>/appstats/<app>` as stage0 reads them, and nothing of the pod left in any hierarchy. What the
 * kernel holds is read on the host (through cgroups.json) and inside the app (its /sys/fs/cgroup).
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  appStatus,
  cleanupStage1Dirs,
  makePod,
  mountinfo,
  pidsMatching,
  readReady,
  runPod,
  spawnStage1,
  stage1,
  startPod,
  waitNoProcess,
  type AppSpec,
} from './helpers/stage1-pod.js';

type Isolators = NonNullable<AppSpec['isolators']>;

const MiB = 1024 * 1024;
const memory = (bytes: number): Isolators[number] => ({ name: 'resource/memory', value: { limit: String(bytes) } });
const cpu = (millicores: string): Isolators[number] => ({ name: 'resource/cpu', value: { limit: millicores } });
const shares = (n: number): Isolators[number] => ({ name: 'os/linux/cpu-shares', value: n });
const sh = (name: string, script: string, isolators: Isolators = []): AppSpec => ({
  name,
  exec: ['/bin/sh', '-c', script],
  isolators,
});
/** Holds `bytes` of memory: tail keeps its input, one line without a newline, whole. */
const hold = (bytes: number): string => `head -c ${bytes} /dev/zero | tail >/dev/null`;

interface CgroupsJson {
  layout: string;
  dirs: string[];
  delegated: boolean;
}
interface AppStats {
  oom: boolean | null;
  memoryPeak: number | null;
  cpuTime: number | null;
}
const cgroupsJson = (dir: string): CgroupsJson => JSON.parse(readFileSync(join(dir, 'cgroups.json'), 'utf8')) as CgroupsJson;
const appStats = (dir: string, app: string): AppStats => JSON.parse(readFileSync(join(dir, 'appstats', app), 'utf8')) as AppStats;

/** This host's layout, from the mount table (the names of the contract). */
function hostLayout(): string {
  const v2 = mountinfo()
    .split('\n')
    .filter((l) => l.split(' - ')[1]?.startsWith('cgroup2 '))
    .map((l) => l.split(' ')[4] ?? '');
  if (v2.includes('/sys/fs/cgroup')) return 'unified';
  return v2.some((p) => p.startsWith('/sys/fs/cgroup/')) ? 'hybrid' : 'legacy';
}

/** The content of the first of `files` that the app's cgroup has in some hierarchy (v1 or v2 names). */
function appFile(dir: string, app: string, ...files: string[]): string | undefined {
  for (const d of cgroupsJson(dir).dirs) {
    for (const f of files) {
      const p = join(d, app, f);
      if (existsSync(p)) return readFileSync(p, 'utf8').trim();
    }
  }
  return undefined;
}

/** Every cgroup directory of the pod that still exists: each `subcgroup` line and all below it. */
function leftovers(dir: string): string[] {
  const below = (d: string): string[] => [
    d,
    ...readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .flatMap((e) => below(join(d, e.name))),
  ];
  return readFileSync(join(dir, 'subcgroup'), 'utf8')
    .split('\n')
    .filter((d) => d !== '' && existsSync(d))
    .flatMap(below);
}

/**
 * After a failed assertion: kills what is left of the pod's stage1 (its PID 1 and apps die with it), so
 * that the test process can exit, and collects its cgroups, which would outlive the test.
 */
async function killPod(dir: string): Promise<void> {
  for (const pid of pidsMatching(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // gc refuses while PID 1 is still dying.
  for (let i = 0; i < 50 && (await stage1(['gc', '--pod-dir', dir])).code !== 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function gc(t: ExecutionContext, dir: string): Promise<void> {
  const r = await stage1(['gc', '--pod-dir', dir]);
  t.is(r.code, 0, `gc: ${r.stderr}`);
}

test.after.always(cleanupStage1Dirs);

test.serial("each app's limits are in its own cgroup while it runs; all of the pod's cgroups go when it exits", async (t) => {
  const marker = `limits-${process.pid}`;
  const dir = makePod([
    sh('limited', `sleep 30; : ${marker}`, [memory(32 * MiB), cpu('250m'), shares(512)]),
    sh('free', 'exec sleep 30'),
  ]);
  const pod = await startPod(dir, { ready: true, stopGrace: 1 });
  try {
    t.regex(await readReady(pod), /^\d+\n$/, 'the pod is up');
    const report = cgroupsJson(dir);
    t.is(report.layout, hostLayout());
    t.true(report.dirs.length > 0, 'the pod has cgroups');
    for (const d of report.dirs) t.regex(d, new RegExp(`^/sys/fs/cgroup/.+/podlog/${dir.split('/').pop()}$`));
    t.is(readFileSync(join(dir, 'subcgroup'), 'utf8'), report.dirs.map((d) => `${d}\n`).join(''), 'gc finds what was made');
    // Only a v2 pod put below the root (stage1's own cgroup cannot delegate) is undelegated.
    if (report.layout !== 'unified' && !report.dirs.some((d) => d.startsWith('/sys/fs/cgroup/unified/'))) t.true(report.delegated);

    t.is(appFile(dir, 'limited', 'memory.limit_in_bytes', 'memory.max'), String(32 * MiB));
    const memsw = appFile(dir, 'limited', 'memory.memsw.limit_in_bytes', 'memory.swap.max');
    if (memsw !== undefined) t.true(memsw === String(32 * MiB) || memsw === '0', `no escape into swap (${memsw})`);
    if (report.layout === 'unified') {
      t.is(appFile(dir, 'limited', 'cpu.max'), '25000 100000');
      t.is(appFile(dir, 'limited', 'cpu.weight'), '20');
    } else {
      t.is(appFile(dir, 'limited', 'cpu.cfs_quota_us'), '25000');
      t.is(appFile(dir, 'limited', 'cpu.cfs_period_us'), '100000');
      t.is(appFile(dir, 'limited', 'cpu.shares'), '512');
    }
    // The app's own process is in its cgroup, not the other app's, which has no limit.
    const [app] = pidsMatching(marker);
    t.truthy(app);
    t.true(appFile(dir, 'limited', 'cgroup.procs')?.split('\n').includes(String(app)), 'the app is in its cgroup');
    t.false(appFile(dir, 'free', 'cgroup.procs')?.split('\n').includes(String(app)));
    t.not(appFile(dir, 'free', 'memory.limit_in_bytes', 'memory.max'), String(32 * MiB));

    // enter runs its command in the app's cgroup (it counts against the app's limits), at the root of
    // a cgroup namespace of its own, as the app is.
    const procs = report.layout === 'unified' ? '/sys/fs/cgroup/cgroup.procs' : '/sys/fs/cgroup/memory/cgroup.procs';
    const entered = await stage1(['enter', '--pod-dir', dir, '--app', 'limited', '--', '/bin/sh', '-c', `cat /proc/self/cgroup; grep -qx $$ ${procs} && echo in`]);
    t.is(entered.code, 0, entered.stderr);
    const lines = entered.stdout.trim().split('\n');
    t.is(lines.pop(), 'in', "the entered shell is in the app's memory cgroup");
    t.true(lines.length > 0 && lines.every((l) => l.endsWith(':/')), entered.stdout);
    // An entered command that outlives the pod dies with its pid namespace; its `enter` then exits by
    // itself, not by the SIGKILL that empties a cgroup that will not go.
    const lingering = spawnStage1(['enter', '--pod-dir', dir, '--app', 'limited', '--', '/bin/sleep', '30']);

    // Inside, each app sees its own cgroup at /sys/fs/cgroup, read-only.
    const inside = (app: string, files: string[]) =>
      stage1(['enter', '--pod-dir', dir, '--app', app, '--', '/bin/sh', '-c', `cd /sys/fs/cgroup && cat ${files.join(' ')} && echo 1 >${files[0]}`]);
    const v2 = report.layout === 'unified';
    const files = v2 ? ['memory.max', 'cpu.max', 'cpu.weight'] : ['memory/memory.limit_in_bytes', 'cpu/cpu.cfs_quota_us', 'cpu/cpu.shares'];
    const seen = await inside('limited', files);
    t.deepEqual(seen.stdout.trim().split('\n'), v2 ? [String(32 * MiB), '25000 100000', '20'] : [String(32 * MiB), '25000', '512']);
    t.regex(seen.stderr, /Read-only file system/, 'an app cannot raise its own limits');
    t.not(seen.code, 0);
    const other = await inside('free', files.slice(0, 1));
    t.not(other.stdout.trim(), String(32 * MiB), "the other app sees its own cgroup, which has no limit");
    t.regex(other.stdout.trim(), /^(\d+|max)$/);

    const stop = await stage1(['stop', '--pod-dir', dir]);
    t.is(stop.code, 0, stop.stderr);
    const r = await pod.done;
    t.is(r.code, 143, r.stderr);
    t.deepEqual(leftovers(dir), [], 'init removed every cgroup of the pod');
    const outlived = await lingering.done;
    t.like(outlived, { code: 137, signal: null }, outlived.stderr);
    await gc(t, dir);
  } finally {
    await killPod(dir);
  }
});

test.serial('an app that exceeds its memory limit is OOM-killed (137), and its stats say so', async (t) => {
  const control = makePod([sh('hog', hold(64 * MiB))]);
  const free = await runPod(control);
  t.is(free.code, 0, `without a limit the same app runs: ${free.stderr}`);
  const unlimited = appStats(control, 'hog');
  t.false(unlimited.oom);
  t.true((unlimited.memoryPeak ?? 0) >= 64 * MiB, `it holds 64 MiB (peak ${unlimited.memoryPeak})`);
  await gc(t, control);

  const dir = makePod([sh('hog', hold(64 * MiB), [memory(32 * MiB)])]);
  const r = await runPod(dir);
  t.is(r.code, 137, r.stderr);
  t.is(appStatus(dir, 'hog'), '137');
  const stats = appStats(dir, 'hog');
  t.true(stats.oom, 'the OOM kill is recorded');
  t.true(stats.memoryPeak !== null && stats.memoryPeak > 16 * MiB && stats.memoryPeak <= 32 * MiB, `peak ${stats.memoryPeak}`);
  t.true(typeof stats.cpuTime === 'number' && stats.cpuTime > 0, `cpu ${stats.cpuTime}`);
  t.deepEqual(leftovers(dir), []);
  await gc(t, dir);

  // A child of the app is OOM-killed, the app goes on and exits 0: not the app's OOM kill.
  const parent = makePod([sh('parent', `(${hold(64 * MiB)}); echo child $?`, [memory(32 * MiB)])]);
  const survived = await runPod(parent);
  t.is(survived.code, 0, survived.stderr);
  t.is(survived.stdout.trim(), 'child 137');
  t.false(appStats(parent, 'parent').oom);
  await gc(t, parent);
});

test.serial('an app limited to 100m spinning for 2 s of wall time uses at most 0.3 s of CPU', async (t) => {
  const spin = 'while :; do :; done & sleep 2; kill $!';
  const dir = makePod([sh('spin', spin, [cpu('100m')])]);
  const r = await runPod(dir);
  t.is(r.code, 0, r.stderr);
  const { cpuTime, oom } = appStats(dir, 'spin');
  t.false(oom);
  t.true(cpuTime !== null && cpuTime > 0.02e9 && cpuTime <= 0.3e9, `CPU time ${(cpuTime ?? NaN) / 1e9} s`);
  t.log(`CPU time of 2 s spinning at 100m: ${((cpuTime ?? NaN) / 1e9).toFixed(3)} s`);
  await gc(t, dir);
});

test.serial('a limit that cannot be applied fails the pod before any app starts, naming the app, the limit and the file', async (t) => {
  // The kernel refuses a CFS quota above 2^44 µs.
  const dir = makePod([sh('first', 'echo ran'), sh('greedy', 'echo ran', [cpu('200000000000m')])]);
  const pod = await startPod(dir, { ready: true });
  t.is(await readReady(pod), '', '--ready-fd is closed empty');
  const r = await pod.done;
  t.is(r.code, 254);
  t.is(r.stdout, '', 'no app ran');
  t.regex(
    r.stderr,
    /app "greedy": cpu limit 200000000000m: write "20000000000000( 100000)?" to \/sys\/fs\/cgroup\/\S+\/podlog\/[-0-9a-f]+\/greedy\/cpu\.(cfs_quota_us|max): Invalid argument/,
  );
  const made = readFileSync(join(dir, 'subcgroup'), 'utf8').split('\n').filter(Boolean);
  t.true(made.length > 0);
  t.deepEqual(made.filter((d) => existsSync(d)), [], 'what was made is removed');
  t.false(existsSync(join(dir, 'pid')));
  await gc(t, dir);

  const bad = makePod([sh('a', 'echo ran', [{ name: 'resource/memory', value: { limit: '32M' } }])]);
  const refused = await runPod(bad);
  t.is(refused.code, 254);
  t.is(refused.stdout, '');
  t.regex(refused.stderr, /app "a": isolator resource\/memory: limit "32M" is not a positive whole number of bytes/);

  // appc allows a request without a limit: nothing to set.
  const requested = makePod([sh('a', 'echo ran', [{ name: 'resource/memory', value: { request: '1G' } }, { name: 'resource/cpu', value: { request: '500m', default: true } }])]);
  const ran = await runPod(requested);
  t.is(ran.code, 0, ran.stderr);
  t.is(ran.stdout, 'ran\n');
  await gc(t, requested);
});

test.serial("gc removes the cgroups of a pod whose stage1 was killed, apps' first", async (t) => {
  const dir = makePod([sh('a', 'exec sleep 30', [memory(32 * MiB)]), sh('b', 'exec sleep 30')]);
  const pod = await startPod(dir, { ready: true });
  try {
    t.regex(await readReady(pod), /^\d+\n$/);
    pod.child.kill('SIGKILL');
    await pod.done;
    t.deepEqual(await waitNoProcess(dir), [], 'PID 1 and the apps died with the supervisor');
    t.true(leftovers(dir).length >= 3, 'the cgroups are left behind');
    await gc(t, dir);
    t.deepEqual(leftovers(dir), [], 'gc removed them all');
  } finally {
    await killPod(dir);
  }
});
