import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodlogError } from '../src/errors.js';
import * as native from '../src/native.js';
import { aciPath, fixturesDir, repoRoot } from './helpers/fixtures.js';
import { refusal } from './helpers/refusal.js';

const hostile = (name: string): string => join(fixturesDir, 'hostile', name);

/** A temp dir with `canary/file`; extractions go to `<dir>/rootfs`, the hostile fixtures aim at `../canary`. */
const sandbox = (): { dir: string; dest: string; assertContained: () => void } => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-native-'));
  mkdirSync(join(dir, 'canary'));
  writeFileSync(join(dir, 'canary', 'file'), 'untouched');
  return {
    dir,
    dest: join(dir, 'rootfs'),
    assertContained: () => {
      if (readdirSync(join(dir, 'canary')).join() !== 'file') throw new Error('the canary dir was written to');
      if (readFileSync(join(dir, 'canary', 'file'), 'utf8') !== 'untouched') throw new Error('the canary was changed');
      const left = readdirSync(dir).filter((n) => n !== 'canary' && n !== 'rootfs');
      if (left.length > 0) throw new Error(`left behind next to the destination: ${left.join(', ')}`);
    },
  };
};


test('the five compressed busybox ACIs have one image id: the sha512 of the uncompressed tar', async (t) => {
  const expected = `sha512-${createHash('sha512').update(readFileSync(join(fixturesDir, 'aci', 'busybox.tar'))).digest('hex')}`;
  for (const c of ['plain', 'gzip', 'bzip2', 'xz', 'zstd']) {
    const info = await native.readImage(aciPath(`busybox-${c}`));
    t.is(info.id, expected, c);
    t.is(info.key, expected.slice(0, 'sha512-'.length + 64));
    t.is(info.compression, c === 'plain' ? 'none' : c);
    t.is((JSON.parse(info.manifest) as { acKind: string }).acKind, 'ImageManifest');
  }
});

test('the busybox ACI extracts to a working tree', async (t) => {
  const box = sandbox();
  const { manifest, stats } = await native.extractImage(aciPath('busybox-gzip'), box.dest);
  t.is((JSON.parse(manifest) as { name: string }).name, 'podlog.test/busybox');
  const busybox = join(box.dest, 'bin', 'busybox');
  t.true((statSync(busybox).mode & 0o111) === 0o111, 'busybox is executable');
  t.is(spawnSync(busybox, ['echo', 'hi'], { encoding: 'utf8' }).stdout, 'hi\n');
  t.is(statSync(join(box.dest, 'tmp')).mode & 0o7777, 0o1777);
  t.true(stats.symlinks > 100, 'applets are symlinks');
  box.assertContained();
  rmSync(box.dir, { recursive: true });
});

const refused: Array<[string, string]> = [
  ['traversal.aci', 'EHOSTILE_ARCHIVE'],
  ['absolute.aci', 'EHOSTILE_ARCHIVE'],
  ['symlink-escape.aci', 'EHOSTILE_ARCHIVE'],
  ['hardlink-escape.aci', 'EHOSTILE_ARCHIVE'],
  ['hardlink-ahead.aci', 'EHOSTILE_ARCHIVE'],
  ['duplicate.aci', 'EBADLAYOUT'],
  ['extra-top-level.aci', 'EBADLAYOUT'],
  ['manifest-not-json.aci', 'EBADMANIFEST'],
  ['manifest-huge.aci', 'EBADMANIFEST'],
  ['wrong-ackind.aci', 'EBADMANIFEST'],
  ['truncated.aci', 'ETRUNCATED'],
  ['unknown-compression.aci', 'ECOMPRESSION'],
];

for (const [file, code] of refused) {
  test(`hostile ${file} is refused with ${code} and nothing escapes`, async (t) => {
    const box = sandbox();
    const e = await refusal(native.extractImage(hostile(file), box.dest));
    t.is(e.code, code, e.message);
    t.is(e.exitCode, 254);
    t.notRegex(e.message, /^[A-Z_]+: /, 'the code is lifted out of the message');
    t.false(existsSync(box.dest), 'no partial tree');
    box.assertContained();
    t.false(existsSync('/tmp/podlog-hostile-absolute'));
    rmSync(box.dir, { recursive: true });
  });
}

