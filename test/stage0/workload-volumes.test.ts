/**
 * Volumes in real pods: rkt's --volume (host, empty) and --mount (pod-wide before the images, per
 * app after one), image mount points satisfied by name or by an implicit empty volume, read-only
 * and recursive binds, an empty volume two apps share, and hostile paths (symlinked sources,
 * symlinks in the image, `..`) that are refused or land inside the app's root. Nothing reaches the
 * host's mount table, and gc leaves no mount and no pod directory.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { makeAci, manifestFor } from '../images/helpers.js';
import { dataDir, mountTable, podlogBin, type DataDir } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const work = mkdtempSync(join(tmpdir(), 'podlog-workload-volumes-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const hostMounts = mountTable();

/** A host directory of the test's own, with `files` in it. */
const hostDir = (name: string, files: Record<string, string> = {}): string => {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
};

/** A busybox ACI running /bin/sh with `app` in its app section and `links` (path → target) as symlinks in its rootfs. */
const image = (name: string, app: Record<string, unknown>, links: Record<string, string> = {}): string => {
  const aci = makeAci(join(work, `${name}.aci`), { manifest: manifestFor(`podlog.test/${name}`, { app: { exec: ['/bin/sh'], user: '0', group: '0', ...app } }) });
  const extra = join(work, `${name}-links`);
  mkdirSync(join(extra, 'rootfs'), { recursive: true });
  for (const [path, target] of Object.entries(links)) symlinkSync(target, join(extra, 'rootfs', path));
  const tar = spawnSync('tar', ['--owner=0', '--group=0', '-C', extra, '-rf', aci, ...Object.keys(links).map((p) => `rootfs/${p}`)]);
  if (tar.status !== 0) throw new Error(tar.stderr.toString());
  return aci;
};

const sh = (img: string, script: string): string[] => [img, '--exec', '/bin/sh', '--', '-c', script, '---'];

/** What a shell prints when a write fails with EROFS: the app's own words. */
const EROFS = /can't create [^:]+: Read-only file system/;

const manifestOf = (d: DataDir, uuid: string) => JSON.parse(d.podlog(['cat-manifest', uuid]).stdout);

/** gc takes every pod (those stage1 refused to start too): no pod directory is left, and the host's mount table is as it was. */
const collected = (t: import('ava').ExecutionContext, d: DataDir): void => {
  const gc = d.podlog(['gc', '--grace-period=0s', '--expire-prepared=0s']);
  t.is(gc.status, 0, gc.stderr);
  t.deepEqual(d.pods(), [], 'gc removed every pod');
  t.deepEqual(existsSync(join(d.dir, 'pods')) ? readdirSync(join(d.dir, 'pods')) : [], [], 'no pod directory is left');
  t.is(mountTable(), hostMounts, 'no mount is left on the host');
};

