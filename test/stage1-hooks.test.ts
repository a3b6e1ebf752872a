/**
 * appc event handlers at the stage1 level (docs/stage1.md, "Event handlers"): pods made like stage0
 * makes them, each app's `pre-start` run before any app starts and its `post-stop` after the app exits,
 * both as the app (its root, user, environment, working directory, capabilities, seccomp filter and
 * cgroups), each handler's code in `<pod>/hooks/<app>/<name>`. Every test checks that stage1 left no
 * mount, process or cgroup behind.
 */
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  appStatus,
  cleanPod as clean,
  cleanupStage1Dirs,
  makePod,
  overlayDir,
  readReady,
  runPod,
  stage1,
  startPod,
  waitForPid,
  type AppSpec,
} from './helpers/stage1-pod.js';

test.after.always(cleanupStage1Dirs);

const sh = (script: string, ...args: string[]): string[] => ['/bin/sh', '-c', script, ...args];
const handlers = (h: { pre?: string[]; post?: string[] }): AppSpec['eventHandlers'] => [
  ...(h.pre ? [{ name: 'pre-start', exec: h.pre }] : []),
  ...(h.post ? [{ name: 'post-stop', exec: h.post }] : []),
];
/** A handler's recorded code, or undefined if it has none. */
const hookCode = (dir: string, app: string, hook: 'pre-start' | 'post-stop'): string | undefined => {
  const p = join(dir, 'hooks', app, hook);
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
};
/** Whether `path` was written in the app's root (its overlay upper dir keeps what it wrote). */
const wrote = (dir: string, app: string, path: string): boolean => existsSync(join(dir, overlayDir('upper', app), path));

test.serial("the ACE validator's order: pre-start, the app, post-stop, each in the app's root", async (t) => {
  const dir = makePod([
    {
      name: 'main',
      exec: sh('test -e /prestart && test ! -e /poststop && touch /main && echo "main OK"'),
      eventHandlers: handlers({
        pre: sh('touch /prestart && echo "prestart OK"'),
        post: sh('test -e /main && touch /poststop && echo "poststop OK"'),
      }),
    },
  ]);
  await clean(t, dir, async () => {
    const pod = await startPod(dir, { ready: true });
    const ready = await readReady(pod);
    const r = await pod.done;
    t.is(r.code, 0, r.stderr);
    t.regex(ready, /^\d+\n$/, 'the pod came up');
    t.is(r.stdout, 'prestart OK\nmain OK\npoststop OK\n');
    t.is(appStatus(dir, 'main'), '0');
    t.is(hookCode(dir, 'main', 'pre-start'), '0');
    t.is(hookCode(dir, 'main', 'post-stop'), '0');
    for (const f of ['prestart', 'main', 'poststop']) t.true(wrote(dir, 'main', f), `/${f} is in the app's root`);
  });
});

test.serial("handlers run as the app: user, groups, environment, working directory, capabilities, seccomp, cgroups", async (t) => {
  // $0 names the process; everything after it must be the same for the three.
  const probe = [
    'cg=$(for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do',
    '  [ -e "$f" ] && grep -qx $$ "$f" && echo "$f"; done | head -n 1)',
    'caps=$(grep -E "^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\\t\\n" "  ")',
    'echo "$0: $(id -u) $(id -G) HOME=$HOME FOO=$FOO AC_APP_NAME=$AC_APP_NAME cwd=$(pwd) $caps cgroup=$cg"',
  ].join('\n');
  const dir = makePod([
    {
      name: 'web',
      exec: sh(probe, 'app'),
      user: 'user',
      group: '',
      workingDirectory: '/tmp',
      environment: { FOO: 'bar' },
      eventHandlers: handlers({ pre: sh(probe, 'pre'), post: sh(probe, 'post') }),
    },
  ]);
  await clean(t, dir, async () => {
    const r = await runPod(dir);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    t.deepEqual(
      lines.map((l) => l.split(':')[0]),
      ['pre', 'app', 'post'],
    );
    const [pre, app, post] = lines.map((l) => l.slice(l.indexOf(':')));
    t.regex(app!, /^: 1000 1000 10 HOME=\/home\/user FOO=bar AC_APP_NAME=web cwd=\/tmp .*Seccomp:\s*2 .*cgroup=\/sys\/fs\/cgroup\/\S*cgroup\.procs$/);
    t.is(pre, app, 'pre-start');
    t.is(post, app, 'post-stop');
  });
});