test('importImage gives readImage\'s id and the tree hash of a tree extracted and hashed apart, and copies what it read', async (t) => {
  for (const c of ['plain', 'gzip', 'zstd']) {
    const box = sandbox();
    const [imported, apart] = [join(box.dir, 'imported'), join(box.dir, 'apart')];
    mkdirSync(imported);
    mkdirSync(apart);
    const got = await native.importImage(aciPath(`busybox-${c}`), imported, join(box.dir, 'copy'));
    t.deepEqual(got.image, await native.readImage(aciPath(`busybox-${c}`)), c);
    await native.extractImage(aciPath(`busybox-${c}`), join(apart, 'rootfs'));
    t.is(got.treeHash, await native.treeHash(apart), c);
    t.deepEqual(readFileSync(join(box.dir, 'copy')), readFileSync(aciPath(`busybox-${c}`)), c);
    t.deepEqual(readdirSync(imported), ['rootfs']);
    rmSync(box.dir, { recursive: true });
  }
});

test('importImage refuses what extractImage and readImage refuse, and nothing escapes', async (t) => {
  for (const [file, code] of refused) {
    const box = sandbox();
    const e = await refusal(native.importImage(hostile(file), box.dir));
    t.is(e.code, code, `${file}: ${e.message}`);
    t.false(existsSync(box.dest), `${file}: no partial tree`);
    box.assertContained();
    rmSync(box.dir, { recursive: true });
  }
});

test('layout, manifest, truncation and compression faults are found by readImage too', async (t) => {
  for (const [file, code] of refused.filter(([, c]) => c !== 'EHOSTILE_ARCHIVE')) {
    t.is((await refusal(native.readImage(hostile(file)))).code, code, file);
  }
});

test('a symlink swapped in for a directory is followed inside the root only', async (t) => {
  const box = sandbox();
  await native.extractImage(hostile('symlink-swap.aci'), box.dest);
  t.is(readFileSync(join(box.dest, 'etc', 'passwd'), 'utf8'), 'root:x:0:0::/:/bin/sh\n');
  box.assertContained();
  rmSync(box.dir, { recursive: true });
});

test('device nodes are skipped unless allowed', async (t) => {
  const box = sandbox();
  const { stats } = await native.extractImage(hostile('device.aci'), box.dest);
  t.is(stats.skippedDevices, 2);
  t.false(existsSync(join(box.dest, 'dev', 'null')));
  rmSync(box.dest, { recursive: true });
  const allowed = await native.extractImage(hostile('device.aci'), box.dest, { allowDevices: true });
  t.is(allowed.stats.devices, 2);
  t.true(statSync(join(box.dest, 'dev', 'null')).isCharacterDevice());
  box.assertContained();
  rmSync(box.dir, { recursive: true });
});

test('OCI whiteouts work in either entry order, and opaque directories', async (t) => {
  for (const upper of ['layer-whiteout-before.tar', 'layer-whiteout-after.tar']) {
    const box = sandbox();
    await native.extractLayers([hostile('layer-base.tar'), hostile(upper)], box.dest);
    t.is(readFileSync(join(box.dest, 'etc', 'motd'), 'utf8'), 'upper motd\n', upper);
    t.deepEqual(readdirSync(join(box.dest, 'bin')), ['ls'], upper);
    rmSync(box.dir, { recursive: true });
  }
  const box = sandbox();
  await native.extractLayers([hostile('layer-base.tar'), hostile('layer-opaque.tar')], box.dest);
  t.deepEqual(readdirSync(join(box.dest, 'etc')), ['hostname']);
  rmSync(box.dir, { recursive: true });
});

test('whiteouts that reach outside their directory are refused', async (t) => {
  for (const upper of ['layer-whiteout-escape.tar', 'layer-whiteout-dotdot.tar']) {
    const box = sandbox();
    const e = await refusal(native.extractLayers([hostile('layer-base.tar'), hostile(upper)], box.dest));
    t.is(e.code, 'EHOSTILE_ARCHIVE', `${upper}: ${e.message}`);
    t.false(existsSync(box.dest));
    box.assertContained();
    rmSync(box.dir, { recursive: true });
  }
});

