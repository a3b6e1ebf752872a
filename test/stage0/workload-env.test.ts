/**
 * An app's environment, read from inside real pods: the caller's (--inherit-env) < the image's <
 * --set-env-file < --set-env < the app's --environment, and what the pod always sets (PATH when
 * nothing else does, AC_APP_NAME, container=podlog).
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeAci, manifestFor } from '../images/helpers.js';
import { dataDir } from './podlog.js';

const ACE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const work = mkdtempSync(join(tmpdir(), 'podlog-workload-env-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

/** A busybox image whose manifest sets `env` (and runs `env`). */
const imageWithEnv = (name: string, env: Record<string, string>): string =>
  makeAci(join(work, `${name}.aci`), {
    manifest: manifestFor(`podlog.test/${name}`, {
      app: { exec: ['/bin/env'], user: '0', group: '0', environment: Object.entries(env).map(([n, value]) => ({ name: n, value })) },
    }),
  });

/** The environment the pod's app printed with `env`, one NAME=VALUE a line. */
const envOf = (stdout: string): Record<string, string> =>
  Object.fromEntries(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

test('five sources, each over the ones before it: inherited < image < --set-env-file < --set-env < --environment', (t) => {
  const d = dataDir();
  try {
    const image = imageWithEnv('env-five', { IMAGE: 'image', FILE: 'image', SET: 'image', APP: 'image', INHERITED: 'image' });
    const file = join(work, 'five.env');
    writeFileSync(file, '# overrides the image\nFILE=file\nSET=file\nAPP=file\n');
    const r = d.podlog(
      ['run', '--inherit-env', `--set-env-file=${file}`, '--set-env=SET=set-env', '--set-env=APP=set-env', image, '--environment=APP=environment'],
      { ONLY_CALLER: 'caller', INHERITED: 'caller' },
    );
    t.is(r.status, 0, r.stderr);
    const env = envOf(r.stdout);
    t.is(env.ONLY_CALLER, 'caller', 'a name only the caller has is inherited');
    t.is(env.INHERITED, 'image', "the image's value beats the caller's");
    t.is(env.IMAGE, 'image');
    t.is(env.FILE, 'file', '--set-env-file beats the image');
    t.is(env.SET, 'set-env', '--set-env beats --set-env-file');
    t.is(env.APP, 'environment', "the app's --environment beats --set-env");
    t.is(env.PATH, process.env.PATH, '--inherit-env brings the caller\'s PATH');
  } finally {
    d.cleanup();
  }
});

test("without --inherit-env the caller's variables stay out; the pod sets PATH, AC_APP_NAME and container", (t) => {
  const d = dataDir();
  try {
    const image = imageWithEnv('env-plain', { IMAGE: 'image' });
    const r = d.podlog(['run', image, '--name=web', '--set-env=container=mine', '--set-env=AC_APP_NAME=mine'], { ONLY_CALLER: 'caller' });
    t.is(r.status, 0, r.stderr);
    const env = envOf(r.stdout);
    t.is(env.ONLY_CALLER, undefined);
    t.is(env.PATH, ACE_PATH, "the ACE's PATH when the image sets none");
    t.is(env.AC_APP_NAME, 'web', 'AC_APP_NAME is always the app name');
    t.is(env.container, 'podlog', 'container is always podlog');
    t.is(env.IMAGE, 'image');
  } finally {
    d.cleanup();
  }
});

test("an image's PATH is kept, finds the app's binary, and --set-env may replace it", (t) => {
  const d = dataDir();
  try {
    const image = imageWithEnv('env-path', { PATH: '/nowhere:/bin' });
    const own = d.podlog(['run', image, '--exec', 'env']);
    t.is(own.status, 0, own.stderr);
    t.is(envOf(own.stdout).PATH, '/nowhere:/bin');
    const replaced = d.podlog(['run', '--set-env=PATH=/sbin:/bin', image, '--exec', 'env']);
    t.is(replaced.status, 0, replaced.stderr);
    t.is(envOf(replaced.stdout).PATH, '/sbin:/bin');
    const missing = d.podlog(['run', '--set-env=PATH=/nowhere', image, '--exec', 'env']);
    t.is(missing.status, 254, 'a PATH without the binary is a refusal at start, not a silent default');
    t.regex(missing.stderr, /not found in PATH=\/nowhere/);
  } finally {
    d.cleanup();
  }
});

test('--environment is one app\'s; --set-env is every app\'s', (t) => {
  const d = dataDir();
  try {
    const image = imageWithEnv('env-two', {});
    const script = 'echo "$AC_APP_NAME:$ALL:${MINE:-unset}"';
    const r = d.podlog([
      'run', '--set-env=ALL=all',
      image, '--name=one', '--environment=MINE=one', '--exec', '/bin/sh', '--', '-c', script, '---',
      image, '--name=two', '--exec', '/bin/sh', '--', '-c', script,
    ]);
    t.is(r.status, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n').sort(), ['one:all:one', 'two:all:unset']);
  } finally {
    d.cleanup();
  }
});

test('the environment of a prepared pod is fixed at prepare: run-prepared takes no environment flags', (t) => {
  const d = dataDir();
  try {
    const image = imageWithEnv('env-prepared', {});
    const uuid = d.podlog(['prepare', '--set-env=WHEN=prepare', image]).stdout.trim();
    const refused = d.podlog(['run-prepared', '--set-env=WHEN=run', uuid]);
    t.is(refused.status, 254);
    t.regex(refused.stderr, /run-prepared: --set-env is a flag of run and prepare, not of run-prepared/);
    const r = d.podlog(['run-prepared', uuid]);
    t.is(r.status, 0, r.stderr);
    t.is(envOf(r.stdout).WHEN, 'prepare');
  } finally {
    d.cleanup();
  }
});
