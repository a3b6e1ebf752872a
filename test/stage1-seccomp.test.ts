/**
 * podlog-stage1's seccomp filters and the app process's security isolators, for real, as root: pods
 * built like stage0 builds them, with the appc isolators stage0 writes (docs/stage1.md, "seccomp").
 * Unlike rkt's fixed list, each app's filter comes from its own isolators.
 */
import test, { type ExecutionContext } from 'ava';
import {
  appStatus,
  cleanupStage1Dirs,
  makePod,
  mountinfo,
  runPod,
  stage1,
  startPod,
  waitForPid,
  type AppSpec,
  type InitOptions,
  type Result,
} from './helpers/stage1-pod.js';

type Isolators = NonNullable<AppSpec['isolators']>;

const removeSet = (set: string[], errno?: string): Isolators => [
  { name: 'os/linux/seccomp-remove-set', value: { set, ...(errno ? { errno } : {}) } },
];
const retainSet = (set: string[], errno?: string): Isolators => [
  { name: 'os/linux/seccomp-retain-set', value: { set, ...(errno ? { errno } : {}) } },
];
const withSysAdmin: Isolators = [{ name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_SYS_ADMIN'] } }];

/** Runs a one-app pod whose app runs `script`, checking that the host mount table is left as it was. */
async function run(t: ExecutionContext, script: string, isolators: Isolators = [], o: InitOptions = {}): Promise<Result> {
  const dir = makePod([{ name: 'app', exec: ['/bin/sh', '-c', script], isolators }]);
  const before = mountinfo();
  const r = await runPod(dir, o);
  t.is(mountinfo(), before, 'the host mount table is unchanged');
  const gc = await stage1(['gc', '--pod-dir', dir]);
  t.is(gc.code, 0, gc.stderr);
  return r;
}

const status = (keys: string): string => `grep -E "^(${keys}):" /proc/self/status`;

test.after.always(cleanupStage1Dirs);

test.serial('a remove set fails its syscalls with its errno, EPERM when it names none (not SIGSYS, as rkt did)', async (t) => {
  const mkdir = 'mkdir /made 2>&1; echo "mkdir $?"; touch /touched && echo touched';
  const eperm = await run(t, mkdir, removeSet(['mkdir', 'mkdirat'], 'EPERM'));
  t.is(eperm.code, 0, eperm.stderr);
  t.deepEqual(eperm.stdout.trim().split('\n'), ["mkdir: can't create directory '/made': Operation not permitted", 'mkdir 1', 'touched']);

  const enosys = await run(t, mkdir, removeSet(['mkdir', 'mkdirat'], 'ENOSYS'));
  t.regex(enosys.stdout, /'\/made': Function not implemented\nmkdir 1\ntouched/);

  const unnamed = await run(t, mkdir, removeSet(['mkdir', 'mkdirat']));
  t.deepEqual(unnamed.stdout.trim().split('\n'), eperm.stdout.trim().split('\n'), 'the app sees EPERM and goes on');
});

test.serial('the default filter denies namespaces and mount even with CAP_SYS_ADMIN; --disable-seccomp has no filter', async (t) => {
  const script = [
    'unshare -U true 2>&1; echo "userns $?"',
    'unshare -n true 2>&1; echo "netns $?"',
    'mkdir -p /m; mount -t tmpfs none /m 2>&1; echo "mount $?"',
    status('Seccomp'),
  ].join('; ');
  const filtered = await run(t, script, withSysAdmin);
  t.is(filtered.code, 0, filtered.stderr);
  t.deepEqual(filtered.stdout.trim().split('\n'), [
    'unshare: unshare(0x10000000): Operation not permitted',
    'userns 1',
    'unshare: unshare(0x40000000): Operation not permitted',
    'netns 1',
    'mount: permission denied (are you root?)', // busybox's words for EPERM
    'mount 1',
    'Seccomp:\t2',
  ]);

  const open = await run(t, script, withSysAdmin, { disableSeccomp: true });
  t.is(open.code, 0, open.stderr);
  t.regex(open.stdout, /\nnetns 0\n/, 'the capability alone allows a network namespace');
  t.regex(open.stdout, /\nmount 0\nSeccomp:\t0\n$/, 'and a mount, in the pod');
});

test.serial('a retain set of @podlog/default-whitelist runs a shell and its commands; others get the errno', async (t) => {
  const ok = await run(t, 'ls / >/dev/null && date >/dev/null && sleep 0.01 && echo $(( 6 * 7 ))', retainSet(['@podlog/default-whitelist']));
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, '42\n');

  const denied = await run(t, 'swapoff /nothing 2>&1; echo "swapoff $?"', retainSet(['@podlog/default-whitelist'], 'EACCES'));
  t.is(denied.stdout, "swapoff: /nothing: Permission denied\nswapoff 1\n");
});

test.serial('no-new-privileges: set by default and when true, unset when false, with the filter still loaded', async (t) => {
  const keys = status('NoNewPrivs|Seccomp');
  const byDefault = await run(t, keys);
  t.is(byDefault.stdout, 'NoNewPrivs:\t1\nSeccomp:\t2\n', byDefault.stderr);
  const on = await run(t, keys, [{ name: 'os/linux/no-new-privileges', value: true }]);
  t.is(on.stdout, 'NoNewPrivs:\t1\nSeccomp:\t2\n', on.stderr);
  // Loaded before the capabilities are dropped: rkt's old whitelist lacks close_range, which stage1
  // calls after loading it, and the app still starts.
  const off = await run(t, `${keys}; mkdir -p /m; mount -t tmpfs none /m 2>&1`, [
    { name: 'os/linux/no-new-privileges', value: false },
    ...retainSet(['@rkt/default-whitelist'], 'ENOSYS'),
  ]);
  t.is(off.stdout, 'NoNewPrivs:\t0\nSeccomp:\t2\nmount: mounting none on /m failed: Function not implemented\n', off.stderr);
});

// Raised only: lowering it needs CAP_SYS_RESOURCE, which this machine's root lacks (stage1 writes
// it while it still holds every capability it has).
test.serial('oom-score-adj is the app process’s own', async (t) => {
  const dir = makePod([
    { name: 'set', exec: ['/bin/sh', '-c', 'cat /proc/self/oom_score_adj'], isolators: [{ name: 'os/linux/oom-score-adj', value: 500 }] },
    { name: 'unset', exec: ['/bin/sh', '-c', 'sleep 0.2; cat /proc/self/oom_score_adj'] },
  ]);
  const r = await runPod(dir);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '500\n0\n');
  t.is((await stage1(['gc', '--pod-dir', dir])).code, 0);
});