test('the tree hash is the same for two extractions and changes with a file', async (t) => {
  const box = sandbox();
  const [a, b] = [join(box.dir, 'tree-a'), join(box.dir, 'tree-b')];
  mkdirSync(a);
  mkdirSync(b);
  await native.extractImage(aciPath('busybox-plain'), join(a, 'rootfs'));
  await native.extractImage(aciPath('busybox-xz'), join(b, 'rootfs'));
  const hash = await native.treeHash(a);
  t.regex(hash, /^sha512-[0-9a-f]{64}$/);
  t.is(await native.treeHash(b), hash);
  writeFileSync(join(b, 'rootfs', 'etc', 'hostname'), 'changed\n');
  t.not(await native.treeHash(b), hash);
  rmSync(box.dir, { recursive: true });
});

/** A tree at `<dir>/<name>`: nested directories, files, a read-only directory, and symlinks out of it to `<dir>/outside`. */
const removable = (dir: string, name: string): string => {
  const tree = join(dir, name);
  mkdirSync(join(tree, 'a', 'b', 'c'), { recursive: true });
  writeFileSync(join(tree, 'a', 'b', 'c', 'file'), 'x');
  symlinkSync(join(dir, 'outside', 'file'), join(tree, 'a', 'to-file'));
  symlinkSync(join(dir, 'outside'), join(tree, 'a', 'b', 'to-dir'));
  symlinkSync('../../outside/file', join(tree, 'a', 'relative'));
  mkdirSync(join(tree, 'ro', 'sub'), { recursive: true });
  writeFileSync(join(tree, 'ro', 'sub', 'file'), 'x');
  chmodSync(join(tree, 'ro', 'sub'), 0o555);
  chmodSync(join(tree, 'ro'), 0o555);
  return tree;
};

test('removeTrees removes trees whole, symlinks and read-only directories included, and never their symlinks\' targets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-remove-'));
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(dir, 'outside', 'file'), 'keep');
  const trees = ['one', 'two', 'three'].map((n) => removable(dir, n));
  symlinkSync(join(dir, 'outside'), join(dir, 'link'));
  const paths = [...trees, join(dir, 'link'), join(dir, 'absent'), join(dir, 'outside', 'file', 'below')];
  const report = await native.removeTrees(paths);
  t.deepEqual(report.map((r) => r.path), paths, 'one report per path, in order');
  t.deepEqual(report.slice(0, 5).filter((r) => r.error !== undefined), [], 'the trees, the symlink and the missing path: removed');
  t.is(report[5]!.code, 'EIO', 'a path below a file is an error');
  t.regex(report[5]!.error!, /Not a directory/);
  for (const p of [...trees, join(dir, 'link')]) t.throws(() => lstatSync(p), { code: 'ENOENT' }, p);
  t.deepEqual(readdirSync(join(dir, 'outside')), ['file']);
  t.is(readFileSync(join(dir, 'outside', 'file'), 'utf8'), 'keep');
  t.deepEqual(await native.removeTrees([]), []);
  rmSync(dir, { recursive: true });
});

test('removeTrees does not enter a mount point in a tree: EBUSY for that tree, the mount untouched', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-remove-'));
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(dir, 'outside', 'file'), 'keep');
  const tree = removable(dir, 'tree');
  mkdirSync(join(tree, 'a', 'mnt'));
  const plain = removable(dir, 'plain');
  // The mount lives in a private mount namespace of a child, which removes the trees from inside it.
  const script = `import('./src/native.ts').then(async (n) => {
    const report = await n.removeTrees(process.argv.slice(1, 3));
    const left = (await import('node:fs')).readFileSync(process.argv[3], 'utf8');
    console.log(JSON.stringify({ report, left }));
  })`;
  const r = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-euc', 'mount -t tmpfs podlog-test "$1"; echo mounted > "$1/file"; shift; exec "$@"', 'sh', join(tree, 'a', 'mnt'),
      process.execPath, '--import=tsx', '-e', script, tree, plain, join(tree, 'a', 'mnt', 'file')],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  t.is(r.status, 0, r.stderr);
  const { report, left } = JSON.parse(r.stdout) as { report: native.RemovedTree[]; left: string };
  t.is(report[0]!.code, 'EBUSY', report[0]!.error);
  t.true(report[0]!.error!.includes(`${join(tree, 'a', 'mnt')} is a mount point`), report[0]!.error);
  t.is(left, 'mounted\n', 'nothing below the mount point was removed');
  t.is(report[1]!.error, undefined, 'the other tree is removed');
  t.false(existsSync(plain));
  t.is(readFileSync(join(dir, 'outside', 'file'), 'utf8'), 'keep');
  rmSync(dir, { recursive: true });
});

