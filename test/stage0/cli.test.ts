/**
 * `podlog run` and the pod verbs, end to end as root: real pods through stage1, exit codes, the
 * history in the log, and the host's mount table untouched by all of it.
 */
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stage1Path } from '../../src/native.js';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, mountTable, waitForFile, waitForRunning } from './podlog.js';

const before = mountTable();
test.after.always('the host mount table is the same after every pod', (t) => {
  t.is(mountTable(), before);
});

const busybox = aciPath('busybox-gzip');
const sh = (script: string) => [busybox, '--exec', '/bin/sh', '--', '-c', script];

test('run returns the app exit code: 0, 1, 3, and 143 for an app killed by SIGTERM', (t) => {
  const d = dataDir();
  try {
    for (const [script, code] of [['exit 0', 0], ['exit 1', 1], ['exit 3', 3], ['kill -TERM $$', 143]] as const) {
      const r = d.podlog(['run', ...sh(script)]);
      t.is(r.status, code, `${script}: ${r.stderr}`);
    }
    const pods = d.pods();
    t.deepEqual(pods.map((p) => [p.state, p.exit_code, p.apps[0]!.exit_code]), [['exited', 0, 0], ['exited', 1, 1], ['exited', 3, 3], ['exited', 143, 143]]);
    const history = d.events(pods[2]!.uuid).map((e) => e.type);
    t.deepEqual(history, [
      'PrepareRequested', 'PodCreated', 'ImageRenderRequested', 'ImageRendered', 'OverlayPrepareRequested', 'OverlayPrepared',
      'PodManifestWriteRequested', 'PodManifestWritten', 'PodPrepared', 'Stage1StartRequested', 'PodStarted', 'AppExited', 'PodExited',
    ]);
    const started = d.events(pods[2]!.uuid).find((e) => e.type === 'PodStarted')!;
    t.true((started.data.pid as number) > 0);
    t.true(started.meta.command.includes('run'));
  } finally {
    d.cleanup();
  }
});

test('the app sees its own hostname and pid namespace, and its output reaches the caller', (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', '--hostname', 'pod-under-test', ...sh('hostname; echo pid=$$; echo $AC_APP_NAME')]);
    t.is(r.status, 0, r.stderr);
    const [hostname, pid, app] = r.stdout.trim().split('\n');
    t.is(hostname, 'pod-under-test');
    t.not(pid, 'pid=1', 'the app is not PID 1: stage1 is');
    t.true(Number(pid!.slice(4)) < 10, 'a private pid namespace');
    t.is(app, 'busybox');
  } finally {
    d.cleanup();
  }
});

test('prepare prints a UUID, run-prepared runs it; a multi-app pod exits with the failing app code', (t) => {
  const d = dataDir();
  try {
    const prepared = d.podlog(['prepare', aciPath('fail3')]);
    t.is(prepared.status, 0, prepared.stderr);
    const uuid = prepared.stdout.trim();
    t.regex(uuid, /^[0-9a-f-]{36}$/);
    t.is(d.pods()[0]!.state, 'prepared');
    t.is(d.podlog(['run-prepared', uuid.slice(0, 8)]).status, 3);
    const again = d.podlog(['run-prepared', uuid]);
    t.is(again.status, 254);
    t.regex(again.stderr, /cannot run pod .*: it is exited/);

    const multi = d.podlog(['run', aciPath('worker'), aciPath('failer')]);
    t.is(multi.status, 5, multi.stderr);
    const pod = d.pods().find((p) => p.apps.length === 2)!;
    t.deepEqual(Object.fromEntries(pod.apps.map((a) => [a.name, a.exit_code])), { worker: 0, failer: 5 });
  } finally {
    d.cleanup();
  }
});

test('status --wait, enter, stop and stop --force on long-running pods', async (t) => {
  const d = dataDir();
  try {
    const uuidFile = join(d.dir, 'uuid');
    const child = d.start(['run', '--uuid-file-save', uuidFile, aciPath('worker')]);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const uuid = await waitForFile(uuidFile);
    const timedOut = d.podlog(['status', '--wait=1s', '--uuid-file', uuidFile]);
    t.is(timedOut.status, 254, 'a running pod does not finish on its own');
    t.regex(timedOut.stderr, /timeout while waiting for pod/);
    await waitForRunning(d, uuid);
    const status = d.podlog(['status', uuid]).stdout.trim();
    t.regex(status, /^state=running\ncreated=.*\nstarted=.*\npid=\d+\nexited=false$/);
    t.true(status.includes(`pid=${readFileSync(join(d.dir, 'pods', uuid, 'pid'), 'utf8')}\n`), "rkt's pid= is the pod's PID 1");
    const entered = d.podlog(['enter', uuid, '--', '/bin/sh', '-c', 'test "$(hostname)" = "podlog-$1" && exit 42', 'sh', uuid]);
    t.is(entered.status, 42, entered.stderr);
    t.is(d.podlog(['stop', uuid]).status, 0);
    t.is(await exited, 0, 'the worker exits 0 on SIGTERM, and run returns it');
    t.regex(d.podlog(['status', '--wait', uuid]).stdout, /state=exited\n.*\n.*\nexited=true\napp-worker=0/);
    t.regex(d.podlog(['stop', uuid]).stdout, /already stopped/);

    const forced = d.start(['run', '--uuid-file-save', `${uuidFile}2`, aciPath('worker')]);
    const forcedExit = new Promise<number | null>((resolve) => forced.on('exit', (code) => resolve(code)));
    const second = await waitForFile(`${uuidFile}2`);
    await waitForRunning(d, second);
    t.is(d.podlog(['stop', '--force', second]).status, 0);
    t.is(await forcedExit, 137);
    // The stop's own outcome (StopSignalled) may lose the race with the observed exit; the exit is what counts.
    const history = d.events(second);
    t.deepEqual(history.find((e) => e.type === 'StopRequested')?.data, { force: true });
    t.is(history.at(-1)?.type, 'PodExited');
    t.deepEqual(history.at(-1)?.data, { code: 137 });
  } finally {
    d.cleanup();
  }
});


