/**
 * Mutable pods at the stage1 level (docs/stage1.md, "Mutable pods"): `init --mutable` runs a pod with
 * no app, and apps come and go through `app-add`, `app-start`, `app-stop` and `app-rm` while it runs,
 * the pod manifest rewritten as stage0 rewrites it before each `app-add`. Every test checks that
 * stage1 left no mount, process or cgroup behind.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { busyboxRootfs } from './helpers/fixtures.js';
import {
  appStatus,
  busyboxTreeStore,
  cleanPod as clean,
  cleanupStage1Dirs,
  isAlive,
  makePod,
  overlayDir,
  readReady,
  setPodApps,
  stage1,
  startPod,
  type AppSpec,
  type Result,
} from './helpers/stage1-pod.js';

test.after.always(cleanupStage1Dirs);

const sh = (script: string): string[] => ['/bin/sh', '-c', script];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `app-VERB` on the pod's app. */
const app = (verb: 'add' | 'start' | 'stop' | 'rm', dir: string, name: string, ...flags: string[]): Promise<Result> =>
  stage1([`app-${verb}`, '--pod-dir', dir, '--app', name, ...(verb === 'add' ? ['--tree-store', busyboxTreeStore()] : []), ...flags]);
/** Runs `app-VERB` and checks it exits 0. */
const ok = async (t: ExecutionContext, verb: 'add' | 'start' | 'stop' | 'rm', dir: string, name: string, ...flags: string[]): Promise<void> => {
  const r = await app(verb, dir, name, ...flags);
  t.is(r.code, 0, `app-${verb} ${name}: ${r.stderr}`);
};

const hookCode = (dir: string, name: string, hook: string): string | undefined => {
  const p = join(dir, 'hooks', name, hook);
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
};
/** What the app wrote at `path` in its root (its overlay upper dir keeps it). */
const wrote = (dir: string, name: string, path: string): string | undefined => {
  const p = join(dir, overlayDir('upper', name), path);
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
};
/** The mount points in the pod's mount namespace below the app's root. */
const appMounts = (pid1: number, name: string): string[] =>
  readFileSync(`/proc/${pid1}/mountinfo`, 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === `/opt/stage2/${name}/rootfs` || m.startsWith(`/opt/stage2/${name}/`));