test.serial('enter applies the entered app’s filter', async (t) => {
  const dir = makePod([{ name: 'app', exec: ['/bin/sleep', '1000'], isolators: removeSet(['mkdir', 'mkdirat'], 'ENOSYS') }]);
  const pod = await startPod(dir);
  try {
    t.truthy(await waitForPid(dir, pod));
    const e = await stage1(['enter', '--pod-dir', dir, '--app', 'app', '--', 'sh', '-c', 'mkdir /e 2>&1; echo "mkdir $?"']);
    t.is(e.code, 0, e.stderr);
    t.is(e.stdout, "mkdir: can't create directory '/e': Function not implemented\nmkdir 1\n");
  } finally {
    await stage1(['stop', '--pod-dir', dir]);
    await pod.done;
  }
  t.is(appStatus(dir, 'app'), '143');
  t.is((await stage1(['gc', '--pod-dir', dir])).code, 0);
});

test.serial('a bad isolator stops the pod before it starts, naming it', async (t) => {
  const unknown = await run(t, 'true', removeSet(['mkdir', 'nosuchcall']));
  t.is(unknown.code, 254);
  t.regex(unknown.stderr, /app "app": isolator os\/linux\/seccomp-remove-set: unknown on this architecture: nosuchcall/);
  const errno = await run(t, 'true', retainSet(['@rkt/default-whitelist'], 'EWHAT'));
  t.regex(errno.stderr, /unknown errno "EWHAT"/);
  const both = await run(t, 'true', [...removeSet(['mkdir']), ...retainSet(['read'])]);
  t.regex(both.stderr, /at most one seccomp isolator/);
  const oom = await run(t, 'true', [{ name: 'os/linux/oom-score-adj', value: 1001 }]);
  t.regex(oom.stderr, /isolator os\/linux\/oom-score-adj: 1001 is not an integer from -1000 to 1000/);
  const nnp = await run(t, 'true', [{ name: 'os/linux/no-new-privileges', value: 'yes' }]);
  t.regex(nnp.stderr, /isolator os\/linux\/no-new-privileges: "yes" is not a boolean/);
});
