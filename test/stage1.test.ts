/**
 * podlog-stage1, for real, as root: spawned from Node on pod directories built like stage0 builds them.
 * Every test checks that the test process's own mount table is unchanged afterwards: stage1 mounts only
 * in its private mount namespace.
 */
import test from 'ava';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeFd, isLocked, lockDir, openDir } from '../src/native.js';
import {
  READY_FD,
  TREE_STORE_ID,
  appStatus,
  busyboxTreeStore,
  cleanPod,
  cleanupStage1Dirs,
  initArgs,
  isAlive,
  makePod,
  makeTreeStore,
  mountinfo,
  overlayDir,
  parentPid,
  pidsMatching,
  readReady,
  runPod,
  spawnStage1,
  stage1,
  startPod,
  startPodUnderShell,
  waitForPid,
  waitNoProcess,
  type AppSpec,
  type Result,
} from './helpers/stage1-pod.js';

const RETAIN_MASK = '00000000a80425fb';
const sh = (name: string, script: string, extra: Partial<AppSpec> = {}): AppSpec => ({
  name,
  exec: ['/bin/sh', '-c', script],
  ...extra,
});
const marker = (): string => `${Math.floor(Math.random() * 1e6)}`;


/** Polls for the host pid of a process whose command line contains `needle` (an app once it has exec'd). */
async function waitForProcess(needle: string, timeoutMs = 5000): Promise<number | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const [pid] = pidsMatching(needle);
    if (pid !== undefined || Date.now() > end) return pid;
    await new Promise((r) => setTimeout(r, 5));
  }
}

test.after.always(cleanupStage1Dirs);

for (const [code, script] of [
  [0, 'exit 0'],
  [3, 'exit 3'],
  [143, 'kill -TERM $$'],
] as const) {
  test.serial(`the app's exit code ${code} is the pod's code and its recorded status`, async (t) => {
    const dir = makePod([sh('web', script)]);
    await cleanPod(t, dir, async () => {
      const r = await runPod(dir);
      t.is(r.code, code, r.stderr);
      t.is(appStatus(dir, 'web'), String(code));
    });
  });
}

/**
 * The mounts stage1 shows an app its cgroups with (docs/stage1.md: cgroups), from the hierarchies of
 * the same host: the v2 one on a unified host, else a tmpfs with the v1 pids, memory, cpu and cpuacct.
 */
const cgroupView = (): string[] => {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f.includes('-'));
  const fs = (f: string[]) => f[f.indexOf('-') + 1];
  if (mounts.some((f) => f[4] === '/sys/fs/cgroup' && fs(f) === 'cgroup2')) return ['/sys/fs/cgroup cgroup2'];
  const ours = mounts.filter((f) => fs(f) === 'cgroup' && f[f.indexOf('-') + 3]!.split(',').some((o) => ['pids', 'memory', 'cpu', 'cpuacct'].includes(o)));
  return ['/sys/fs/cgroup tmpfs', ...new Set(ours.map((f) => `${f[4]} cgroup`))];
};