test('rm removes exited and prepared pods and refuses running ones; gc marks, waits the grace period, sweeps', async (t) => {
  const d = dataDir();
  try {
    t.is(d.podlog(['run', ...sh('exit 0')]).status, 0);
    const prepared = d.podlog(['prepare', busybox]).stdout.trim();
    const [exited] = d.pods().filter((p) => p.state === 'exited').map((p) => p.uuid);
    const rm = d.podlog(['rm', exited!, prepared]);
    t.is(rm.status, 0, rm.stderr);
    t.false(existsSync(join(d.dir, 'pods', exited!)));
    t.false(existsSync(join(d.dir, 'pods', prepared)));
    t.deepEqual(d.pods(), []);
    t.deepEqual(d.events(exited).map((e) => e.type).slice(-3), ['PodMarkedGarbage', 'GcRequested', 'PodDeleted']);

    const uuidFile = join(d.dir, 'uuid');
    const child = d.start(['run', '--uuid-file-save', uuidFile, aciPath('worker')]);
    const running = await waitForFile(uuidFile);
    await waitForRunning(d, running);
    const refused = d.podlog(['rm', running]);
    t.is(refused.status, 254);
    t.regex(refused.stderr, /currently running/);

    t.is(d.podlog(['run', ...sh('exit 0')]).status, 0);
    const done = d.pods().find((p) => p.state === 'exited')!.uuid;
    t.regex(d.podlog(['gc', '--mark-only']).stdout, new RegExp(`Moving pod to exited garbage: ${done}`));
    t.is(d.pods().find((p) => p.uuid === done)!.state, 'exited garbage');
    t.regex(d.podlog(['gc']).stdout, /still within grace period \(30m0s\)/);
    t.true(existsSync(join(d.dir, 'pods', done)));
    t.regex(d.podlog(['gc', '--grace-period=0s']).stdout, new RegExp(`Garbage collecting pod .*${done}`));
    t.false(existsSync(join(d.dir, 'pods', done)));
    t.is(d.pods().find((p) => p.uuid === running)!.state, 'running', 'gc never touches a running pod');
    d.podlog(['stop', running]);
    await new Promise((ok) => child.on('exit', ok));
  } finally {
    d.cleanup();
  }
});

test('UUID prefixes resolve as rkt does, with its messages', (t) => {
  const d = dataDir();
  try {
    for (let i = 0; i < 20; i++) d.podlog(['prepare', busybox]);
    const uuids = d.pods().map((p) => p.uuid);
    const shared = uuids.map((u) => u[0]).find((c, i, all) => all.indexOf(c) !== i)!;
    const cases: Array<[string[], RegExp]> = [
      [['status', 'zzzz'], /no matches found for "zzzz"/],
      [['status', shared], /ambiguous uuid, \d+ matches/],
      [['rm', ''], /UUID cannot be empty/],
      [['status'], /UUID cannot be empty/],
    ];
    for (const [args, message] of cases) {
      const r = d.podlog(args);
      t.is(r.status, 254, args.join(' '));
      t.regex(r.stderr, message);
    }
    t.regex(d.podlog(['status', uuids[0]!.slice(0, 13)]).stdout, /state=prepared/);
  } finally {
    d.cleanup();
  }
});


test('a missing stage1 binary fails the start cleanly and the pod stays runnable', (t) => {
  const d = dataDir();
  try {
    // A stage1 image whose binary is there when the pod is prepared and gone when it is run.
    const image = join(d.dir, 'stage1-image');
    mkdirSync(join(image, 'rootfs'), { recursive: true });
    symlinkSync(stage1Path(), join(image, 'rootfs', 'podlog-stage1'));
    const entry = (name: string, verb: string) => ({ name: `coreos.com/rkt/stage1/${name}`, value: `/podlog-stage1 ${verb}` });
    writeFileSync(join(image, 'manifest'), JSON.stringify({
      acKind: 'ImageManifest', name: 'podlog.test/stage1',
      annotations: [entry('run', 'init'), entry('enter', 'enter'), entry('gc', 'gc'), entry('stop', 'stop')],
    }));
    const prepared = d.podlog(['prepare', '--stage1-path', image, busybox]);
    t.is(prepared.status, 0, prepared.stderr);
    rmSync(join(image, 'rootfs', 'podlog-stage1'));
    const r = d.podlog(['run-prepared', prepared.stdout.trim()]);
    t.is(r.status, 254);
    t.regex(r.stderr, /stage1 entrypoint .*podlog-stage1 does not exist/);
    t.is(d.pods()[0]!.state, 'prepared');
    t.is(d.podlog(['rm', prepared.stdout.trim()]).status, 0, 'and can be removed');
  } finally {
    d.cleanup();
  }
});
