/**
 * An image's event handlers (appc `pre-start`, `post-stop`), checked as the ACE validator checks
 * them: pre-start before the app, post-stop after it, also when the pod is stopped; a failing
 * pre-start fails its app with its code and no app runs. Each run is an AppHookRan in the log.
 */
import test from 'ava';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, startRun, waitForRunning } from './podlog.js';

/** The hooks, the apps' exits (app and code) and the pod's, in the log's order. */
const hookEvents = (d: ReturnType<typeof dataDir>, uuid: string) =>
  d.events(uuid).flatMap((e) => {
    if (e.type === 'AppExited') return [[e.type, { app: e.data.app, code: e.data.code }]];
    return e.type === 'AppHookRan' || e.type === 'PodExited' ? [[e.type, e.data]] : [];
  });

test('pre-start runs before the app and post-stop after it, each recorded with its code', (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', aciPath('hooks')]);
    t.is(r.status, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), ['prestart OK', 'main OK', 'poststop OK']);
    const [pod] = d.pods() as unknown as Array<{ uuid: string; apps: Array<{ hooks?: Record<string, number> }> }>;
    t.deepEqual(hookEvents(d, pod!.uuid), [
      ['AppHookRan', { app: 'hooks', hook: 'pre-start', code: 0 }],
      ['AppExited', { app: 'hooks', code: 0 }],
      ['AppHookRan', { app: 'hooks', hook: 'post-stop', code: 0 }],
      ['PodExited', { code: 0 }],
    ]);
    t.deepEqual(pod!.apps[0]!.hooks, { 'pre-start': 0, 'post-stop': 0 }, 'list --format json');
  } finally {
    d.cleanup();
  }
});

test('a failing pre-start fails its app with its code, and no app runs', (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', aciPath('hookfail')]);
    t.is(r.status, 7, r.stderr);
    t.notRegex(r.stdout, /the app ran/);
    const [pod] = d.pods();
    t.deepEqual(hookEvents(d, pod!.uuid), [
      ['AppHookRan', { app: 'hookfail', hook: 'pre-start', code: 7 }],
      ['AppExited', { app: 'hookfail', code: 7 }],
      ['PodExited', { code: 7 }],
    ]);
  } finally {
    d.cleanup();
  }
});

test('post-stop runs after an app that was stopped', async (t) => {
  const d = dataDir();
  try {
    const { uuid, exited, stdout } = await startRun(d, [aciPath('hooks'), '--exec', '/bin/sh', '--', '-c', 'touch /main; exec sleep 100']);
    await waitForRunning(d, uuid);
    t.is(d.podlog(['stop', uuid]).status, 0);
    t.is(await exited, 143, 'the app was stopped');
    t.regex(stdout(), /prestart OK\npoststop OK/);
    t.deepEqual(
      d.events(uuid).filter((e) => e.type === 'AppHookRan').map((e) => e.data),
      [{ app: 'hooks', hook: 'pre-start', code: 0 }, { app: 'hooks', hook: 'post-stop', code: 0 }],
    );
  } finally {
    d.cleanup();
  }
});
