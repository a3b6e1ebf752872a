/**
 * export (rkt's `rkt export`): an exited pod's app as an ACI, its image with what the app wrote and
 * without what it deleted, which `fetch` imports and `run` runs; refused for a pod that is not
 * exited, an existing file without --overwrite, and a pod of several apps without --app.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, podlogBin, startRun, waitForRunning } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const tarList = (file: string): string[] => spawnSync('tar', ['-tf', file], { encoding: 'utf8' }).stdout.trim().split('\n');

test('what an app wrote is in its exported ACI, what it deleted is not; the ACI imports and runs', (t) => {
  const d = dataDir();
  try {
    const write = 'echo written by the app > /data.txt && rm /etc/hostname && mkdir -p /srv/www && echo hi > /srv/www/index.html';
    const r = d.podlog(['run', busybox, '--exec', '/bin/sh', '--', '-c', write]);
    t.is(r.status, 0, r.stderr);
    const [pod] = d.pods();
    const out = join(d.dir, 'app.aci');
    const exported = d.podlog(['export', pod!.uuid, out]);
    t.is(exported.status, 0, exported.stderr);
    const entries = tarList(out);
    t.is(entries[0], 'manifest', 'the manifest first, as an ACI has it');
    t.true(entries.includes('rootfs/data.txt'));
    t.true(entries.includes('rootfs/srv/www/index.html'));
    t.true(entries.includes('rootfs/bin/busybox'), "the image's files");
    t.false(entries.includes('rootfs/etc/hostname'), 'deleted by the app');
    t.is(JSON.parse(spawnSync('tar', ['-xOf', out, 'manifest'], { encoding: 'utf8' }).stdout).name, 'podlog.test/busybox', "the app's image manifest");

    const fetched = d.podlog(['fetch', out]);
    t.is(fetched.status, 0, fetched.stderr);
    const again = d.podlog(['run', out, '--exec', '/bin/sh', '--', '-c', 'cat /data.txt /srv/www/index.html; test -e /etc/hostname || echo no-hostname']);
    t.is(again.status, 0, again.stderr);
    t.deepEqual(again.stdout.trim().split('\n'), ['written by the app', 'hi', 'no-hostname']);

    const exists = d.podlog(['export', pod!.uuid, out]);
    t.is(exists.status, 254);
    t.regex(exists.stderr, /app\.aci already exists \(--overwrite replaces it\)/);
    const before = readFileSync(out);
    writeFileSync(out, 'stale');
    t.is(d.podlog(['export', '--overwrite', pod!.uuid, out]).status, 0);
    t.is(readFileSync(out).length, before.length, 'written again whole');
    writeFileSync(out, 'kept');
    // stage1 refuses a locked pod (as if it ran): the export fails after stage0's checks.
    const failed = spawnSync('flock', [join(d.dir, 'pods', pod!.uuid), podlogBin, '--dir', d.dir, 'export', '--overwrite', pod!.uuid, out], { encoding: 'utf8' });
    t.is(failed.status, 254, failed.stderr);
    t.regex(failed.stderr, /locked/);
    t.is(readFileSync(out, 'utf8'), 'kept', 'a failed --overwrite leaves the file as it was');
    t.deepEqual(readdirSync(d.dir).filter((n) => n.includes('.export-')), [], 'nothing staged is left');
  } finally {
    d.cleanup();
  }
});

test('only an exited pod is exported, and a pod of several apps needs --app', async (t) => {
  const d = dataDir();
  try {
    const prepared = d.podlog(['prepare', busybox]).stdout.trim();
    const refused = d.podlog(['export', prepared, join(d.dir, 'x.aci')]);
    t.is(refused.status, 254);
    t.regex(refused.stderr, /cannot export pod .*: it is prepared; only an exited pod can be exported/);

    const { uuid: running, exited } = await startRun(d, [aciPath('worker')]);
    await waitForRunning(d, running);
    t.regex(d.podlog(['export', running, join(d.dir, 'y.aci')]).stderr, /it is running; only an exited pod can be exported/);
    t.is(d.podlog(['stop', running]).status, 0);
    await exited;

    const two = d.podlog(['run', busybox, '--name=a', busybox, '--name=b']);
    t.is(two.status, 0, two.stderr);
    const [, , pair] = d.pods();
    t.regex(d.podlog(['export', pair!.uuid, join(d.dir, 'z.aci')]).stderr, /the pod has several apps \(a, b\): choose one with --app/);
    t.is(d.podlog(['export', '--app=b', pair!.uuid, join(d.dir, 'z.aci')]).status, 0);
    t.true(tarList(join(d.dir, 'z.aci')).includes('rootfs/bin/sh'));
  } finally {
    d.cleanup();
  }
});
