/**
 * Mutable pods end to end, as root, with real pods: `app sandbox` runs a pod with no app in the
 * foreground; `app add`, `app start`, `app stop`, `app rm` act on its apps; `app list`, `app status`,
 * `status` and `list` agree with the log; rkt's refusals exit 254 and write nothing; a crash of each
 * app effect after its intent or before its outcome is finished or undone by the next verb; `gc`
 * leaves nothing of the pod.
 */
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, podlogAsync, startRun, waitForRunning, type DataDir } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const SLEEPER = ['--exec', '/bin/sleep', '--', '1000', '---'];

interface AppJson {
  name: string;
  state: string;
  exit_code?: number;
  started_at?: string;
}

/** A sandbox on no network, running; `stop` (podlog stop) or `signal` stops it and resolves with the sandbox's exit. */
const sandbox = async (d: DataDir, flags: string[] = []) => {
  const run = await startRun(d, ['--net=none', ...flags], ['app', 'sandbox']);
  await waitForRunning(d, run.uuid);
  return {
    uuid: run.uuid,
    stop: async () => {
      const r = d.podlog(['stop', run.uuid]);
      if (r.status !== 0) throw new Error(`stop: ${r.stderr}`);
      return run.exited;
    },
    signal: (signal: NodeJS.Signals) => {
      run.child.kill(signal);
      return run.exited;
    },
  };
};

