/**
 * An app's limits and security settings as a user asks for them: --memory, --cpu, --cpu-shares,
 * --oom-score-adj, --seccomp and --readonly-rootfs after its image, and its image's isolators.
 * Read inside the app (its cgroup files, /proc), on the host (the pod's cgroups), and in the log
 * (AppExited's OOM kill, memory peak and CPU time; PodPrepared's ignored isolators).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, startRun, waitForRunning, type DataDir } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const sh = (script: string) => ['--exec', '/bin/sh', '--', '-c', script];
/** 64 MiB held at once: the shell keeps the whole output of the substitution in memory. */
const ALLOCATE_64M = 'x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo held ${#x}';

const appExited = (d: DataDir, uuid: string) => d.events(uuid).find((e) => e.type === 'AppExited')!.data;
const podStarted = (d: DataDir, uuid: string) => d.events(uuid).find((e) => e.type === 'PodStarted')!.data as { cgroups?: { layout: string; dirs: string[] } };

/** The pod's own cgroup directory in a v1 hierarchy (or the v2 one), from what PodStarted recorded. */
const hostCgroup = (d: DataDir, uuid: string, hierarchy: string): string | undefined => {
  const status = JSON.parse(d.podlog(['status', '--format=json', uuid]).stdout) as { cgroups?: { dirs: string[] } };
  return status.cgroups?.dirs.find((dir) => dir.startsWith(`/sys/fs/cgroup/${hierarchy}/`)) ?? status.cgroups?.dirs.find((dir) => !/^\/sys\/fs\/cgroup\/(memory|cpu|cpuacct|pids)\//.test(dir));
};

const until = async <T>(what: string, f: () => T | undefined, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
};

test.serial('--memory=32M: the limit inside and on the host; 64 MiB is an OOM kill, exit 137, recorded and shown', async (t) => {
  const d = dataDir();
  try {
    const { uuid, exited, stdout } = await startRun(d, [busybox, '--memory=32M', ...sh(`cat /sys/fs/cgroup/memory/memory.limit_in_bytes; sleep 3; ${ALLOCATE_64M}`)]);
    const limitFile = await until('the pod cgroup', () => {
      const dir = hostCgroup(d, uuid, 'memory');
      const file = dir !== undefined ? join(dir, 'busybox', existsSync(join(dir, 'busybox', 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes') : undefined;
      return file !== undefined && existsSync(file) ? file : undefined;
    });
    const onHost = Number(readFileSync(limitFile, 'utf8'));
    t.true(Math.abs(onHost - 32e6) < 4096, `the host's ${limitFile}: ${onHost}, 32 MB to the page`);
    t.is(await exited, 137, 'SIGKILL by the OOM killer');
    t.is(Number(stdout().split('\n')[0]), onHost, 'the same limit seen from inside');
    t.notRegex(stdout(), /held/);
    const data = appExited(d, uuid);
    t.like(data, { app: 'busybox', code: 137, oom: true });
    t.true((data.memoryPeak as number) > 30e6 && (data.memoryPeak as number) <= 32e6, `memory peak ${String(data.memoryPeak)}`);
    t.regex(d.podlog(['status', uuid]).stdout, /^app-busybox=137$[\s\S]*^oom-killed=busybox$/m);
    const [listed] = d.pods() as unknown as Array<{ apps: Array<{ oom?: boolean; memory_peak?: number }> }>;
    t.like(listed!.apps[0], { oom: true, memory_peak: data.memoryPeak as number });
  } finally {
    d.cleanup();
  }
});

test.serial('--cpu=100m: an app spinning for 2 s uses at most 0.3 s of CPU, as its AppExited says', (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', busybox, '--cpu=100m', ...sh('timeout 2 sh -c "while :; do :; done"; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us')]);
    t.is(r.status, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), ['10000', '100000'], 'a quota of 10 ms per 100 ms, seen inside');
    const [pod] = d.pods();
    const { cpuTime, oom } = appExited(d, pod!.uuid) as { cpuTime: number; oom: boolean };
    t.false(oom);
    t.true(cpuTime > 0.05e9 && cpuTime <= 0.3e9, `CPU time ${cpuTime} ns`);
    // The control claims only what a shared, loaded machine can promise: without the quota the same
    // 2 s loop gets past the ceiling the quota held it under (even a fifth of a core is 0.4 s).
    const unlimited = d.podlog(['run', busybox, ...sh('timeout 2 sh -c "while :; do :; done"; exit 0')]);
    t.is(unlimited.status, 0, unlimited.stderr);
    const [, free] = d.pods();
    const freeCpu = appExited(d, free!.uuid).cpuTime as number;
    t.true(freeCpu > 0.3e9, `without a limit the same loop passes the limited ceiling: ${freeCpu} ns`);
  } finally {
    d.cleanup();
  }
});

test.serial("an image's isolators apply (its memory limit, its OOM score), the flags win, and the ones podlog ignores are named", (t) => {
  const d = dataDir();
  try {
    const probe = ['--exec', '/bin/sh', '--', '-c', 'cat /proc/self/oom_score_adj /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares'];
    const image = d.podlog(['run', aciPath('limits'), ...probe]);
    t.is(image.status, 0, image.stderr);
    t.deepEqual(image.stdout.trim().split('\n'), ['300', String(64 * 2 ** 20), '1024']);
    t.regex(image.stderr, /app limits: isolator resource\/network-bandwidth is not supported by podlog and is ignored/);
    t.regex(image.stderr, /app limits: isolator os\/linux\/selinux-context is not supported by podlog and is ignored/);
    const [pod] = d.pods();
    const prepared = d.events(pod!.uuid).find((e) => e.type === 'PodPrepared')!;
    t.deepEqual(prepared.data, { ignoredIsolators: [{ app: 'limits', name: 'resource/network-bandwidth' }, { app: 'limits', name: 'os/linux/selinux-context' }] });

    const flags = d.podlog(['run', aciPath('limits'), '--memory=128Mi', '--oom-score-adj=700', '--cpu-shares=512', ...probe]);
    t.is(flags.status, 0, flags.stderr);
    t.deepEqual(flags.stdout.trim().split('\n'), ['700', String(128 * 2 ** 20), '512']);
  } finally {
    d.cleanup();
  }
});

test.serial('--seccomp: a removed syscall fails with EPERM or the errno asked for; unknown names are refused before a pod exists', (t) => {
  const d = dataDir();
  try {
    const removed = d.podlog(['run', busybox, '--seccomp=mode=remove,mkdir,mkdirat', ...sh('mkdir /x; echo mkdir=$?')]);
    t.regex(removed.stdout, /mkdir=1/);
    t.regex(removed.stderr, /Operation not permitted/);
    const enosys = d.podlog(['run', busybox, '--seccomp=mode=remove,errno=ENOSYS,mkdir,mkdirat', ...sh('mkdir /x')]);
    t.regex(enosys.stderr, /Function not implemented/);
    const retained = d.podlog(['run', busybox, '--seccomp=mode=retain,@podlog/default-whitelist', ...sh('mkdir /x && echo fine')]);
    t.is(retained.status, 0, retained.stderr);
    t.regex(retained.stdout, /fine/);
    const userns = d.podlog(['run', busybox, ...sh('unshare -U true; echo unshare=$?')]);
    t.regex(userns.stdout, /unshare=1/, 'the default filter refuses a user namespace');
    const before = d.pods().length;
    const bad = d.podlog(['run', busybox, '--seccomp=mode=remove,notasyscall']);
    t.is(bad.status, 254);
    t.regex(bad.stderr, /--seccomp: unknown syscall or group "notasyscall"/);
    t.is(d.pods().length, before);
  } finally {
    d.cleanup();
  }
});

test.serial('--readonly-rootfs: a write to / fails with EROFS; its volumes stay writable', (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', '--volume=data,kind=empty', busybox, '--readonly-rootfs', '--mount=volume=data,target=/data',
      ...sh('touch /x; echo root=$?; touch /data/x && echo data=$?; grep " / " /proc/self/mounts')]);
    t.regex(r.stderr, /Read-only file system/);
    t.regex(r.stdout, /root=1/);
    t.regex(r.stdout, /data=0/);
    t.regex(r.stdout, / \/ overlay ro[,\s]/, 'the root mount is read-only');
    const [pod] = d.pods();
    const manifest = JSON.parse(d.podlog(['cat-manifest', pod!.uuid]).stdout);
    t.true(manifest.apps[0].readOnlyRootFS, 'appc readOnlyRootFS in the pod manifest');
    // The same document through --pod-manifest, with a limit in appc's words: read-only again, the limit canonical.
    manifest.apps[0].app.isolators = [{ name: 'resource/memory', value: { limit: '64Mi' } }];
    const file = join(d.dir, 'pod.json');
    writeFileSync(file, JSON.stringify(manifest));
    const again = d.podlog(['run', `--pod-manifest=${file}`]);
    t.regex(again.stdout, /root=1/, again.stderr);
    const [, second] = d.pods();
    t.deepEqual(JSON.parse(d.podlog(['cat-manifest', second!.uuid]).stdout).apps[0].app.isolators, [{ name: 'resource/memory', value: { limit: '67108864' } }]);
  } finally {
    d.cleanup();
  }
});