test.serial('a failing pre-start fails its app and the pod with its code; no app starts', async (t) => {
  for (const [script, code] of [
    ['exit 7', 7],
    ['kill -KILL $$', 137],
  ] as const) {
    const dir = makePod([
      { name: 'other', exec: sh('touch /ran') },
      {
        name: 'web',
        exec: sh('touch /ran'),
        eventHandlers: handlers({ pre: sh(script), post: sh('touch /poststop') }),
      },
    ]);
    await clean(t, dir, async () => {
      const pod = await startPod(dir, { ready: true });
      const ready = await readReady(pod);
      const r = await pod.done;
      t.is(r.code, code, r.stderr);
      t.is(ready, '', 'the pod never answers ready');
      t.false(existsSync(join(dir, 'pid')));
      t.is(hookCode(dir, 'web', 'pre-start'), String(code));
      t.is(appStatus(dir, 'web'), String(code), "the handler's code is its app's");
      t.true(existsSync(join(dir, 'appstats', 'web')), 'stats before status, as for an app');
      t.is(appStatus(dir, 'other'), undefined, 'the other app never started');
      t.false(wrote(dir, 'web', 'ran') || wrote(dir, 'other', 'ran'), 'no app ran');
      t.is(hookCode(dir, 'web', 'post-stop'), undefined, 'no post-stop for an app that never started');
      t.false(wrote(dir, 'web', 'poststop'));
      t.regex(r.stderr, new RegExp(`app "web": pre-start handler exited with ${code}`));
    });
  }
});

test.serial('post-stop runs after a stopped app, before the pod ends', async (t) => {
  const dir = makePod([
    {
      name: 'web',
      exec: ['/bin/sleep', '1000'],
      eventHandlers: handlers({ post: sh('sleep 0.2; touch /poststop; echo "poststop OK"') }),
    },
  ]);
  await clean(t, dir, async () => {
    const pod = await startPod(dir);
    t.truthy(await waitForPid(dir, pod));
    t.is(hookCode(dir, 'web', 'post-stop'), undefined);
    const s = await stage1(['stop', '--pod-dir', dir]);
    t.is(s.code, 0, s.stderr);
    const r = await pod.done;
    t.is(r.code, 143, r.stderr);
    t.is(appStatus(dir, 'web'), '143');
    t.is(hookCode(dir, 'web', 'post-stop'), '0');
    t.true(wrote(dir, 'web', 'poststop'));
    t.is(r.stdout, 'poststop OK\n');
  });
});

test.serial('a stop during a pre-start terminates it: its code fails the app, nothing starts', async (t) => {
  const dir = makePod([
    { name: 'web', exec: sh('touch /ran'), eventHandlers: handlers({ pre: sh('touch /started; sleep 1000') }) },
  ]);
  await clean(t, dir, async () => {
    const pod = await startPod(dir, { ready: true });
    for (let i = 0; i < 500 && !wrote(dir, 'web', 'started'); i++) await new Promise((r) => setTimeout(r, 10));
    t.true(wrote(dir, 'web', 'started'), 'the pre-start runs');
    pod.child.kill('SIGTERM');
    t.is(await readReady(pod), '');
    const r = await pod.done;
    t.is(r.code, 143, r.stderr);
    t.is(hookCode(dir, 'web', 'pre-start'), '143');
    t.is(appStatus(dir, 'web'), '143');
    t.false(wrote(dir, 'web', 'ran'));
  });
});