/** The pod's PID 1's children (host pids): its apps and handlers. */
const children = (pid1: number): number[] =>
  readFileSync(`/proc/${pid1}/task/${pid1}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
/** The app's cgroup directories, from the pod's. */
const appCgroups = (dir: string, name: string): string[] =>
  (JSON.parse(readFileSync(join(dir, 'cgroups.json'), 'utf8')) as { dirs: string[] }).dirs.map((d) => join(d, name));

async function until(t: ExecutionContext, what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) {
      t.fail(`timed out waiting for ${what}`);
      return;
    }
    await sleep(10);
  }
}

/** Starts a mutable pod with no app and waits until it is up; returns its PID 1 and its end. */
async function sandbox(t: ExecutionContext, dir: string): Promise<{ pid1: number; done: Promise<Result> }> {
  const pod = await startPod(dir, { ready: true, mutable: true, stopGrace: 2 });
  const ready = await readReady(pod);
  t.regex(ready, /^\d+\n$/, 'the pod is up with no app');
  const pid1 = Number(ready);
  t.is(readFileSync(join(dir, 'pid'), 'utf8'), String(pid1));
  return { pid1, done: pod.done };
}

const web: AppSpec = {
  name: 'web',
  exec: sh('test -e /prestart && touch /main && exec sleep 1000'),
  eventHandlers: [
    { name: 'pre-start', exec: sh('echo run >> /prestart') },
    { name: 'post-stop', exec: sh('test -e /main && echo run >> /poststop') },
  ],
};
const side: AppSpec = { name: 'side', exec: sh('echo run >> /runs; exec sleep 1000') };
const job: AppSpec = { name: 'job', exec: sh('echo run >> /runs; sleep 0.3; exit 7') };

test.serial('apps are added, started, stopped, removed and started again while the pod runs', async (t) => {
  const dir = makePod([]);
  await clean(t, dir, async () => {
    const { pid1, done } = await sandbox(t, dir);
    t.deepEqual(children(pid1), [], 'no app runs');
    t.deepEqual(readdirSync(join(dir, 'status')), []);

    setPodApps(dir, [web, side]);
    await ok(t, 'add', dir, 'web');
    await ok(t, 'add', dir, 'side');
    await ok(t, 'add', dir, 'web'); // done already: nothing to do
    t.true(appMounts(pid1, 'web').length > 1, "the app's root and its /proc, /dev, /sys are mounted in the pod");
    t.is(wrote(dir, 'web', 'prestart'), undefined, 'an added app does not run');
    t.deepEqual(children(pid1), []);

    await ok(t, 'start', dir, 'web');
    await ok(t, 'start', dir, 'side');
    t.is(hookCode(dir, 'web', 'pre-start'), '0', 'the pre-start handler ran before the app');
    await until(t, 'both apps to run', () => wrote(dir, 'web', 'main') !== undefined && wrote(dir, 'side', 'runs') !== undefined);
    t.is(children(pid1).length, 2);
    const entered = await stage1(['enter', '--pod-dir', dir, '--app', 'web', '--', '/bin/cat', '/prestart']);
    t.is(entered.code, 0, entered.stderr);
    t.is(entered.stdout, 'run\n', "enter reaches an added app's root");
    const again = await app('start', dir, 'web');
    t.not(again.code, 0);
    t.regex(again.stderr, /app web is already running/);

    await ok(t, 'stop', dir, 'web');
    t.is(appStatus(dir, 'web'), '143', 'SIGTERM');
    t.true(existsSync(join(dir, 'appstats', 'web')));
    t.is(hookCode(dir, 'web', 'post-stop'), '0', 'its post-stop handler ran before app-stop returned');
    t.is(wrote(dir, 'web', 'poststop'), 'run\n');
    t.is(appStatus(dir, 'side'), undefined, 'the other app runs on');
    t.is(children(pid1).length, 1);
    const notRunning = await app('stop', dir, 'web');
    t.is(notRunning.code, 5);
    t.regex(notRunning.stderr, /app web is not running/);

    await ok(t, 'rm', dir, 'web');
    t.deepEqual(appMounts(pid1, 'web'), [], 'no mount of the app is left in the pod');
    t.false(existsSync(join(dir, 'status', 'web')) || existsSync(join(dir, 'appstats', 'web')) || existsSync(join(dir, 'hooks', 'web')));
    for (const cg of appCgroups(dir, 'web')) t.false(existsSync(cg), `${cg} is removed`);
    for (const cg of appCgroups(dir, 'side')) t.true(existsSync(cg), `${cg} stays`);
    await ok(t, 'rm', dir, 'web'); // removed already

    await ok(t, 'add', dir, 'web');
    await ok(t, 'start', dir, 'web');
    t.is(wrote(dir, 'web', 'prestart'), 'run\nrun\n', 'its pre-start ran again, in the same upper dir');
    t.is(appStatus(dir, 'web'), undefined, 'running again');

    // An app that exits on its own: recorded, and the pod runs on.
    setPodApps(dir, [web, side, job]);
    await ok(t, 'add', dir, 'job');
    await ok(t, 'start', dir, 'job');
    await until(t, 'job to exit', () => appStatus(dir, 'job') !== undefined);
    t.is(appStatus(dir, 'job'), '7');
    t.true(isAlive(pid1));
    t.is(children(pid1).length, 2, 'web and side run on');
    t.is((await app('stop', dir, 'job')).code, 5);
    await ok(t, 'start', dir, 'job');
    t.is(appStatus(dir, 'job'), undefined, "a restart clears the app's last exit");
    await until(t, 'job to exit again', () => appStatus(dir, 'job') !== undefined);
    t.is(appStatus(dir, 'job'), '7');
    t.is(wrote(dir, 'job', 'runs'), 'run\nrun\n');

    const s = await stage1(['stop', '--pod-dir', dir]);
    t.is(s.code, 0, s.stderr);
    const r = await done;
    t.is(r.code, 0, `a stopped mutable pod exits 0: ${r.stderr}`);
    t.is(appStatus(dir, 'web'), '143');
    t.is(appStatus(dir, 'side'), '143');
    t.is(hookCode(dir, 'web', 'post-stop'), '0');
    t.is(wrote(dir, 'web', 'poststop'), 'run\nrun\n');
    t.false(existsSync(join(dir, 'stage1', 'control')), 'the control socket goes with the pod');
  });
});

test.serial('app-stop after the grace and --force, a stop during a pre-start, a failing pre-start, a failed exec and refusals', async (t) => {
  const stubborn: AppSpec = { name: 'stubborn', exec: sh("trap '' TERM; echo up >> /up; while :; do sleep 1; done") };
  const slow: AppSpec = {
    name: 'slow',
    exec: sh('touch /ran'),
    eventHandlers: [{ name: 'pre-start', exec: sh('echo > /pre; exec sleep 5') }],
  };
  const failing: AppSpec = {
    name: 'failing',
    exec: sh('touch /ran'),
    eventHandlers: [{ name: 'pre-start', exec: sh('exit 3') }],
  };
  const missing: AppSpec = { name: 'missing', exec: ['/bin/nope'] };
  // Found and executable at app-add; its interpreter is not: execve fails.
  const badInterpreter: AppSpec = { name: 'bad-interpreter', exec: ['/bad.sh'] };
  const dir = makePod([]);
  await clean(t, dir, async () => {
    const { pid1, done } = await sandbox(t, dir);
    const notInManifest = await app('add', dir, 'stubborn');
    t.not(notInManifest.code, 0);
    t.regex(notInManifest.stderr, /the pod manifest has no app "stubborn"/);
    const notAdded = await app('start', dir, 'stubborn');
    t.regex(notAdded.stderr, /app stubborn is not added/);
    t.is((await app('stop', dir, 'stubborn')).code, 5);
    t.is((await app('rm', dir, 'stubborn')).code, 0);

    setPodApps(dir, [stubborn, failing, missing, badInterpreter, slow]);
    await ok(t, 'add', dir, 'stubborn');
    await ok(t, 'start', dir, 'stubborn');
    await until(t, 'stubborn to run', () => wrote(dir, 'stubborn', 'up') !== undefined);
    const busy = await app('rm', dir, 'stubborn');
    t.is(busy.code, 16);
    t.regex(busy.stderr, /app stubborn is running/);
    let started = Date.now();
    await ok(t, 'stop', dir, 'stubborn');
    const took = Date.now() - started;
    t.true(took >= 1900 && took < 5000, `SIGTERM ignored, SIGKILL after the grace of 2 s (${took} ms)`);
    t.is(appStatus(dir, 'stubborn'), '137');
    await ok(t, 'start', dir, 'stubborn');
    await until(t, 'stubborn to run again', () => wrote(dir, 'stubborn', 'up') === 'up\nup\n');
    started = Date.now();
    await ok(t, 'stop', dir, 'stubborn', '--force');
    t.true(Date.now() - started < 1500, 'SIGKILL at once');
    t.is(appStatus(dir, 'stubborn'), '137');

    // A stop during the pre-start handler: it gets SIGTERM, and the app never starts.
    await ok(t, 'add', dir, 'slow');
    const starting = app('start', dir, 'slow');
    await until(t, 'the pre-start to run', () => wrote(dir, 'slow', 'pre') !== undefined);
    await ok(t, 'stop', dir, 'slow');
    const cut = await starting;
    t.is(cut.code, 143);
    t.regex(cut.stderr, /app slow: pre-start handler exited with 143/);
    t.is(hookCode(dir, 'slow', 'pre-start'), '143');
    t.is(appStatus(dir, 'slow'), '143');
    t.is(wrote(dir, 'slow', 'ran'), undefined);

    await ok(t, 'add', dir, 'failing');
    const failed = await app('start', dir, 'failing');
    t.is(failed.code, 3, failed.stderr);
    t.regex(failed.stderr, /pre-start handler exited with 3/);
    t.is(hookCode(dir, 'failing', 'pre-start'), '3');
    t.is(appStatus(dir, 'failing'), '3', "the handler's code is its app's");
    t.is(wrote(dir, 'failing', 'ran'), undefined);

    // The program is checked at app-add, as init checks it at set-up; nothing of the app is left.
    const noProgram = await app('add', dir, 'missing');
    t.is(noProgram.code, 254);
    t.regex(noProgram.stderr, /app "missing": exec "\/bin\/nope": no such file in the image/);
    t.deepEqual(appMounts(pid1, 'missing'), []);
    t.regex((await app('start', dir, 'missing')).stderr, /app missing is not added/);

    writeFileSync(join(dir, overlayDir('upper', 'bad-interpreter'), 'bad.sh'), '#!/nope\n', { mode: 0o755 });
    await ok(t, 'add', dir, 'bad-interpreter');
    const execFailed = await app('start', dir, 'bad-interpreter');
    t.is(execFailed.code, 254);
    t.regex(execFailed.stderr, /^podlog-stage1: app bad-interpreter: \/bad.sh \(\/bad.sh\): execve: No such file or directory$/m);
    t.is(appStatus(dir, 'bad-interpreter'), '254', 'recorded before app-start returned');
    t.true(isAlive(pid1));

    const s = await stage1(['stop', '--pod-dir', dir]);
    t.is(s.code, 0, s.stderr);
    t.is((await done).code, 0);
    const gone = await app('start', dir, 'stubborn');
    t.not(gone.code, 0);
    t.regex(gone.stderr, /pod is not running/);
  });
});

test.serial('a pod that is not mutable has no app verbs', async (t) => {
  const dir = makePod([{ name: 'main', exec: ['/bin/sleep', '1000'] }]);
  await clean(t, dir, async () => {
    const pod = await startPod(dir, { ready: true });
    await readReady(pod);
    const r = await app('stop', dir, 'main');
    t.is(r.code, 254);
    t.regex(r.stderr, /the pod is not mutable/);
    t.is((await stage1(['stop', '--pod-dir', dir])).code, 0);
    t.is((await pod.done).code, 143);
  });
});

test.serial('PID 1 answers malformed requests, outlives clients that hang or go away, and keeps serving', async (t) => {
  const dir = makePod([]);
  await clean(t, dir, async () => {
    const { pid1, done } = await sandbox(t, dir);
    setPodApps(dir, [side]);
    await ok(t, 'add', dir, 'side');
    const client = (script: string, as = ''): Promise<Result> => {
      const py = [
        'import os, socket, sys, time',
        as,
        's = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)',
        's.connect(sys.argv[1])',
        script,
      ].join('\n');
      return new Promise((resolve) => {
        const c = spawn('python3', ['-c', py, join(dir, 'stage1', 'control')]);
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      });
    };
    for (const bad of ['not json', '{"op":"start","app":"../x"}', '{"op":"launch","app":"side"}', '{"op":"add","app":"side","cgroups":[],"limited":false}']) {
      const r = await client(`s.send(${JSON.stringify(bad)}.encode()); print(s.recv(4096).decode())`);
      t.is(r.code, 0, r.stderr);
      t.regex(r.stdout, /^\{"code":254,"message":"malformed request: /, bad);
    }
    const nobody = await client('', 'os.setgid(65534); os.setuid(65534)');
    t.regex(nobody.stderr, /PermissionError/, 'only root may connect');
    // One that connects and says nothing holds PID 1 for a second at most.
    const silent = client('time.sleep(3)');
    await sleep(100);
    const started = Date.now();
    await ok(t, 'start', dir, 'side');
    t.true(Date.now() - started < 2500, `app-start waited ${Date.now() - started} ms`);
    // One that asks for a stop and goes away before the reply: the app stops all the same.
    const gone = await client('s.send(b\'{"op":"stop","app":"side","force":false}\')');
    t.is(gone.code, 0, gone.stderr);
    await until(t, 'side to be stopped', () => appStatus(dir, 'side') === '143');
    await silent;
    t.true(isAlive(pid1));
    await ok(t, 'start', dir, 'side');
    t.is((await stage1(['stop', '--pod-dir', dir])).code, 0);
    t.is((await done).code, 0);
  });
});

test.serial("an added app's volumes and --no-overlay copy are mounted as init mounts them, and go with app-rm", async (t) => {
  const host = mkdtempSync(join(tmpdir(), 'podlog-s1-volume-'));
  t.teardown(() => rmSync(host, { recursive: true, force: true }));
  writeFileSync(join(host, 'hello'), 'from the host\n');
  const vol: AppSpec = { name: 'vol', exec: sh('cat /data/hello > /shared/copy && echo from-app > /data/out && exec sleep 1000') };
  const copy: AppSpec = { name: 'copy', exec: sh('cat /shared/copy > /seen && exec sleep 1000') };
  const dir = makePod([]);
  await clean(t, dir, async () => {
    const { pid1, done } = await sandbox(t, dir);
    setPodApps(dir, [vol, copy]);
    // What stage0 adds for volumes (the manifest rewritten whole) and for --no-overlay (the copy).
    const manifest = JSON.parse(readFileSync(join(dir, 'pod'), 'utf8')) as { apps: { name: string; mounts?: unknown[] }[]; volumes?: unknown[] };
    manifest.volumes = [
      { name: 'data', kind: 'host', source: host },
      { name: 'shared', kind: 'empty', mode: '0777' },
    ];
    manifest.apps[0]!.mounts = [
      { volume: 'data', path: '/data' },
      { volume: 'shared', path: '/shared' },
    ];
    manifest.apps[1]!.mounts = [{ volume: 'shared', path: '/shared' }];
    writeFileSync(join(dir, 'pod.tmp'), JSON.stringify(manifest));
    renameSync(join(dir, 'pod.tmp'), join(dir, 'pod'));
    const copied = join(dir, 'apps', 'copy', 'rootfs');
    mkdirSync(dirname(copied), { recursive: true });
    t.is(spawnSync('cp', ['-a', busyboxRootfs, copied]).status, 0);

    await ok(t, 'add', dir, 'vol');
    await ok(t, 'start', dir, 'vol');
    const written = (f: string): boolean => existsSync(f) && readFileSync(f, 'utf8').endsWith('\n');
    await until(t, 'vol to write', () => written(join(host, 'out')));
    t.is(readFileSync(join(host, 'out'), 'utf8'), 'from-app\n', 'the host volume is bound');
    t.is(readFileSync(join(dir, 'sharedVolumes', 'shared', 'copy'), 'utf8'), 'from the host\n');
    await ok(t, 'add', dir, 'copy');
    await ok(t, 'start', dir, 'copy');
    await until(t, 'copy to write', () => written(join(copied, 'seen')));
    t.is(readFileSync(join(copied, 'seen'), 'utf8'), 'from the host\n', 'the copy is its root, the empty volume shared');

    for (const name of ['vol', 'copy']) {
      await ok(t, 'stop', dir, name);
      await ok(t, 'rm', dir, name);
      t.deepEqual(appMounts(pid1, name), [], `no mount of ${name} is left`);
    }
    t.is((await stage1(['stop', '--pod-dir', dir])).code, 0);
    t.is((await done).code, 0);
  });
});