test.serial('a limit in a pod of several apps is its own; nothing of a collected pod is left in any cgroup hierarchy', async (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', busybox, '--name=small', '--memory=16Mi', ...sh('cat /sys/fs/cgroup/memory/memory.limit_in_bytes'), '---',
      busybox, '--name=free', ...sh('sleep 0.3; cat /sys/fs/cgroup/memory/memory.limit_in_bytes')]);
    t.is(r.status, 0, r.stderr);
    const limits = r.stdout.trim().split('\n').map(Number);
    t.true(limits.includes(16 * 2 ** 20), r.stdout);
    t.true(limits.some((l) => l > 2 ** 40), 'the other app has no limit');
    const [pod] = d.pods();
    const started = podStarted(d, pod!.uuid);
    t.truthy(started.cgroups, 'PodStarted says which cgroups');
    t.true(['unified', 'legacy', 'hybrid'].includes(started.cgroups!.layout));
    t.true(started.cgroups!.dirs.length > 0);
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    for (const dir of started.cgroups!.dirs) t.false(existsSync(dir), `${dir} is gone`);

    // Init removes its cgroups when the pod exits; here nothing does but gc: `podlog run` is killed, and
    // its stage1 with it.
    const { uuid, child, exited } = await startRun(d, [aciPath('worker'), '--memory=64M']);
    await waitForRunning(d, uuid);
    // find's own status is left aside: other pods' cgroups come and go while it walks.
    const inHierarchies = () => spawnSync('find', ['/sys/fs/cgroup', '-type', 'd', '-name', uuid], { encoding: 'utf8' }).stdout.trim();
    t.not(inHierarchies(), '', 'the running pod has cgroups');
    child.kill('SIGKILL');
    await exited;
    // Its exit is observed once the lock is free, a moment after `run` is gone.
    await until('the pod collected', () => {
      t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
      return existsSync(join(d.dir, 'pods', uuid)) ? undefined : true;
    });
    t.is(inHierarchies(), '', 'no directory named after the pod in any hierarchy');
  } finally {
    d.cleanup();
  }
});
