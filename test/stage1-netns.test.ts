/**
 * podlog-stage1's kept network namespace, for real, as root: `netns create` mounts a new network
 * namespace on `<pod>/netns`, `init --net netns` runs the pod in it, `netns remove` takes it away.
 * Each test runs stage1 inside a network and mount namespace of its own (`unshare --net --mount
 * --propagation private`, as test/helpers/netns.ts makes them, held here by a sleeping process and
 * entered with nsenter, since a runner module of inNetns could not be a test file): the bind mounts
 * stage1 makes are in that mount namespace and vanish with it, and the test checks that its own mount
 * table is unchanged.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readlinkSync, rmdirSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { closeFd } from '../src/native.js';
import { must } from './helpers/netns.js';
import {
  appStatus,
  cleanupStage1Dirs,
  initArgs,
  lockPod,
  makePod,
  mountinfo,
  pidsMatching,
  spawnStage1,
  stage1,
  waitForPid,
  type Result,
  type Running,
} from './helpers/stage1-pod.js';

test.after.always(cleanupStage1Dirs);

interface Sandbox {
  /** The command prefix that runs a program inside (spawnStage1's `via`). */
  via: string[];
  /** Runs a command inside; it must succeed: its stdout. */
  must: (cmd: string, args: string[]) => string;
}

