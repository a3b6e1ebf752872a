/**
 * podlog-stage1 export, for real, as root: an exited pod's app root (its overlay upper read over the
 * tree) written as an ACI. Each test checks that the test process's mount table is unchanged: the
 * overlay exists only in stage1's private mount namespace, and only for the moment it takes to open it.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { closeFd, lockDir } from '../src/native.js';
import { busyboxRootfs } from './helpers/fixtures.js';
import {
  busyboxTreeStore,
  cleanupStage1Dirs,
  makePod,
  mountinfo,
  overlayDir,
  readReady,
  runPod,
  stage1,
  stage1Bin,
  startPod,
  waitNoProcess,
  type AppSpec,
} from './helpers/stage1-pod.js';

const sh = (name: string, script: string): AppSpec => ({ name, exec: ['/bin/sh', '-c', script] });

/** A scratch directory for one test's ACI and stage1's TMPDIR (where it makes the mount point). */
const scratch = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'podlog-s1-export-'));
  scratchDirs.push(d);
  return d;
};
const scratchDirs: string[] = [];
test.after.always(() => {
  cleanupStage1Dirs();
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
});

interface Exported {
  code: number | null;
  stderr: string;
}

/** Runs `export` with TMPDIR set to `tmp`, so that a mount point left behind would show there. */
function exportApp(pod: string, out: string, tmp: string, app = 'web'): Exported {
  // stage0 passes the app's image manifest; an unknown app gets web's, so that the app is refused.
  const r = spawnSync(
    stage1Bin,
    ['export', '--pod-dir', pod, '--tree-store', busyboxTreeStore(), '--app', app, '--manifest', join(pod, 'appsinfo', 'web', 'manifest'), '--out', out],
    { env: { ...process.env, TMPDIR: tmp }, encoding: 'utf8' },
  );
  return { code: r.status, stderr: r.stderr };
}