const ok = (t: ExecutionContext, d: DataDir, args: string[]): string => {
  const r = d.podlog(args);
  t.is(r.status, 0, `podlog ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

const apps = (t: ExecutionContext, d: DataDir, uuid: string): Record<string, AppJson> =>
  Object.fromEntries((JSON.parse(ok(t, d, ['app', 'list', uuid, '--format', 'json'])) as AppJson[]).map((a) => [a.name, a]));

const types = (d: DataDir, uuid: string): string[] => d.events(uuid).map((e) => e.type);

/** An app as `app list` shows it once it has exited (or after 5 s, as it is then). */
const exitedApp = async (t: ExecutionContext, d: DataDir, uuid: string, name: string): Promise<AppJson> => {
  let app = apps(t, d, uuid)[name]!;
  for (let i = 0; i < 50 && app.state !== 'exited'; i++) {
    await new Promise((done) => setTimeout(done, 100));
    app = apps(t, d, uuid)[name]!;
  }
  return app;
};

/** The pod's own record of itself: no intent left open. */
const pending = (t: ExecutionContext, d: DataDir, uuid: string): unknown => (JSON.parse(ok(t, d, ['status', uuid, '--format', 'json'])) as { pending?: unknown }).pending;

/** After the pod has exited: gc takes it all, and nothing is mounted under the data dir. */
const collected = (t: ExecutionContext, d: DataDir) => {
  ok(t, d, ['gc', '--grace-period=0s']);
  ok(t, d, ['gc', '--grace-period=0s']);
  t.deepEqual(d.pods(), [], 'gc deleted the pod');
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(d.dir), 'nothing is mounted under the data dir');
};

test.serial('a sandbox runs apps added, started, stopped, removed and added again; the log, list and status agree; it exits 0 when stopped', async (t) => {
  const d = dataDir();
  try {
    const pod = await sandbox(d);
    const { uuid } = pod;
    t.deepEqual(apps(t, d, uuid), {}, 'a sandbox has no app');
    ok(t, d, ['app', 'add', uuid, busybox, '--name=web', ...SLEEPER]);
    ok(t, d, ['app', 'add', uuid, busybox, '--name=db', ...SLEEPER]);
    t.deepEqual(Object.values(apps(t, d, uuid)).map((a) => a.state), ['created', 'created'], 'app add does not start an app');
    ok(t, d, ['app', 'start', uuid, '--app=web']);
    ok(t, d, ['app', 'start', uuid, '--app=db']);
    t.deepEqual(Object.values(apps(t, d, uuid)).map((a) => a.state), ['running', 'running']);
    ok(t, d, ['app', 'stop', uuid, '--app=web']);
    const web = JSON.parse(ok(t, d, ['app', 'status', uuid, '--app=web', '--format', 'json'])) as AppJson;
    t.like(web, { state: 'exited', exit_code: 143 });
    t.like(JSON.parse(ok(t, d, ['app', 'status', uuid, '--app=db', '--format', 'json'])), { state: 'running' });
    t.is(d.podlog(['enter', '--app', 'db', uuid, '--', '/bin/sh', '-c', 'exit 5']).status, 5, 'the other app runs on: enter reaches it');
    ok(t, d, ['app', 'rm', uuid, '--app=web']);
    t.deepEqual(Object.keys(apps(t, d, uuid)), ['db']);
    ok(t, d, ['app', 'add', uuid, busybox, '--name=web', ...SLEEPER]);
    ok(t, d, ['app', 'start', uuid, '--app=web']);
    // status, list and app list say what the log says.
    const status = ok(t, d, ['status', uuid]);
    t.regex(status, /^state=running$/m);
    t.regex(status, /^app-states=db:running,web:running$/m);
    const listed = d.pods()[0]!.apps as Array<{ name: string; state?: string }>;
    t.deepEqual(listed.map((a) => [a.name, a.state]), [['db', 'running'], ['web', 'running']]);
    t.regex(ok(t, d, ['app', 'list', uuid]), /^NAME\s+STATE\s+CREATED\s+STARTED\s+FINISHED\s+EXIT\n(db|web)\s+running/);
    t.is(ok(t, d, ['app', 'list', uuid, '--no-legend']).split('\n').filter((l) => l !== '').length, 2);
    t.is(await pod.stop(), 0, 'a stopped sandbox exits 0');
    const events = d.events(uuid);
    const appEvents = events.filter((e) => e.type.startsWith('App')).map((e) => `${e.type}:${String(e.data.app)}${e.type === 'AppExited' ? `=${String(e.data.code)}` : ''}`);
    t.deepEqual(appEvents.slice(0, 17), [
      'AppAddRequested:web', 'AppAdded:web', 'AppAddRequested:db', 'AppAdded:db',
      'AppStartRequested:web', 'AppStarted:web', 'AppStartRequested:db', 'AppStarted:db',
      'AppStopRequested:web', 'AppStopped:web', 'AppExited:web=143',
      'AppRemoveRequested:web', 'AppRemoved:web',
      'AppAddRequested:web', 'AppAdded:web', 'AppStartRequested:web', 'AppStarted:web',
    ]);
    // The pod's stop ends both apps: each exit recorded once, with the pod's.
    t.deepEqual(appEvents.slice(17).sort(), ['AppExited:db=143', 'AppExited:web=143']);
    t.is(events.filter((e) => e.type === 'AppExited').length, 3);
    t.like(events.at(-1), { type: 'PodExited', data: { code: 0 } });
    t.false(JSON.stringify(events).includes('PATH='), 'no environment value in the log');
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test.serial('an app that exits on its own is recorded with its code, the pod runs on, and app start runs it again; a failing pre-start fails the start', async (t) => {
  const d = dataDir();
  try {
    const pod = await sandbox(d);
    const { uuid } = pod;
    ok(t, d, ['app', 'add', uuid, busybox, '--name=seven', '--exec', '/bin/sh', '--', '-c', 'exit 7', '---']);
    ok(t, d, ['app', 'start', uuid, '--app=seven']);
    const seven = await exitedApp(t, d, uuid, 'seven');
    t.like(seven, { state: 'exited', exit_code: 7 });
    t.regex(ok(t, d, ['status', uuid]), /^state=running$/m, 'the pod runs on');
    t.regex(ok(t, d, ['status', uuid]), /^app-seven=7$/m);
    const first = seven.started_at;
    ok(t, d, ['app', 'start', uuid, '--app=seven']);
    await new Promise((done) => setTimeout(done, 300));
    const again = apps(t, d, uuid).seven!;
    t.like(again, { state: 'exited', exit_code: 7 });
    t.not(again.started_at, first, 'a restart is a run of its own');
    t.is(d.events(uuid).filter((e) => e.type === 'AppExited').length, 2, 'each run recorded once');
    // An image whose pre-start handler exits 7: the start fails, the run is recorded, the pod runs on.
    ok(t, d, ['app', 'add', uuid, aciPath('hookfail'), '--name=hookfail']);
    const failed = d.podlog(['app', 'start', uuid, '--app=hookfail']);
    t.is(failed.status, 254);
    t.regex(failed.stderr, /^podlog: app "hookfail": pre-start handler exited with 7$/m);
    t.like(apps(t, d, uuid).hookfail, { state: 'exited', exit_code: 7 });
    t.like(d.events(uuid).filter((e) => e.type === 'AppHookRan').at(-1), { data: { app: 'hookfail', hook: 'pre-start', code: 7 } });
    t.is(await pod.signal('SIGINT'), 0, 'SIGINT stops the sandbox, as it stops run');
    t.is(d.events(uuid).filter((e) => e.type === 'AppExited').length, 3, 'the pod\'s exit records no run twice');
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test.serial("a sandbox's volumes and hostname are its added apps'; an app's own flags apply to it", async (t) => {
  const d = dataDir();
  try {
    const pod = await sandbox(d, ['--volume=data,kind=empty', '--hostname=sandbox-1', '--user-label=team=infra']);
    const { uuid } = pod;
    ok(t, d, ['app', 'add', uuid, busybox, '--name=writer', '--mount=volume=data,target=/data', '--environment=WORD=hello', '--exec', '/bin/sh', '--', '-c', 'echo $WORD $(hostname) > /data/out', '---']);
    ok(t, d, ['app', 'add', uuid, busybox, '--name=reader', '--mount', 'volume=data,target=/shared', '--user=1000', ...SLEEPER]);
    ok(t, d, ['app', 'start', uuid, '--app=writer']);
    ok(t, d, ['app', 'start', uuid, '--app=reader']);
    t.like(await exitedApp(t, d, uuid, 'writer'), { state: 'exited', exit_code: 0 });
    t.is(ok(t, d, ['enter', '--app', 'reader', uuid, '--', '/bin/cat', '/shared/out']), 'hello sandbox-1\n');
    t.is(ok(t, d, ['enter', '--app', 'reader', uuid, '--', '/bin/id', '-u']), '1000\n');
    t.deepEqual((d.pods()[0] as unknown as { user_labels: unknown }).user_labels, { team: 'infra' });
    t.false(JSON.stringify(d.events(uuid)).includes('WORD=hello'), 'an app\'s environment is not in the log');
    refusedMount(t, d, uuid);
    t.is(await pod.stop(), 0);
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

/** A mount on a volume the pod does not have is refused before anything is asked for. */
const refusedMount = (t: ExecutionContext, d: DataDir, uuid: string) => {
  const before = d.events(uuid).length;
  const r = d.podlog(['app', 'add', uuid, busybox, '--name=lost', '--mount=volume=nope,target=/x']);
  t.is(r.status, 254);
  t.regex(r.stderr, /nope/);
  t.is(d.events(uuid).length, before);
};

test.serial("rkt's refusals exit 254 with its messages and write nothing", async (t) => {
  const d = dataDir();
  try {
    const refused = (args: string[], message: RegExp, uuid?: string) => {
      const before = uuid === undefined ? 0 : d.events(uuid).length;
      const r = d.podlog(args);
      t.is(r.status, 254, `podlog ${args.join(' ')}: ${r.stderr}`);
      t.regex(r.stderr, message);
      if (uuid !== undefined) t.is(d.events(uuid).length, before, `podlog ${args.join(' ')} wrote nothing`);
    };
    refused(['run', '--mutable', busybox], /unknown flag --mutable/);
    refused(['app', 'sandbox', '--net=none', busybox], /a mutable pod starts with no app: add apps with podlog app add/);
    refused(['app', 'frobnicate'], /unknown sub-command "frobnicate"/);
    // A pod that is not running, and one that is not mutable.
    const prepared = ok(t, d, ['prepare', busybox, '--exec', '/bin/true']).trim();
    refused(['app', 'add', prepared, busybox, '--name=x'], /^podlog: pod is not running$/m, prepared);
    const immutable = await startRun(d, ['--net=none', busybox, ...SLEEPER]);
    await waitForRunning(d, immutable.uuid);
    refused(['app', 'add', immutable.uuid, busybox, '--name=x'], /^podlog: immutable pod$/m, immutable.uuid);
    refused(['app', 'stop', immutable.uuid, '--app=busybox'], /^podlog: immutable pod$/m, immutable.uuid);
    ok(t, d, ['stop', immutable.uuid]);
    await immutable.exited;

    const pod = await sandbox(d);
    const { uuid } = pod;
    ok(t, d, ['app', 'add', uuid, busybox, '--name=web', ...SLEEPER]);
    refused(['app', 'add', uuid, busybox, '--name=web', ...SLEEPER], /^podlog: multiple apps with name web$/m, uuid);
    refused(['app', 'add', uuid, busybox, '--name=Bad_Name'], /invalid app name format/, uuid);
    refused(['app', 'add', uuid], /no image specified/, uuid);
    for (const verb of ['start', 'stop', 'rm', 'status']) refused(['app', verb, uuid, '--app=nope'], /^podlog: nonexistent app "nope"$/m, uuid);
    refused(['app', 'stop', uuid, '--app=web'], /^podlog: app "web" is not running$/m, uuid);
    refused(['app', 'start', uuid], /--app=NAME is required/, uuid);
    ok(t, d, ['app', 'start', uuid, '--app=web']);
    refused(['app', 'start', uuid, '--app=web'], /^podlog: app "web" is already running$/m, uuid);
    t.is(await pod.stop(), 0);
    refused(['app', 'add', uuid, busybox, '--name=x'], /^podlog: pod is not running$/m, uuid);
    refused(['app', 'start', uuid, '--app=web'], /^podlog: pod is not running$/m, uuid);
    // rkt allows app rm on a pod that has stopped.
    ok(t, d, ['app', 'rm', uuid, '--app=web']);
    t.deepEqual(apps(t, d, uuid), {});
    t.deepEqual(types(d, uuid).slice(-2), ['AppRemoveRequested', 'AppRemoved']);
    ok(t, d, ['rm', prepared]);
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test.serial('a crash after each app intent and before each app outcome is finished or undone by the next verb; a failed add leaves nothing', async (t) => {
  const d = dataDir();
  try {
    const pod = await sandbox(d);
    const { uuid } = pod;
    /** Runs a verb killed at `at`, then lets `app list` (the next verb) reconcile; returns the app as listed then. */
    const crashed = (args: string[], at: string): AppJson | undefined => {
      const r = d.podlog(args, { PODLOG_CRASH_AT: at });
      t.is(r.signal, 'SIGKILL', `podlog ${args.join(' ')} killed ${at}: ${r.stderr}`);
      const listed = apps(t, d, uuid).web;
      t.is(pending(t, d, uuid), undefined, `no intent left open after a crash ${at}`);
      return listed;
    };
    const add = ['app', 'add', uuid, busybox, '--name=web', ...SLEEPER];
    t.is(crashed(add, 'after-intent:AppAddRequested'), undefined, 'an add that never wrote its manifest is undone');
    t.like(d.events(uuid).at(-1), { type: 'EffectFailed', data: { effect: 'addApp', code: 'EABANDONED' } });
    t.false(ok(t, d, ['cat-manifest', uuid]).includes('"web"'), 'the manifest does not list it');
    t.like(crashed(add, 'before-outcome:AppAdded'), { state: 'created' }, 'an add that was done is recorded');
    t.like(crashed(['app', 'start', uuid, '--app=web'], 'after-intent:AppStartRequested'), { state: 'running' });
    t.like(crashed(['app', 'stop', uuid, '--app=web'], 'after-intent:AppStopRequested'), { state: 'exited', exit_code: 143 });
    t.like(crashed(['app', 'start', uuid, '--app=web'], 'before-outcome:AppStarted'), { state: 'running' });
    t.like(crashed(['app', 'stop', uuid, '--app=web', '--force'], 'before-outcome:AppStopped'), { state: 'exited', exit_code: 137 });
    t.is(crashed(['app', 'rm', uuid, '--app=web'], 'after-intent:AppRemoveRequested'), undefined);
    ok(t, d, add);
    ok(t, d, ['app', 'start', uuid, '--app=web']);
    t.is(crashed(['app', 'rm', uuid, '--app=web'], 'before-outcome:AppRemoved'), undefined);
    t.false(ok(t, d, ['cat-manifest', uuid]).includes('"web"'), 'a removed app is not in the manifest');

    const failed = d.podlog(add, { PODLOG_FAIL_AT: 'effect:addApp' });
    t.is(failed.status, 254);
    t.regex(failed.stderr, /injected/);
    t.deepEqual(apps(t, d, uuid), {}, 'a failed add leaves no app');
    t.false(ok(t, d, ['cat-manifest', uuid]).includes('"web"'));
    // The pod is usable: the app is added and run as if nothing had happened.
    ok(t, d, add);
    ok(t, d, ['app', 'start', uuid, '--app=web']);
    t.is(d.podlog(['enter', '--app', 'web', uuid, '--', '/bin/true']).status, 0);
    // Two adds at once: one intent at a time, each app in the manifest that the log has added.
    const both = await Promise.all(['one', 'two'].map((name) => podlogAsync(d, ['app', 'add', uuid, busybox, `--name=${name}`, ...SLEEPER])));
    for (const r of both) t.true(r.status === 0 || (r.status === 254 && /still in progress/.test(r.stderr)), r.stderr);
    const manifest = JSON.parse(ok(t, d, ['cat-manifest', uuid])) as { apps: Array<{ name: string }> };
    t.deepEqual(manifest.apps.map((a) => a.name).sort(), Object.keys(apps(t, d, uuid)).sort());
    t.is(await pod.stop(), 0);
    collected(t, d);
  } finally {
    d.cleanup();
  }
});