test('a host volume: what the app writes is on the host after it exits; readOnly=true fails the write with EROFS', (t) => {
  const d = dataDir();
  try {
    const host = hostDir('rw', { in: 'from the host\n' });
    const r = d.podlog([
      'run', `--volume=data,kind=host,source=${host}`, '--volume', `ro,kind=host,source=${host},readOnly=true`, `--volume=file,kind=host,source=${host}/in`,
      ...sh(busybox, 'cat /data/in; echo from the pod > /data/out; { echo x > /ro/x; } 2>&1; echo "write: $?"; cat /new/dir/in'),
      '--mount', 'volume=data,target=/data', '--mount=volume=ro,target=/ro', '--mount=volume=file,target=/new/dir/in',
    ]);
    t.is(r.status, 0, r.stderr);
    const [first, failure, code, file] = r.stdout.split('\n');
    t.is(first, 'from the host');
    t.is(file, 'from the host', 'a file volume, on a file made for it in directories made for it');
    t.regex(failure!, EROFS);
    t.is(code, 'write: 1');
    t.is(readFileSync(join(host, 'out'), 'utf8'), 'from the pod\n', 'the file is on the host after the pod exited');
    t.false(existsSync(join(host, 'x')));
    const m = manifestOf(d, d.pods()[0]!.uuid);
    t.deepEqual(m.volumes, [
      { name: 'data', kind: 'host', source: host }, { name: 'ro', kind: 'host', source: host, readOnly: true }, { name: 'file', kind: 'host', source: `${host}/in` },
    ]);
    t.deepEqual(m.apps[0].mounts, [{ volume: 'data', path: '/data' }, { volume: 'ro', path: '/ro' }, { volume: 'file', path: '/new/dir/in' }]);
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test('recursive=true binds the mounts below the source too, read-only with the volume', (t) => {
  const d = dataDir();
  try {
    const host = hostDir('tree');
    mkdirSync(join(host, 'sub'));
    // The submount lives in a mount namespace of the test's own, private: the host never sees it.
    const script = 'mount -t tmpfs tmpfs "$0/sub" && echo below > "$0/sub/f" && exec "$@"';
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, host, podlogBin, '--dir', d.dir,
      'run', `--volume=flat,kind=host,source=${host}`, `--volume=deep,kind=host,source=${host},recursive=true,readOnly=true`,
      '--mount=volume=flat,target=/flat', '--mount=volume=deep,target=/deep',
      ...sh(busybox, 'ls /flat/sub; echo ---; cat /deep/sub/f; { echo y > /deep/sub/g; } 2>&1; true'),
    ], { encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, r.stderr);
    const [flat, deep] = r.stdout.split('---\n');
    t.is(flat, '', 'without recursive, the directory under the submount');
    const [content, failure] = deep!.split('\n');
    t.is(content, 'below', 'with recursive, the submount');
    t.regex(failure!, EROFS, 'the submount is read-only too');
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test('an empty volume is shared by two apps while both run, with the mode and owner asked; gc removes it', (t) => {
  const d = dataDir();
  try {
    const wait = (file: string) => `i=0; until [ -e ${file} ]; do i=$((i+1)); [ $i -gt 400 ] && exit 9; sleep 0.05; done`;
    const r = d.podlog([
      'run', '--volume=shared,kind=empty,mode=0770,uid=1000,gid=1001', '--mount', 'volume=shared,target=/shared',
      ...sh(busybox, `${wait('/shared/two')}; echo one > /shared/one; echo "one: $(cat /shared/two) $(stat -c '%a %u %g' /shared)"`), '--name=one',
      ...sh(busybox, `echo two > /shared/two; ${wait('/shared/one')}; echo "two: $(cat /shared/one)"`), '--name=two',
    ]);
    t.is(r.status, 0, r.stderr);
    t.deepEqual(r.stdout.split('\n').filter((l) => l !== '').sort(), ['one: two 770 1000 1001', 'two: one']);
    const uuid = d.pods()[0]!.uuid;
    t.deepEqual(readdirSync(join(d.dir, 'pods', uuid, 'sharedVolumes', 'shared')).sort(), ['one', 'two'], 'the volume lives in the pod directory');
    t.deepEqual(manifestOf(d, uuid).volumes, [{ name: 'shared', kind: 'empty', mode: '0770', uid: 1000, gid: 1001 }]);
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test("image mount points: satisfied by a volume of their name, else by an implicit empty one; an app's --mount beats a pod-wide one", (t) => {
  const d = dataDir();
  try {
    const points = image('points', { mountPoints: [{ name: 'cache', path: '/var/cache/app' }, { name: 'conf', path: '/etc/app', readOnly: true }] });
    const conf = hostDir('conf', { 'app.conf': 'setting=1\n' });
    const r = d.podlog(['run', `--volume=conf,kind=host,source=${conf}`, ...sh(points, [
      'grep -c " /var/cache/app " /proc/self/mountinfo', 'cat /etc/app/app.conf', '{ echo x > /etc/app/new; } 2>&1', 'echo c > /var/cache/app/c && echo cache writable',
    ].join('; '))]);
    t.is(r.status, 0, r.stderr);
    const [mounted, setting, failure, cache] = r.stdout.split('\n');
    t.is(mounted, '1', 'the implicit volume is mounted on the mount point');
    t.is(setting, 'setting=1');
    t.regex(failure!, EROFS, "the mount point's readOnly holds when the volume says nothing");
    t.is(cache, 'cache writable');
    const m = manifestOf(d, d.pods()[0]!.uuid);
    t.deepEqual(m.volumes, [{ name: 'conf', kind: 'host', source: conf }, { name: 'points-cache', kind: 'empty', mode: '0755', uid: 0, gid: 0 }]);
    t.deepEqual(m.apps[0].mounts, [{ volume: 'points-cache', path: '/var/cache/app' }, { volume: 'conf', path: '/etc/app' }]);

    const [a, b] = [hostDir('a', { name: 'a\n' }), hostDir('b', { name: 'b\n' })];
    const merged = d.podlog([
      'run', `--volume=a,kind=host,source=${a}`, `--volume=b,kind=host,source=${b}`, '--mount=volume=a,target=/x',
      ...sh(busybox, 'echo "one: $(cat /x/name)"'), '--name=one',
      ...sh(busybox, 'echo "two: $(cat /x/name)"'), '--name=two', '--mount=volume=b,target=/x/',
    ]);
    t.is(merged.status, 0, merged.stderr);
    t.deepEqual(merged.stdout.split('\n').filter((l) => l !== '').sort(), ['one: a', 'two: b']);
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test('cat-manifest of a pod with volumes is a --pod-manifest that gives the same pod (prepare, then run-prepared)', (t) => {
  const d = dataDir();
  try {
    const host = hostDir('round-trip');
    const uuid = d.podlog(['prepare', `--volume=out,kind=host,source=${host}`, '--volume=tmp,kind=empty',
      ...sh(busybox, 'echo $$ >> /out/runs; touch /scratch/ok'), '--mount=volume=out,target=/out', '--mount=volume=tmp,target=/scratch']).stdout.trim();
    const document = d.podlog(['cat-manifest', uuid]).stdout;
    t.is(d.podlog(['run-prepared', uuid]).status, 0);
    writeFileSync(join(work, 'pod.json'), document);
    const again = d.podlog(['prepare', '--pod-manifest', join(work, 'pod.json')]);
    t.is(again.status, 0, again.stderr);
    const r = d.podlog(['run-prepared', again.stdout.trim()]);
    t.is(r.status, 0, r.stderr);
    t.is(readFileSync(join(host, 'runs'), 'utf8').split('\n').filter((l) => l !== '').length, 2, 'both pods wrote to the host volume');
    t.deepEqual(manifestOf(d, again.stdout.trim()), JSON.parse(document), 'the same document');
    collected(t, d);
  } finally {
    d.cleanup();
  }
});

test('hostile paths: a symlinked or symlink-crossing source and a ".." target are refused before any pod exists', (t) => {
  const d = dataDir();
  try {
    const real = hostDir('real');
    mkdirSync(join(real, 'sub'));
    symlinkSync(real, join(work, 'link'));
    const refusals: Array<[string[], RegExp]> = [
      [[`--volume=v,kind=host,source=${join(work, 'link')}`], /^podlog: --volume v,kind=host,source=.*\/link: source .*\/link is a symlink or passes through one .*: it resolves to .*\/real/],
      [[`--volume=v,kind=host,source=${join(work, 'link', 'sub')}/`], /^podlog: --volume v,kind=host.*: source .*\/link\/sub is a symlink or passes through one .*: it resolves to .*\/real\/sub/],
      [[`--volume=v,kind=host,source=${real}/../real`], /^podlog: --volume .*: source .* is a symlink or passes through one \(or \.\.\)/],
      [[`--volume=v,kind=host,source=${join(work, 'missing')}`], /^podlog: --volume .*: source .*missing cannot be used: ENOENT/],
      [[`--volume=v,kind=host,source=${real}`, '--mount=volume=v,target=/a/../../etc'], /^podlog: --mount volume=v,target=\/a\/\.\.\/\.\.\/etc: target \/a\/\.\.\/\.\.\/etc has a "\.\." component/],
    ];
    for (const [flags, message] of refusals) {
      const r = d.podlog(['run', ...flags, busybox]);
      t.is(r.status, 254, `${flags.join(' ')}: ${r.stderr}`);
      t.regex(r.stderr, message);
    }
    t.false(existsSync(join(d.dir, 'pods')), 'no pod was created');
  } finally {
    d.cleanup();
  }
});

test("symlinks in the image land a mount inside the app's root, or refuse it; a canary directory on the host is untouched", (t) => {
  const d = dataDir();
  const canary = mkdtempSync(join(tmpdir(), 'podlog-volumes-canary-'));
  try {
    writeFileSync(join(canary, 'canary'), 'canary\n');
    // Followed on the host, /abs/<canary> and /rel/<canary> would be the canary directory itself.
    const [parent, base] = [dirname(canary), basename(canary)];
    const hostile = image('hostile', {}, { abs: parent, rel: `../../../../../../..${parent}`, gone: canary, data: '/' });
    const vol = hostDir('vol');
    const r = d.podlog(['run', `--volume=v,kind=host,source=${vol}`, `--mount=volume=v,target=/abs/${base}/sub`, `--mount=volume=v,target=/rel/${base}/file-dir/`,
      ...sh(hostile, `echo in > /abs/${base}/sub/w; ls ${canary}; echo ---; ls /rel/${base}`)]);
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, 'file-dir\nsub\n---\nfile-dir\nsub\n', "the links' targets were made inside the app's root");
    t.is(readFileSync(join(vol, 'w'), 'utf8'), 'in\n', 'the volume was mounted there');
    const refused: Array<[string, RegExp]> = [
      ['/data', /volume on \/data: the target is the app's root itself/],
      ['/gone/sub', /volume on \/gone\/sub: open \/gone in the app's root .*No such file or directory/],
    ];
    for (const [target, message] of refused) {
      const r = d.podlog(['run', `--volume=v,kind=host,source=${vol}`, `--mount=volume=v,target=${target}`, hostile]);
      t.is(r.status, 254, target);
      t.regex(r.stderr, message);
    }
    t.deepEqual(readdirSync(canary), ['canary'], 'nothing was made in the canary directory');
    t.is(readFileSync(join(canary, 'canary'), 'utf8'), 'canary\n');
    collected(t, d);
  } finally {
    d.cleanup();
    rmSync(canary, { recursive: true, force: true });
  }
});
