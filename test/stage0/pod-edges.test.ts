/**
 * Edges of what a pod shows and refuses, end to end as root: PID 1's command line names no host
 * path, an image whose /etc is a symlink is refused by name, and `image list --no-legend`.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stage1Path } from '../../src/native.js';
import { aciPath, busyboxRootfs } from '../helpers/fixtures.js';
import { manifestFor } from '../images/helpers.js';
import { dataDir, waitForFile } from './podlog.js';

const busybox = aciPath('busybox-gzip');

test("the pod's /proc/1/cmdline names neither stage1's binary nor the pod directory", (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', busybox, '--exec', '/bin/sh', '--', '-c', 'cat /proc/1/cmdline']);
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, 'podlog-stage1 init\0');
    t.false(r.stdout.includes(d.dir));
    t.false(r.stdout.includes(stage1Path()));
  } finally {
    d.cleanup();
  }
});

test("an image whose /etc is a symlink is refused with a message naming it", (t) => {
  const d = dataDir();
  const stage = mkdtempSync(join(tmpdir(), 'podlog-etc-link-'));
  try {
    writeFileSync(join(stage, 'manifest'), JSON.stringify(manifestFor('podlog.test/etc-link', { app: { exec: ['/bin/true'], user: '0', group: '0' } })));
    cpSync(busyboxRootfs, join(stage, 'rootfs'), { recursive: true, verbatimSymlinks: true });
    rmSync(join(stage, 'rootfs', 'etc'), { recursive: true });
    symlinkSync('/nonexistent', join(stage, 'rootfs', 'etc'));
    const aci = join(stage, 'etc-link.aci');
    const tar = spawnSync('tar', ['--owner=0', '--group=0', '-C', stage, '-cf', aci, 'manifest', 'rootfs']);
    t.is(tar.status, 0, tar.stderr.toString());
    const r = d.podlog(['run', aci]);
    t.not(r.status, 0);
    t.true(r.stderr.includes(`the image's /etc is a symlink (to "/nonexistent")`), r.stderr);
    t.false(r.stderr.includes('File exists'), r.stderr);
  } finally {
    d.cleanup();
    rmSync(stage, { recursive: true, force: true });
  }
});

test('image list --no-legend prints the rows without the header, and nothing for an empty store', (t) => {
  const d = dataDir();
  try {
    const empty = d.podlog(['image', 'list', '--no-legend']);
    t.is(empty.status, 0, empty.stderr);
    t.is(empty.stdout, '');
    t.is(d.podlog(['fetch', busybox]).status, 0);
    const rows = d.podlog(['image', 'list', '--no-legend']).stdout.trim().split('\n');
    t.is(rows.length, 1);
    t.regex(rows[0]!, /^sha512-[0-9a-f]{12}\s+podlog\.test\/busybox:1\.0\.0\s/);
    t.regex(d.podlog(['image', 'list']).stdout, /^ID\s+NAME\s+SIZE/);
  } finally {
    d.cleanup();
  }
});

/** An ACI of the busybox rootfs whose app runs until stopped, with extra executable files. */
const longRunningAci = (stage: string, name: string, executables: Record<string, string>): string => {
  writeFileSync(join(stage, 'manifest'), JSON.stringify(manifestFor(name, { app: { exec: ['/bin/sleep', '1000'], user: '0', group: '0' } })));
  cpSync(busyboxRootfs, join(stage, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  for (const [path, content] of Object.entries(executables)) writeFileSync(join(stage, 'rootfs', path), content, { mode: 0o755 });
  const aci = join(stage, `${name.split('/').pop()}.aci`);
  const tar = spawnSync('tar', ['--owner=0', '--group=0', '-C', stage, '-cf', aci, 'manifest', 'rootfs']);
  if (tar.status !== 0) throw new Error(tar.stderr.toString());
  return aci;
};

test("enter without a command runs the image's /bin/bash when it has one, else /bin/sh (rkt's rule)", async (t) => {
  const d = dataDir();
  const stage = mkdtempSync(join(tmpdir(), 'podlog-enter-shell-'));
  try {
    const withBash = longRunningAci(stage, 'podlog.test/with-bash', { 'bin/bash': '#!/bin/sh\necho "bash ran"\nexit 7\n' });
    for (const [aci, expected] of [[withBash, 7], [busybox, 0]] as const) {
      const uuidFile = join(d.dir, `uuid-${expected}`);
      const run = d.start(['run', '--uuid-file-save', uuidFile, aci, ...(aci === busybox ? ['--exec', '/bin/sleep', '--', '1000'] : [])]);
      const exited = new Promise((ok) => run.on('exit', ok));
      const uuid = await waitForFile(uuidFile);
      for (let i = 0; i < 200 && !d.podlog(['status', uuid]).stdout.includes('state=running'); i++) await new Promise((ok) => setTimeout(ok, 50));
      // busybox's sh reads its commands from stdin, which is empty here: it exits 0 at once.
      const entered = d.podlog(['enter', uuid]);
      t.is(entered.status, expected, entered.stderr);
      if (expected === 7) t.is(entered.stdout, 'bash ran\n');
      t.is(d.podlog(['stop', '--force', uuid]).status, 0);
      await exited;
    }
  } finally {
    d.cleanup();
    rmSync(stage, { recursive: true, force: true });
  }
});

test('an image with no exec and no --exec is refused in rkt\'s words before a pod exists', (t) => {
  const d = dataDir();
  const stage = mkdtempSync(join(tmpdir(), 'podlog-no-exec-'));
  try {
    writeFileSync(join(stage, 'manifest'), JSON.stringify(manifestFor('podlog.test/no-exec', { app: { user: '0', group: '0' } })));
    cpSync(busyboxRootfs, join(stage, 'rootfs'), { recursive: true, verbatimSymlinks: true });
    const aci = join(stage, 'no-exec.aci');
    t.is(spawnSync('tar', ['--owner=0', '--group=0', '-C', stage, '-cf', aci, 'manifest', 'rootfs']).status, 0);
    const r = d.podlog(['run', aci]);
    t.is(r.status, 254);
    t.is(r.stderr, 'podlog: image "podlog.test/no-exec" has an empty "exec" (try --exec=BINARY)\n');
    t.deepEqual(d.pods(), []);
    t.is(d.podlog(['run', aci, '--exec', '/bin/true']).status, 0, 'and --exec gives it one');
  } finally {
    d.cleanup();
    rmSync(stage, { recursive: true, force: true });
  }
});
