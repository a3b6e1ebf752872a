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
import { dataDir } from './podlog.js';

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