test.serial('inside: private pid namespace, hostname, exact mounts and /dev, reduced privileges', async (t) => {
  const script = [
    'echo "pid=$$"',
    'echo "host=$(hostname)"',
    'echo "init=$(tr "\\0" " " < /proc/1/cmdline)"',
    'echo "procs=$(ls /proc | grep -c "^[0-9]*$")"',
    'grep -E "^(CapEff|CapBnd|CapPrm|CapInh|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status',
    'echo "dev=$(ls /dev | tr "\\n" " ")"',
    'echo "env=$AC_APP_NAME,$container,$FOO,$PATH"',
    'echo "cwd=$(pwd)"',
    'echo "cgroup=$(cut -d: -f3 /proc/self/cgroup | sort -u | tr "\\n" " ")"',
    'if unshare -U true 2>/dev/null; then echo userns=allowed; else echo userns=denied; fi',
    'echo ---',
    'cat /proc/self/mountinfo',
  ].join('; ');
  const dir = makePod([sh('probe', script, { environment: { FOO: 'bar' }, workingDirectory: '/tmp' })]);
  await cleanPod(t, dir, async () => {
    const r = await runPod(dir, { hostname: 'probe-host' });
    t.is(r.code, 0, r.stderr);
    const [head = '', mounts = ''] = r.stdout.split('---\n');
    const kv = Object.fromEntries(
      head
        .trim()
        .split('\n')
        .map((l) => {
          const m = /^([A-Za-z]+)[=:]\s*(.*)$/.exec(l);
          return m ? [m[1], m[2]] : [l, ''];
        }),
    );
    t.not(kv.pid, '1', 'the app is not PID 1');
    t.regex(kv.init ?? '', /podlog-stage1 init/, "PID 1 is stage1's init");
    t.true(Number(kv.procs) <= 6, `only the pod's processes are visible (${kv.procs})`);
    t.is(kv.host, 'probe-host');
    for (const k of ['CapEff', 'CapBnd', 'CapPrm']) t.is(kv[k], RETAIN_MASK, k);
    t.is(kv.CapInh, '0000000000000000');
    t.is(kv.CapAmb, '0000000000000000');
    t.is(kv.NoNewPrivs, '1');
    t.is(kv.Seccomp, '2');
    t.is(kv.userns, 'denied', 'seccomp denies new namespaces');
    t.is(kv.dev?.trim(), 'fd full null ptmx pts random shm stderr stdin stdout tty urandom zero');
    t.is(kv.env, 'probe,podlog,bar,/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    t.is(kv.cwd, '/tmp');
    // Its own cgroups, at the root of a cgroup namespace of its own; hierarchies it has none in show '/'.
    t.not(kv.cgroup!.trim(), '', kv.cgroup);
    t.true(kv.cgroup!.trim().split(' ').every((c: string) => c === '/'), kv.cgroup);

    const seen = mounts
      .trim()
      .split('\n')
      .map((l) => {
        const f = l.split(' ');
        return `${f[4]} ${f[f.indexOf('-') + 1]}`;
      })
      .sort();
    const optional = [
      ['/proc/sysrq-trigger', 'proc'],
      ['/proc/acpi', 'tmpfs'],
      ['/proc/asound', 'tmpfs'],
      ['/proc/kcore', 'tmpfs'],
      ['/proc/keys', 'tmpfs'],
      ['/proc/latency_stats', 'tmpfs'],
      ['/proc/timer_list', 'tmpfs'],
      ['/proc/timer_stats', 'tmpfs'],
      ['/proc/sched_debug', 'tmpfs'],
      ['/proc/scsi', 'tmpfs'],
      ['/sys/firmware', 'tmpfs'],
      ['/sys/devices/virtual/powercap', 'tmpfs'],
    ].filter(([p]) => existsSync(p!)); // same kernel as the pod's
    const expected = [
      '/ overlay',
      '/dev tmpfs',
      '/dev/pts devpts',
      '/dev/shm tmpfs',
      '/proc proc',
      '/sys sysfs',
      '/proc/bus proc',
      '/proc/fs proc',
      '/proc/irq proc',
      '/proc/sys proc',
      ...optional.map(([p, fs]) => `${p} ${fs}`),
      ...cgroupView(),
    ].sort();
    t.deepEqual(seen, expected);
  });
});

test.serial('a non-root app keeps only the bounding set', async (t) => {
  const dir = makePod([
    sh('nonroot', 'id -u; id -g; id -G; grep -E "^Cap(Eff|Bnd):" /proc/self/status; echo $HOME', {
      user: 'user',
      group: 'user',
      supplementaryGIDs: [10],
    }),
  ]);
  await cleanPod(t, dir, async () => {
    const r = await runPod(dir);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    t.deepEqual(lines.slice(0, 3), ['1000', '1000', '1000 10']);
    t.is(lines[3], 'CapEff:\t0000000000000000');
    t.is(lines[4], `CapBnd:\t${RETAIN_MASK}`);
    t.is(lines[5], '/home/user');
  });
});

test.serial('stop on a sleeping pod: 143; enter sees the pod and returns its command code', async (t) => {
  const m = marker();
  const dir = makePod([{ name: 'web', exec: ['/bin/sleep', `1000.${m}`] }]);
  await cleanPod(t, dir, async () => {
    const pod = await startPod(dir, { hostname: 'entered' });
    t.truthy(await waitForPid(dir, pod), 'the pid file appears');
    const app = await waitForProcess(`1000.${m}`);
    t.truthy(app, "the app's host pid");
    const podPidNs = readlinkSync(`/proc/${app}/ns/pid`);
    t.not(podPidNs, readlinkSync('/proc/self/ns/pid'));

    const e = await stage1([
      'enter', '--pod-dir', dir, '--app', 'web', '--',
      'sh', '-c', 'hostname; readlink /proc/self/ns/pid; id -u; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; pwd; exit 7',
    ]);
    t.is(e.code, 7, e.stderr);
    t.deepEqual(e.stdout.trim().split('\n'), [
      'entered',
      podPidNs,
      '0',
      `CapEff:\t${RETAIN_MASK}`,
      'NoNewPrivs:\t1',
      'Seccomp:\t2',
      '/',
    ]);
    const killed = await stage1(['enter', '--pod-dir', dir, '--app', 'web', '--', 'sh', '-c', 'kill -KILL $$']);
    t.is(killed.code, 137, 'a command killed by a signal is 128+signal');
    const missing = await stage1(['enter', '--pod-dir', dir, '--app', 'web', '--', '/bin/nope']);
    t.is(missing.code, 254);
    t.regex(missing.stderr, /exec "\/bin\/nope": no such file in the image/);
    const noApp = await stage1(['enter', '--pod-dir', dir, '--app', 'db', '--', 'true']);
    t.is(noApp.code, 254);
    t.regex(noApp.stderr, /no app "db"/);

    const early = await stage1(['gc', '--pod-dir', dir]);
    t.is(early.code, 254, 'gc refuses a running pod');
    t.regex(early.stderr, /pod is still running/);

    const s = await stage1(['stop', '--pod-dir', dir]);
    t.is(s.code, 0, s.stderr);
    const r = await pod.done;
    t.is(r.code, 143, r.stderr);
    t.is(appStatus(dir, 'web'), '143');
    const again = await stage1(['stop', '--pod-dir', dir]);
    t.is(again.code, 254, 'stopping an exited pod is an error');
    t.regex(again.stderr, /not running/);
  });
});

test.serial('--net and --dns: the network namespace, loopback, /etc/hosts and /etc/resolv.conf', async (t) => {
  const probe = 'readlink /proc/self/ns/net; cat /sys/class/net/lo/flags; cat /etc/hosts; echo ---; cat /etc/resolv.conf || echo no-resolv';
  const hostResolv = existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '';
  const run = async (o: { net: 'none' | 'host'; dns: 'default' | 'host' | 'none' }): Promise<string[]> => {
    const dir = makePod([sh('net', probe)]);
    let out = '';
    await cleanPod(t, dir, async () => {
      const r = await runPod(dir, { ...o, hostname: 'netpod' });
      t.is(r.code, 0, r.stderr);
      out = r.stdout;
    });
    return out.split('---\n');
  };
  const hostNet = readlinkSync('/proc/self/ns/net');
  const [own = '', ownResolv] = await run({ net: 'none', dns: 'default' });
  const [netns, loFlags, ...hosts] = own.trim().split('\n');
  t.not(netns, hostNet, 'a network namespace of its own');
  t.is(Number(loFlags) & 1, 1, 'lo is up');
  t.deepEqual(hosts, ['127.0.0.1\tlocalhost localhost.localdomain netpod', '::1\tlocalhost ip6-localhost ip6-loopback netpod']);
  t.is(ownResolv, hostResolv, "default: the image has none, so the host's");
  const [shared = '', hostCopy] = await run({ net: 'host', dns: 'host' });
  t.is(shared.split('\n')[0], hostNet, '--net host shares the host network namespace');
  t.is(hostCopy, hostResolv);
  const [, none] = await run({ net: 'none', dns: 'none' });
  t.regex(none ?? '', /no-resolv/, '--dns none leaves the image without one');
  t.false(existsSync(join(busyboxTreeStore(), TREE_STORE_ID, 'rootfs', 'etc', 'hosts')), 'the tree store is untouched');
});

test.serial('stop --force kills the whole pod at once', async (t) => {
  const dir = makePod([sh('web', 'trap "" TERM; sleep 1000')]);
  await cleanPod(t, dir, async () => {
    const pod = await startPod(dir);
    t.truthy(await waitForPid(dir, pod));
    const s = await stage1(['stop', '--pod-dir', dir, '--force']);
    t.is(s.code, 0, s.stderr);
    t.is((await pod.done).code, 137);
  });
});

test.serial('multi-app: one app exits 5, the others are stopped, the pod exits 5', async (t) => {
  const dir = makePod([
    sh('failing', 'sleep 0.2; exit 5'),
    { name: 'sleeper', exec: ['/bin/sleep', '1000'] },
    sh('stubborn', 'trap "" TERM; sleep 1000'),
  ]);
  await cleanPod(t, dir, async () => {
    const r = await runPod(dir, { stopGrace: 0.5 });
    t.is(r.code, 5, r.stderr);
    t.is(appStatus(dir, 'failing'), '5');
    t.is(appStatus(dir, 'sleeper'), '143', 'stopped by SIGTERM');
    t.is(appStatus(dir, 'stubborn'), '137', 'killed after the grace period');
  });
});

test.serial('SIGTERM to stage1 stops the pod gracefully', async (t) => {
  const dir = makePod([{ name: 'web', exec: ['/bin/sleep', '1000'] }]);
  await cleanPod(t, dir, async () => {
    const pod = await startPod(dir);
    t.truthy(await waitForPid(dir, pod));
    pod.child.kill('SIGTERM');
    t.is((await pod.done).code, 143);
    t.is(appStatus(dir, 'web'), '143');
  });
});

for (const victim of ['stage1', 'pid1', 'app'] as const) {
  test.serial(`kill -9 of ${victim} at random moments leaves nothing running or mounted`, async (t) => {
    for (let i = 0; i < 8; i++) {
      const m = marker();
      const dir = makePod([{ name: 'web', exec: ['/bin/sleep', `1000.${m}`] }]);
      await cleanPod(t, dir, async () => {
        const pod = await startPod(dir);
        if (victim === 'stage1') {
          await new Promise((r) => setTimeout(r, Math.random() * 30));
          pod.child.kill('SIGKILL');
          const r = await pod.done;
          t.is(r.signal, 'SIGKILL');
        } else {
          const pid1 = await waitForPid(dir, pod);
          const app = await waitForProcess(`1000.${m}`);
          if (pid1 === undefined || app === undefined) {
            t.fail(`the pod did not come up: pid ${pid1}, app ${app}`);
            return;
          }
          await new Promise((r) => setTimeout(r, Math.random() * 20));
          process.kill(victim === 'pid1' ? pid1 : app, 'SIGKILL');
          const r = await pod.done;
          t.is(r.code, 137, r.stderr);
          if (victim === 'app') t.is(appStatus(dir, 'web'), '137');
        }
        t.deepEqual(await waitNoProcess(`1000.${m}`), [], 'the app is gone');
      });
    }
  });
}

const badInput: [string, AppSpec, RegExp][] = [
  ['a missing exec', { name: 'web', exec: ['/bin/nope'] }, /app "web": exec "\/bin\/nope": no such file in the image/],
  ['a non-executable exec', { name: 'web', exec: ['/etc/passwd'] }, /app "web": exec "\/etc\/passwd": \/etc\/passwd is not an executable file/],
  ['an exec not in PATH', { name: 'web', exec: ['nope'] }, /app "web": exec "nope": not found in PATH=/],
  ['a user the image does not know', { name: 'web', exec: ['/bin/true'], user: 'alice' }, /app "web": user "alice" not found in the image's \/etc\/passwd/],
  ['a group the image does not know', { name: 'web', exec: ['/bin/true'], group: 'staff' }, /app "web": group "staff" not found in the image's \/etc\/group/],
  ['a missing working directory', { name: 'web', exec: ['/bin/true'], workingDirectory: '/srv' }, /app "web": working directory "\/srv" does not exist in the image/],
];
for (const [what, app, message] of badInput) {
  test.serial(`bad input: ${what} is stage1's failure (254) with a clear message`, async (t) => {
    const dir = makePod([{ name: 'ok', exec: ['/bin/sleep', '1000'] }, app]);
    await cleanPod(t, dir, async () => {
      const r = await runPod(dir);
      t.is(r.code, 254);
      t.regex(r.stderr, message);
      t.is(appStatus(dir, 'ok'), undefined, 'no app was started');
      t.false(existsSync(join(dir, 'pid')));
    });
  });
}

test.serial('bad input: a pod directory that is not locked', async (t) => {
  const dir = makePod([{ name: 'web', exec: ['/bin/true'] }]);
  const before = mountinfo();
  const fd = openDir(dir);
  let r: Result;
  try {
    r = await spawnStage1(initArgs(dir), fd).done;
  } finally {
    closeFd(fd);
  }
  t.is(r.code, 254);
  t.regex(r.stderr, /pod directory is not locked/);
  const noFd = await spawnStage1(initArgs(dir)).done;
  t.is(noFd.code, 254);
  t.regex(noFd.stderr, /pod directory is not locked: RKT_LOCK_FD is not set to a file descriptor/);
  t.is(mountinfo(), before);
  t.false(existsSync(join(dir, 'status')), 'nothing was done to the pod directory');
});

test.serial('usage errors exit 254', async (t) => {
  const r = await stage1(['init', '--pod-dir']);
  t.is(r.code, 254);
  t.regex(r.stderr, /--pod-dir needs a value/);
  const h = await stage1(['--help']);
  t.is(h.code, 0);
  t.regex(h.stdout, /usage: podlog-stage1 init/);
});

test.serial('--ready-fd: the pid once every app has exec\'d, the same as <pod>/pid; enter and stop work at once', async (t) => {
  const m = marker();
  const dir = makePod([
    { name: 'web', exec: ['/bin/sleep', `1000.${m}`] },
    { name: 'db', exec: ['/bin/sleep', `2000.${m}`] },
  ]);
  await cleanPod(t, dir, async () => {
    const pod = await startPod(dir, { ready: true });
    const ready = await readReady(pod);
    t.regex(ready, /^[1-9]\d*\n$/, 'decimal pid and a newline');
    t.is(readFileSync(join(dir, 'pid'), 'utf8'), ready.trim(), 'the pid file says the same');
    t.is(pidsMatching(`000.${m}`).length, 2, 'both apps run their own programs already');
    const e = await stage1(['enter', '--pod-dir', dir, '--app', 'db', '--', 'sh', '-c', 'exit 9']);
    t.is(e.code, 9, e.stderr);
    const s = await stage1(['stop', '--pod-dir', dir]);
    t.is(s.code, 0, s.stderr);
    t.is((await pod.done).code, 143);
  });
});

test.serial('--ready-fd is closed empty when set-up fails', async (t) => {
  const dir = makePod([{ name: 'web', exec: ['/bin/nope'] }]);
  await cleanPod(t, dir, async () => {
    const pod = await startPod(dir, { ready: true });
    t.is(await readReady(pod), '', 'nothing written');
    const r = await pod.done;
    t.is(r.code, 254);
    t.regex(r.stderr, /exec "\/bin\/nope": no such file in the image/);
    t.false(existsSync(join(dir, 'pid')), 'no pid file');
  });
});

test.serial('--ready-fd is closed empty, at once, when an app cannot be exec\'d', async (t) => {
  // A file that passes stage1's checks (regular, executable) but that execve refuses.
  const store = makeTreeStore(tmpdir());
  writeFileSync(join(store, TREE_STORE_ID, 'rootfs', 'bad-interpreter'), '#!/nonexistent\n', { mode: 0o755 });
  // "At once" shows only if the other app survives the SIGTERM that the failure brings, which needs
  // its trap in place first: a race with the failing exec, so try until the trap wins once.
  let outlived = false;
  for (let i = 0; i < 20 && !outlived; i++) {
    const dir = makePod([sh('stubborn', 'trap "" TERM; sleep 1000'), { name: 'web', exec: ['/bad-interpreter'] }]);
    await cleanPod(t, dir, async () => {
      const pod = await startPod(dir, { ready: true, treeStore: store, stopGrace: 1 });
      const ready = await readReady(pod);
      const stubbornAtClose = appStatus(dir, 'stubborn');
      t.is(ready, '', 'nothing written');
      const r = await pod.done;
      t.is(r.code, 254, r.stderr);
      t.regex(r.stderr, /bad-interpreter.*execve: No such file or directory/);
      t.is(appStatus(dir, 'web'), '254');
      t.false(existsSync(join(dir, 'pid')), 'no pid file');
      if (appStatus(dir, 'stubborn') === '137') {
        outlived = true;
        t.log(`the other app outlived the SIGTERM on try ${i + 1}`);
        t.is(stubbornAtClose, undefined, 'closed while the other app still ran, not when the pod ended');
      }
    });
  }
  t.true(outlived, 'the other app outlived the SIGTERM once in 20 tries');
});

test.serial('--ready-fd must be an open pipe or socket above stdio', async (t) => {
  const dir = makePod([{ name: 'web', exec: ['/bin/true'] }]);
  const before = mountinfo();
  const lock = await lockDir(dir);
  const file = openSync(join(dir, 'pod'), 'r');
  try {
    const regular = await spawnStage1(initArgs(dir, { ready: true }), lock, [file]).done;
    t.is(regular.code, 254);
    t.regex(regular.stderr, new RegExp(`--ready-fd ${READY_FD}: not a pipe or a socket`));
    const closed = await spawnStage1(initArgs(dir, { ready: true }), lock).done;
    t.is(closed.code, 254);
    t.regex(closed.stderr, new RegExp(`--ready-fd ${READY_FD}: not an open file descriptor`));
    const stdio = await spawnStage1([...initArgs(dir), '--ready-fd', '1'], lock).done;
    t.is(stdio.code, 254);
    t.regex(stdio.stderr, /--ready-fd 1: must be above 2/);
  } finally {
    closeSync(file);
    closeFd(lock);
  }
  t.is(mountinfo(), before);
  t.false(existsSync(join(dir, 'status')), 'nothing was done to the pod directory');
});

test.serial('--parent-pid: SIGKILL of the parent ends every process of the pod and releases the lock', async (t) => {
  const m = marker();
  const dir = makePod([{ name: 'web', exec: ['/bin/sleep', `1000.${m}`] }]);
  await cleanPod(t, dir, async () => {
    const wrapper = await startPodUnderShell(dir, { ready: true });
    const pid1 = Number(await readReady(wrapper));
    t.true(pid1 > 0, 'the pod came up');
    const app = pidsMatching(`1000.${m}`);
    t.is(app.length, 1, 'the app runs');
    const supervisor = parentPid(pid1);
    t.is(parentPid(supervisor), wrapper.child.pid ?? -1, "stage1 is the shell's child");
    t.true(isLocked(dir));

    wrapper.child.kill('SIGKILL');
    t.is((await wrapper.done).signal, 'SIGKILL');
    const end = Date.now() + 5000;
    const pods = [supervisor, pid1, ...app];
    while (pods.some(isAlive) && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    t.deepEqual(pods.filter(isAlive), [], 'supervisor, PID 1 and the app are gone');
    t.false(isLocked(dir), 'the pod lock is released');
  });
});

test.serial('--parent-pid that is not stage1\'s parent is refused before anything is done', async (t) => {
  const dir = makePod([{ name: 'web', exec: ['/bin/true'] }]);
  await cleanPod(t, dir, async () => {
    const wrong = await runPod(dir, { parentPid: process.ppid });
    t.is(wrong.code, 254);
    t.regex(wrong.stderr, new RegExp(`--parent-pid ${process.ppid}: stage1's parent is process ${process.pid}`));
    t.false(existsSync(join(dir, 'status')), 'nothing was done to the pod directory');
    const right = await runPod(dir, { parentPid: process.pid });
    t.is(right.code, 0, right.stderr);
  });
});

test.serial('the overlay directories must exist as plain directories: else a clear error and no mount', async (t) => {
  const dir = makePod([{ name: 'web', exec: ['/bin/true'] }]);
  await cleanPod(t, dir, async () => {
    const upper = join(dir, overlayDir('upper', 'web'));
    rmSync(upper, { recursive: true });
    const missing = await runPod(dir);
    t.is(missing.code, 254);
    t.true(missing.stderr.includes(`app "web": overlay upper directory ${upper} is missing`), missing.stderr);
    t.false(existsSync(join(dir, 'status')), 'nothing was done to the pod directory');

    symlinkSync(join(dir, overlayDir('work', 'web')), upper);
    const link = await runPod(dir);
    t.is(link.code, 254);
    t.true(link.stderr.includes(`app "web": overlay upper directory ${upper} is a symlink`), link.stderr);
  });
});