const tarList = (aci: string): string[] => {
  const r = spawnSync('tar', ['-tf', aci], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar -tf ${aci}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/\/$/, ''));
};
const tarVerbose = (aci: string): string[] => spawnSync('tar', ['-tvf', aci, '--numeric-owner'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
const tarCat = (aci: string, path: string): string => spawnSync('tar', ['-xOf', aci, path], { encoding: 'utf8' }).stdout;

/** Every entry below `dir` with what export could change: type, mode, owner, size, mtime, content. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = join(rel, name);
      const st = lstatSync(join(dir, p), { bigint: true });
      const content = st.isFile() ? createHash('sha256').update(readFileSync(join(dir, p))).digest('hex') : st.isSymbolicLink() ? readlinkSync(join(dir, p)) : '';
      out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${st.rdev} ${content}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

// The app writes a file, deletes one of the image's (a whiteout in the upper) and replaces a
// directory (an opaque directory in the upper).
const CHANGES = 'echo hello > /new.txt && rm /etc/hostname && rm -rf /home && mkdir -p /home/other && echo x > /home/other/f';

test.serial('export writes the app root as the app saw it, and changes nothing', async (t) => {
  const pod = makePod([sh('web', CHANGES)]);
  const ran = await runPod(pod);
  t.is(ran.code, 0, ran.stderr);
  const upper = join(pod, overlayDir('upper', 'web'));
  const before = { upper: snapshot(upper), tree: snapshot(join(busyboxTreeStore())), mounts: mountinfo() };
  const tmp = scratch();
  const out = join(scratch(), 'web.aci');

  const r = exportApp(pod, out, tmp);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');

  const names = tarList(out);
  t.is(names[0], 'manifest', 'the manifest comes first');
  t.is(names[1], 'rootfs');
  t.is(tarCat(out, 'manifest'), readFileSync(join(pod, 'appsinfo', 'web', 'manifest'), 'utf8'));
  t.true(names.includes('rootfs/new.txt'));
  t.is(tarCat(out, 'rootfs/new.txt'), 'hello\n');
  t.false(names.includes('rootfs/etc/hostname'), 'a file the app deleted is not there');
  t.true(names.includes('rootfs/etc/passwd'), 'the image files are there');
  t.true(names.includes('rootfs/bin/busybox'));
  t.false(names.includes('rootfs/home/user'), 'the replaced directory holds only what the app put there');
  t.is(tarCat(out, 'rootfs/home/other/f'), 'x\n');
  // stage1's files in the upper (written at run time) are the app's root as it saw it.
  t.true(names.includes('rootfs/etc/hosts'));
  // Parents before children, each directory's entries in byte order.
  const sorted = [...names.slice(2)].sort((a, b) => {
    const [pa, pb] = [a.split('/'), b.split('/')];
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) if (pa[i] !== pb[i]) return Buffer.compare(Buffer.from(pa[i]!), Buffer.from(pb[i]!));
    return pa.length - pb.length;
  });
  t.deepEqual(names.slice(2), sorted);
  const verbose = tarVerbose(out);
  t.false(
    verbose.some((l) => l.startsWith('c') && / 0,0 /.test(l)),
    'no whiteout (a 0/0 character device) is in the archive',
  );
  t.regex(verbose.find((l) => l.endsWith(' rootfs/bin/sh -> busybox')) ?? '', /^l/, 'symlinks are kept, not followed');
  t.regex(verbose.find((l) => l.endsWith(' rootfs/new.txt')) ?? '', /^-rw-r--r-- 0\/0 +6 /);

  t.deepEqual(snapshot(upper), before.upper, "the pod's upper dir is unchanged");
  t.deepEqual(snapshot(busyboxTreeStore()), before.tree, 'the tree store is unchanged');
  t.is(mountinfo(), before.mounts, 'no mount is left');
  t.deepEqual(readdirSync(tmp), [], 'no mount point is left in TMPDIR');
  t.deepEqual(readdirSync(dirname(out)), ['web.aci'], 'no temporary file is left beside the ACI');

  // The same pod exports to the same bytes.
  const again = join(dirname(out), 'again.aci');
  t.is(exportApp(pod, again, tmp).code, 0);
  t.true(readFileSync(again).equals(readFileSync(out)), 'the export is reproducible');
});

test.serial('a --no-overlay pod exports its copied root', async (t) => {
  const pod = makePod([sh('web', 'echo copied > /root/note')]);
  const copy = join(pod, 'apps', 'web', 'rootfs');
  mkdirSync(dirname(copy), { recursive: true });
  t.is(spawnSync('cp', ['-a', busyboxRootfs, copy]).status, 0);
  const ran = await runPod(pod);
  t.is(ran.code, 0, ran.stderr);
  const out = join(scratch(), 'web.aci');
  const mounts = mountinfo();
  const r = exportApp(pod, out, scratch());
  t.is(r.code, 0, r.stderr);
  t.is(tarCat(out, 'rootfs/root/note'), 'copied\n');
  t.true(tarList(out).includes('rootfs/etc/hostname'));
  t.is(mountinfo(), mounts);
});

test.serial('a running pod is refused, and nothing is written', async (t) => {
  const pod = makePod([sh('web', 'sleep 30')]);
  const running = await startPod(pod, { ready: true, stopGrace: 0.2 });
  try {
    t.regex(await readReady(running), /^\d+\n$/);
    const out = join(scratch(), 'web.aci');
    const r = exportApp(pod, out, scratch());
    t.is(r.code, 254);
    t.true(r.stderr.includes('pod is running'), r.stderr);
    t.deepEqual(readdirSync(dirname(out)), []);
  } finally {
    await stage1(['stop', '--pod-dir', pod, '--force']);
    await running.done;
  }
  t.deepEqual(await waitNoProcess(pod), []);
});

test.serial('refusals: an existing --out, a missing directory, an unknown app, a bad manifest', async (t) => {
  const pod = makePod([sh('web', 'true')]);
  t.is((await runPod(pod)).code, 0);
  const dir = scratch();
  const mounts = mountinfo();

  const out = join(dir, 'web.aci');
  writeFileSync(out, 'mine');
  const exists = exportApp(pod, out, scratch());
  t.is(exists.code, 254);
  t.true(exists.stderr.includes(`${out} already exists`), exists.stderr);
  t.is(readFileSync(out, 'utf8'), 'mine', 'the existing file is untouched');

  const missing = exportApp(pod, join(dir, 'no', 'web.aci'), scratch());
  t.is(missing.code, 254);
  t.true(missing.stderr.includes(`its directory ${join(dir, 'no')}`), missing.stderr);

  const unknown = exportApp(pod, join(dir, 'db.aci'), scratch(), 'db');
  t.is(unknown.code, 254);
  t.true(unknown.stderr.includes('app "db" is not in the pod manifest'), unknown.stderr);

  writeFileSync(join(pod, 'appsinfo', 'web', 'manifest'), '{"acKind":"PodManifest"}');
  const bad = exportApp(pod, join(dir, 'bad.aci'), scratch());
  t.is(bad.code, 254);
  t.true(bad.stderr.includes('not "ImageManifest"'), bad.stderr);

  t.deepEqual(readdirSync(dir), ['web.aci'], 'a failed export leaves nothing');
  t.false(existsSync(join(dir, 'db.aci')));
  t.is(mountinfo(), mounts);
});

test.serial('a lock held by stage0 or a run counts as running', async (t) => {
  const pod = makePod([sh('web', 'true')]);
  t.is((await runPod(pod)).code, 0);
  const fd = await lockDir(pod);
  try {
    const r = exportApp(pod, join(scratch(), 'web.aci'), scratch());
    t.is(r.code, 254);
    t.true(r.stderr.includes('is locked'), r.stderr);
  } finally {
    closeFd(fd);
  }
});