test.serial("a post-stop's code is its own: the pod's code is the app's", async (t) => {
  const dir = makePod([
    { name: 'web', exec: sh('exit 3'), eventHandlers: handlers({ post: sh('exit 5') }) },
    { name: 'db', exec: sh('exit 0'), eventHandlers: handlers({ post: sh('exit 0') }) },
  ]);
  await clean(t, dir, async () => {
    const r = await runPod(dir);
    t.is(r.code, 3, r.stderr);
    t.is(appStatus(dir, 'web'), '3');
    t.is(hookCode(dir, 'web', 'post-stop'), '5');
    t.is(hookCode(dir, 'db', 'post-stop'), '0');
  });
});

test.serial("a stop's grace bounds a post-stop handler", async (t) => {
  const dir = makePod([{ name: 'web', exec: sh('exit 0'), eventHandlers: handlers({ post: ['/bin/sleep', '1000'] }) }]);
  await clean(t, dir, async () => {
    const pod = await startPod(dir, { stopGrace: 0.5 });
    t.truthy(await waitForPid(dir, pod));
    // The app has exited; the pod waits for its handler.
    for (let i = 0; i < 500 && appStatus(dir, 'web') === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    t.is(appStatus(dir, 'web'), '0');
    t.is(pod.child.exitCode, null, 'the pod still runs');
    const s = await stage1(['stop', '--pod-dir', dir]);
    t.is(s.code, 0, s.stderr);
    const r = await pod.done;
    t.is(r.code, 0, r.stderr);
    t.is(hookCode(dir, 'web', 'post-stop'), '137', 'not terminated by the stop, killed after the grace');
  });
});

test.serial('a handler whose program is missing fails the pod before anything starts', async (t) => {
  for (const hook of ['pre-start', 'post-stop'] as const) {
    const dir = makePod([
      { name: 'web', exec: sh('touch /ran'), eventHandlers: [{ name: hook, exec: ['/bin/nope', 'x'] }] },
    ]);
    await clean(t, dir, async () => {
      const pod = await startPod(dir, { ready: true });
      t.is(await readReady(pod), '');
      const r = await pod.done;
      t.is(r.code, 254);
      t.regex(r.stderr, new RegExp(`app "web": ${hook} handler: exec "/bin/nope": no such file in the image`));
      t.is(appStatus(dir, 'web'), undefined);
      t.is(hookCode(dir, 'web', hook), undefined);
      t.false(wrote(dir, 'web', 'ran'));
    });
  }
});

test.serial('stage1 refuses an unknown, empty or repeated handler', async (t) => {
  const refused: [NonNullable<AppSpec['eventHandlers']>, RegExp][] = [
    [[{ name: 'post-start', exec: ['/bin/true'] }], /event handler "post-start": unknown name/],
    [[{ name: 'pre-start', exec: [] }], /event handler "pre-start": empty exec/],
    [
      [
        { name: 'post-stop', exec: ['/bin/true'] },
        { name: 'post-stop', exec: ['/bin/true'] },
      ],
      /event handler "post-stop" given twice/,
    ],
  ];
  for (const [eventHandlers, message] of refused) {
    const dir = makePod([{ name: 'web', exec: sh('touch /ran'), eventHandlers }]);
    await clean(t, dir, async () => {
      const r = await runPod(dir);
      t.is(r.code, 254);
      t.regex(r.stderr, message);
      t.false(wrote(dir, 'web', 'ran'));
    });
  }
});

test.serial('a pod without handlers: an empty hooks directory, stale codes of an earlier run removed', async (t) => {
  const dir = makePod([{ name: 'web', exec: sh('echo hi') }]);
  mkdirSync(join(dir, 'hooks', 'web'), { recursive: true });
  writeFileSync(join(dir, 'hooks', 'web', 'pre-start'), '9');
  writeFileSync(join(dir, 'hooks', 'web', 'post-stop'), '9');
  await clean(t, dir, async () => {
    const r = await runPod(dir);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'hi\n');
    t.is(appStatus(dir, 'web'), '0');
    t.deepEqual(readdirSync(join(dir, 'hooks', 'web')), [], 'stale codes removed');
  });
  const fresh = makePod([{ name: 'web', exec: sh('true') }]);
  await clean(t, fresh, async () => {
    t.is((await runPod(fresh)).code, 0);
    t.deepEqual(readdirSync(join(fresh, 'hooks')), [], 'no directory for an app without handlers');
  });
});