/** Runs `fn` with a sandbox that is killed after, and checks that the test's mount table is untouched. */
async function inSandbox(t: ExecutionContext, fn: (box: Sandbox) => Promise<void>): Promise<void> {
  const before = mountinfo();
  const holder = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--mount', '--propagation', 'private', 'sleep', '1000'], { stdio: 'ignore' });
  const pid = holder.pid;
  if (pid === undefined) throw new Error('cannot start the sandbox');
  const gone = new Promise<void>((resolve) => holder.on('exit', () => resolve()));
  try {
    const mine = readlinkSync('/proc/self/ns/mnt');
    for (let i = 0; readlinkSync(`/proc/${pid}/ns/mnt`) === mine; i++) {
      if (i > 500) throw new Error(`the sandbox ${pid} did not enter a mount namespace of its own`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const via = ['nsenter', `--target=${pid}`, '--net', '--mount', '--'];
    await fn({ via, must: (cmd, args) => must(via[0]!, [...via.slice(1), cmd, ...args]) });
  } finally {
    process.kill(pid, 'SIGKILL');
    await gone;
  }
  t.is(mountinfo(), before, "the test's own mount table is unchanged");
}

/** Runs a stage1 subcommand inside the sandbox. */
const stage1In = (box: Sandbox, args: string[]): Promise<Result> => spawnStage1(args, undefined, [], box.via).done;

const netns = (box: Sandbox, dir: string, action: 'create' | 'remove'): Promise<Result> => stage1In(box, ['netns', '--pod-dir', dir, action]);

/** The mounts of the sandbox on `<dir>/netns`, as `<fstype>` each. */
const keptMounts = (box: Sandbox, dir: string): string[] =>
  box
    .must('cat', ['/proc/self/mountinfo'])
    .split('\n')
    .filter((l) => l.split(' ')[4] === join(dir, 'netns'))
    .map((l) => l.split(' - ')[1]!.split(' ')[0]!);

/** `ip -j link` in the kept namespace: name and flags of each link. */
const keptLinks = (box: Sandbox, dir: string): Array<{ ifname: string; flags: string[] }> =>
  (JSON.parse(box.must('nsenter', [`--net=${join(dir, 'netns')}`, 'ip', '-j', 'link'])) as Array<{ ifname: string; flags: string[] }>).map(({ ifname, flags }) => ({ ifname, flags }));

/** The kept namespace as /proc/PID/ns/net names it in a process inside it. */
const keptNsName = (box: Sandbox, dir: string): string => `net:[${box.must('stat', ['-c', '%i', join(dir, 'netns')]).trim()}]`;

/** Locks the pod and starts `init --net netns` inside the sandbox; the lock fd is closed when stage1 has exited. */
async function startInNetns(box: Sandbox, dir: string): Promise<Running> {
  const fd = await lockPod(dir);
  const r = spawnStage1([...initArgs(dir), '--net', 'netns'], fd, [], box.via);
  r.done.finally(() => closeFd(fd)).catch(() => {});
  return r;
}

/** Kills what is left of a pod whose test failed half-way (its PID 1 dies with its supervisor). */
const killLeftovers = (dir: string): void => {
  for (const pid of pidsMatching(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
};

test.serial('netns create keeps a new namespace with lo up on <pod>/netns, once; gc names it; remove takes it away, once', async (t) => {
  const dir = makePod([{ name: 'a', exec: ['/bin/true'] }]);
  const file = join(dir, 'netns');
  await inSandbox(t, async (box) => {
    const created = await netns(box, dir, 'create');
    t.deepEqual(created, { code: 0, signal: null, stdout: '', stderr: '' }, 'success prints nothing');
    t.deepEqual(keptMounts(box, dir), ['nsfs'], 'one nsfs mount on <pod>/netns, in the caller\'s mount namespace');
    t.deepEqual(keptLinks(box, dir), [{ ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'] }], 'only lo, and up');
    const st = statSync(file);
    t.true(st.isFile() && st.size === 0 && (st.mode & 0o777) === 0o644, 'under the mount: an empty file, mode 0644');
    const ns = keptNsName(box, dir);

    const again = await netns(box, dir, 'create');
    t.is(again.code, 0, again.stderr);
    t.deepEqual(keptMounts(box, dir), ['nsfs'], 'a second create mounts nothing more');
    t.is(keptNsName(box, dir), ns, 'and keeps the same namespace');

    const gc = await stage1In(box, ['gc', '--pod-dir', dir]);
    t.is(gc.code, 254);
    t.is(gc.stderr.trim(), `podlog-stage1: gc: the pod's network namespace is still kept at ${file}: its networks must be detached first`);

    const removed = await netns(box, dir, 'remove');
    t.deepEqual(removed, { code: 0, signal: null, stdout: '', stderr: '' });
    t.deepEqual(keptMounts(box, dir), [], 'unmounted');
    t.false(existsSync(file), 'and the file removed');
    const twice = await netns(box, dir, 'remove');
    t.is(twice.code, 0, `nothing there: ${twice.stderr}`);
    const gcAfter = await stage1In(box, ['gc', '--pod-dir', dir]);
    t.is(gcAfter.code, 0, gcAfter.stderr);
  });
});

test.serial('netns create refuses a <pod>/netns that is a symlink or a directory, and mounts nothing', async (t) => {
  const dir = makePod([{ name: 'a', exec: ['/bin/true'] }]);
  const file = join(dir, 'netns');
  const target = join(dir, 'elsewhere');
  mkdirSync(target);
  await inSandbox(t, async (box) => {
    symlinkSync(target, file);
    for (const action of ['create', 'remove'] as const) {
      const r = await netns(box, dir, action);
      t.is(r.code, 254, action);
      t.is(r.stderr.trim(), `podlog-stage1: ${file} is a symlink, not a regular file`);
    }
    t.is(readlinkSync(file), target, 'the symlink is left as it is');
    unlinkSync(file);
    mkdirSync(file);
    const r = await netns(box, dir, 'create');
    t.is(r.code, 254);
    t.is(r.stderr.trim(), `podlog-stage1: ${file} is a directory, not a regular file`);
    rmdirSync(file);
    t.false(box.must('cat', ['/proc/self/mountinfo']).includes(` ${dir}/`), 'nothing is mounted under the pod directory');
  });
});

test.serial('init --net netns without a kept namespace: 254 naming the path, no app started', async (t) => {
  const dir = makePod([{ name: 'a', exec: ['/bin/true'] }]);
  await inSandbox(t, async (box) => {
    const r = await (await startInNetns(box, dir)).done;
    t.is(r.code, 254);
    t.is(
      r.stderr.trim(),
      `podlog-stage1: the pod's network namespace ${join(dir, 'netns')} is missing: stage0 creates it when it attaches the pod's networks`,
    );
    t.is(appStatus(dir, 'a'), undefined, 'no app ran');
    t.false(existsSync(join(dir, 'pid')));
  });
});

test.serial("a pod started with --net netns is in the kept namespace and sees its links, as enter does; the namespace outlives the pod", async (t) => {
  const probe = 'readlink /proc/self/ns/net; cat /sys/class/net/lo/flags; cat /proc/net/dev';
  // The stop may come while the probe runs: the trap lets it finish first (a shell runs a trap once its command is done).
  const dir = makePod([{ name: 'a', exec: ['/bin/sh', '-c', `trap "exit 143" TERM; ${probe}; exec sleep 1000`] }]);
  const links = (out: string): string[] => out.split('\n').slice(4).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
  try {
    await inSandbox(t, async (box) => {
      t.is((await netns(box, dir, 'create')).code, 0);
      // dummy interfaces are not built into this machine's kernel; a bridge is a link as good.
      box.must('nsenter', [`--net=${join(dir, 'netns')}`, 'ip', 'link', 'add', 'probe0', 'type', 'bridge']);
      const ns = keptNsName(box, dir);

      const pod = await startInNetns(box, dir);
      t.truthy(await waitForPid(dir, pod), 'the pod comes up');
      // From the test's own namespaces: enter joins PID 1's through a pidfd.
      const entered = await stage1(['enter', '--pod-dir', dir, '--app', 'a', '--', 'sh', '-c', probe]);
      t.is(entered.code, 0, entered.stderr);
      t.is((await stage1(['stop', '--pod-dir', dir])).code, 0);
      const r = await pod.done;
      t.is(r.code, 143, r.stderr);

      for (const [who, out] of [['the app', r.stdout], ['enter', entered.stdout]]) {
        const [name, loFlags] = out!.split('\n');
        t.is(name, ns, `${who} runs in the kept namespace`);
        t.is(Number(loFlags) & 1, 1, `${who}: lo is up`);
        t.deepEqual(links(out!), ['lo', 'probe0'], `${who}: /proc/net/dev lists the namespace's links`);
      }
      t.deepEqual(
        keptLinks(box, dir).map((l) => l.ifname),
        ['lo', 'probe0'],
        'after the pod exited the namespace is still kept, with its links (CNI DEL can still run)',
      );
      t.is((await netns(box, dir, 'remove')).code, 0);
      t.deepEqual(keptMounts(box, dir), []);
      const gc = await stage1In(box, ['gc', '--pod-dir', dir]);
      t.is(gc.code, 0, gc.stderr);
    });
  } finally {
    killLeftovers(dir);
  }
});