test('an exclusive directory lock is seen by isLocked and by flock(1), and freed by closeFd', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-lock-'));
  t.false(native.isLocked(dir));
  const fd = await native.lockDir(dir);
  t.true(native.isLocked(dir));
  t.is(spawnSync('flock', ['-n', dir, 'true']).status, 1, 'another process cannot take it');
  t.is((await refusal(native.lockDir(dir, { shared: true }))).code, 'ELOCKED');
  native.closeFd(fd);
  t.false(native.isLocked(dir));
  t.is(spawnSync('flock', ['-n', dir, 'true']).status, 0);
  rmSync(dir, { recursive: true });
});

test('a lock fd handed to a child keeps the directory locked while the child lives', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-lock-'));
  const fd = await native.lockDir(dir);
  const child = spawn('sleep', ['30'], { stdio: ['ignore', 'ignore', 'ignore', fd] });
  native.closeFd(fd);
  t.true(native.isLocked(dir), 'the child holds the same open file description');
  const pidfd = native.pidfdOpen(child.pid!);
  t.false(await native.waitExit({ pidfd }, 50), 'still running');
  child.kill('SIGKILL');
  t.true(await native.waitExit({ pidfd }, 10_000));
  native.closeFd(pidfd);
  t.false(native.isLocked(dir), 'released when the child exited');
  t.true(await native.waitExit({ pid: child.pid! }, 10_000));
  rmSync(dir, { recursive: true });
});

test('mountsUnder finds the proc mount', (t) => {
  const proc = native.mountsUnder('/proc').find((m) => m.mountPoint === '/proc');
  t.is(proc?.fsType, 'proc');
  const under = native.mountsUnder('/proc');
  t.true(under.every((m) => m.mountPoint === '/proc' || m.mountPoint.startsWith('/proc/')), 'only mounts at or under the path');
  t.true(native.mountsUnder('/').length > under.length);
});

test('unknownSeccompEntries names the syscalls and groups this machine does not know', (t) => {
  const entries = ['mkdir', '@rkt/default-whitelist', 'nosuchcall', '@appc.io/all', '@podlog/default-whitelist', '@rkt/nope', 'read'];
  t.deepEqual(native.unknownSeccompEntries(entries), ['nosuchcall', '@rkt/nope']);
  t.deepEqual(native.unknownSeccompEntries([]), []);
});

test('errors from bad arguments keep their codes', async (t) => {
  t.is((await refusal(native.readImage('/nonexistent/image.aci'))).code, 'ENOENT');
  t.throws(() => native.closeFd(-1), { instanceOf: PodlogError, message: /not a file descriptor/ });
  t.is(t.throws<PodlogError>(() => native.pidfdOpen(0))?.code, 'EINVAL');
});

test('a missing addon is reported as ENATIVE', (t) => {
  const script = `import('./src/native.ts').then((n) => n.isLocked('/')).catch((e) => { console.log(e.code + ' ' + e.message); })`;
  const r = spawnSync(process.execPath, ['--import=tsx', '-e', script], {
    cwd: repoRoot,
    env: { ...process.env, PODLOG_NATIVE: '/nonexistent/podlog-native.node' },
    encoding: 'utf8',
  });
  t.regex(r.stdout, /^ENATIVE podlog's native addon is not built \(run npm ci/);
});
