import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageManifest } from '../../src/images/aci-manifest.js';
import { dependencyChain } from '../../src/images/dependencies.js';
import type { ImageRecord } from '../../src/images/index-projection.js';
import { collectGarbage } from '../../src/images/maintenance.js';
import { findById } from '../../src/images/resolve.js';
import { treeStoreIdOf } from '../../src/images/tree-store.js';
import { treeHash } from '../../src/native.js';
import { aciPath } from '../helpers/fixtures.js';
import { entries, makeAci, manifestFor, sandbox } from './helpers.js';
import { refusal } from '../helpers/refusal.js';


test('the five compressions of one ACI import as one image, stored once, recorded once', async (t) => {
  const s = await sandbox();
  const ids = new Set<string>();
  for (const c of ['plain', 'gzip', 'bzip2', 'xz', 'zstd']) ids.add((await s.images.importFile(aciPath(`busybox-${c}`))).id);
  t.is(ids.size, 1);
  const [id] = [...ids];
  t.regex(id!, /^sha512-[0-9a-f]{64}$/);
  t.deepEqual(entries(join(s.dataDir, 'cas', 'blob')), [id]);
  const events = await s.events.readAll({ streamPrefix: 'image-' });
  t.deepEqual(events.map((e) => [e.stream, e.type]), [[`image-${id}`, 'ImageImported']]);
  t.is(events[0]!.data.name, 'podlog.test/busybox');
  t.deepEqual(entries(join(s.dataDir, 'cas', 'tmp')), [], 'no staging left');
  s.assertContained();
  await s.cleanup();
});

test('resolve: a path, an id, an id prefix, a name, a name:version; rkt messages for bad ids', async (t) => {
  const s = await sandbox();
  const image = await s.images.resolve(aciPath('busybox-gzip'));
  t.is((await s.images.resolve(image.id)).id, image.id);
  t.is((await s.images.resolve(image.id.slice(0, 12))).id, image.id);
  t.is((await s.images.resolve('podlog.test/busybox')).id, image.id);
  t.is((await s.images.resolve('podlog.test/busybox:1.0.0')).id, image.id);
  t.is((await refusal(s.images.resolve('sha512-a'))).message, 'image ID too short');
  t.regex((await refusal(s.images.resolve('sha512-00000000'))).message, /no image with ID "sha512-00000000"/);
  t.regex((await refusal(s.images.resolve('podlog.test/busybox:2.0.0'))).message, /no image named "podlog.test\/busybox,version=2.0.0"/);
  await s.cleanup();
});

test('without a version, a name resolves to the newest import', async (t) => {
  const s = await sandbox();
  const v1 = await s.images.importFile(makeAci(s.input('v1.aci'), { manifest: manifestFor('example.com/app', { labels: [{ name: 'version', value: '1' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }] }), busybox: false }));
  const v2 = await s.images.importFile(makeAci(s.input('v2.aci'), { manifest: manifestFor('example.com/app', { labels: [{ name: 'version', value: '2' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }] }), busybox: false }));
  t.not(v1.id, v2.id);
  t.is((await s.images.resolve('example.com/app')).id, v2.id);
  t.is((await s.images.resolve('example.com/app:1')).id, v1.id);
  t.is((await s.images.resolve('example.com/app,version=1,os=linux')).id, v1.id);
  await s.cleanup();
});

test('render: one tree in the tree store, with its hash recorded; a second render renders nothing', async (t) => {
  const s = await sandbox();
  const image = await s.images.resolve(aciPath('busybox-zstd'));
  const { treeStoreId, path } = await s.images.render(image.id);
  t.regex(treeStoreId, /^deps-sha512-[0-9a-f]{64}$/);
  t.is(path, join(s.dataDir, 'cas', 'tree', treeStoreId));
  t.is(spawnSync(join(path, 'rootfs', 'bin', 'busybox'), ['echo', 'ok'], { encoding: 'utf8' }).stdout, 'ok\n');
  const hash = readFileSync(join(path, 'hash'), 'utf8');
  t.is(hash, await treeHash(path));
  t.is(readFileSync(join(path, 'image'), 'utf8'), image.id);
  t.true(existsSync(join(path, 'rendered')));
  const inode = statSync(join(path, 'rootfs')).ino;
  const again = await s.images.render((await s.images.resolve(aciPath('busybox-plain'))).id);
  t.deepEqual(again, { treeStoreId, path });
  t.is(statSync(join(path, 'rootfs')).ino, inode, 'the tree was not rendered again');
  const rendered = await s.events.readAll({ types: ['TreeRendered'] });
  t.is(rendered.length, 1);
  t.like(rendered[0]!.data, { treeStoreId, imageId: image.id, images: [image.id], hash, repair: false });
  await s.cleanup();
});

test('two imports and renders of one image at once give one image and one tree', async (t) => {
  const s = await sandbox();
  const records = await Promise.all([s.images.importFile(aciPath('busybox-xz')), s.images.importFile(aciPath('busybox-gzip'))]);
  t.is(records[0].id, records[1].id);
  const trees = await Promise.all([s.images.render(records[0].id), s.images.render(records[1].id)]);
  t.deepEqual(trees[0], trees[1]);
  t.is((await s.events.readAll({ types: ['ImageImported'] })).length, 1);
  t.is((await s.events.readAll({ types: ['TreeRendered'] })).length, 1);
  t.deepEqual(entries(join(s.dataDir, 'cas', 'tree')), [trees[0].treeStoreId]);
  await s.cleanup();
});

test("render refuses images without rkt's os/arch labels, with rkt's messages", async (t) => {
  const s = await sandbox();
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no-os', { labels: [{ name: 'arch', value: 'amd64' }] }, /missing os label in the image manifest/],
    ['no-arch', { labels: [{ name: 'os', value: 'linux' }] }, /missing arch label in the image manifest/],
    ['bad-os', { labels: [{ name: 'os', value: 'plan9' }, { name: 'arch', value: 'amd64' }] }, /bad os "plan9" \(must be one of: \[linux\]\)/],
    ['bad-arch', { labels: [{ name: 'os', value: 'linux' }, { name: 'arch', value: 'mips' }] }, /bad arch "mips" for linux \(must be one of: \[amd64 i386 aarch64 aarch64_be armv6l armv7l armv7b ppc64le\]\)/],
  ];
  for (const [name, extra, message] of cases) {
    const image = await s.images.importFile(makeAci(s.input(`${name}.aci`), { manifest: manifestFor(`example.com/${name}`, extra), busybox: false }));
    const e = await refusal(s.images.render(image.id));
    t.regex(e.message, message, name);
    t.is(e.exitCode, 254);
  }
  await s.cleanup();
});

const record = (id: string, name: string, position: number): ImageRecord => ({
  id, format: 'aci', name, labels: [], size: 0, compression: 'none', source: '', importedAt: '', position, names: [{ name, labels: [], source: '', position }],
});

test("id prefixes: rkt's ambiguous image ID", (t) => {
  const a = record(`sha512-ab${'0'.repeat(62)}`, 'a', 1);
  const b = record(`sha512-ab${'1'.repeat(62)}`, 'b', 2);
  const index = { images: new Map([[a.id, a], [b.id, b]]), trees: new Map(), layers: new Map() };
  t.throws(() => findById(index, 'sha512-ab'), { message: 'ambiguous image ID' });
  t.is(findById(index, 'sha512-ab1').id, b.id);
  t.is(findById(index, `${a.id}${'f'.repeat(64)}`).id, a.id, 'a full appc id names the image by its key');
  t.throws(() => findById(index, 'sha512-'), { message: 'image ID too short' });
});

test("the dependency chain is rkt's createDepList order: A→[B,C], C→[D] gives A, C, D, B", (t) => {
  const images = ['a', 'b', 'c', 'd'].map((n, i) => record(`sha512-${String(i).repeat(64)}`, `example.com/${n}`, i));
  const index = { images: new Map(images.map((i) => [i.id, i])), trees: new Map(), layers: new Map() };
  const deps: Record<string, string[]> = { 'example.com/a': ['example.com/b', 'example.com/c'], 'example.com/c': ['example.com/d'] };
  const manifestOf = (i: ImageRecord): ImageManifest => ({
    acKind: 'ImageManifest', acVersion: '0.8.11', name: i.name, dependencies: (deps[i.name] ?? []).map((imageName) => ({ imageName })),
  });
  const chain = dependencyChain(index, images[0]!, manifestOf);
  t.deepEqual(chain.map((c) => [c.image.name, c.level]), [['example.com/a', 0], ['example.com/c', 1], ['example.com/d', 2], ['example.com/b', 1]]);
  deps['example.com/d'] = ['example.com/a'];
  t.throws(() => dependencyChain(index, images[0]!, manifestOf), { message: /dependency cycle/ });
});

test('an image with a dependency renders on top of it, with the base pathWhitelist applied', async (t) => {
  const s = await sandbox();
  const base = await s.images.importFile(
    makeAci(s.input('base.aci'), {
      manifest: manifestFor('example.com/base', { labels: [{ name: 'version', value: '1' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }], pathWhitelist: ['/bin/busybox', '/bin/sh', '/etc/passwd'] }),
    }),
  );
  const app = await s.images.importFile(
    makeAci(s.input('app.aci'), {
      manifest: manifestFor('example.com/app', { dependencies: [{ imageName: 'example.com/base', labels: [{ name: 'version', value: '1' }] }] }),
      busybox: false,
      files: { 'app/hello': 'hello from the app\n', 'etc/passwd': 'app:x:0:0::/:/bin/sh\n' },
    }),
  );
  const { treeStoreId, path } = await s.images.render(app.id);
  t.is(treeStoreId, treeStoreIdOf([app.id, base.id]));
  const rootfs = join(path, 'rootfs');
  t.is(readFileSync(join(rootfs, 'app', 'hello'), 'utf8'), 'hello from the app\n');
  t.is(readFileSync(join(rootfs, 'etc', 'passwd'), 'utf8'), 'app:x:0:0::/:/bin/sh\n', 'the upper image wins');
  t.false(existsSync(join(rootfs, 'etc', 'group')), 'not in the base whitelist');
  t.false(existsSync(join(rootfs, 'bin', 'ls')), 'not in the base whitelist');
  t.is(spawnSync(join(rootfs, 'bin', 'busybox'), ['echo', 'ok'], { encoding: 'utf8' }).stdout, 'ok\n');
  t.like((await s.events.readAll({ types: ['TreeRendered'] })).find((e) => e.data.treeStoreId === treeStoreId)!.data, { images: [app.id, base.id] });
  await s.cleanup();
});

test('a dependency missing from the store: the image imports, and rendering it names what is missing', async (t) => {
  const s = await sandbox();
  const app = await s.images.importFile(
    makeAci(s.input('app.aci'), { manifest: manifestFor('example.com/app', { dependencies: [{ imageName: 'example.com/nowhere' }] }), busybox: false }),
  );
  const e = await refusal(s.images.render(app.id));
  t.regex(e.message, /depends on "example.com\/nowhere", which is not in the store; fetch it first/);
  await s.cleanup();
});

test('invalid manifests are refused at import, naming the file and the field; nothing is stored', async (t) => {
  const s = await sandbox();
  const cases: Array<[string, Record<string, unknown> | string, RegExp]> = [
    ['bad-name', manifestFor('Not A Name'), /bad-name.aci: invalid image manifest: name "Not A Name" is not a valid AC identifier/],
    ['bad-label', manifestFor('example.com/x', { labels: [{ name: 'Bad Label', value: 'x' }] }), /label name "Bad Label" is not a valid AC identifier/],
    ['twice', manifestFor('example.com/x', { labels: [{ name: 'os', value: 'linux' }, { name: 'os', value: 'linux' }] }), /label "os" appears twice/],
    ['no-user', manifestFor('example.com/x', { app: { exec: ['/bin/sh'], group: '0' } }), /app.user is required/],
    ['relative-wd', manifestFor('example.com/x', { app: { user: '0', group: '0', workingDirectory: 'tmp' } }), /app.workingDirectory "tmp" is not an absolute path/],
    ['bad-version', manifestFor('example.com/x', { acVersion: 'one' }), /acVersion "one" is not a semantic version/],
  ];
  for (const [name, manifest, message] of cases) {
    const e = await refusal(s.images.importFile(makeAci(s.input(`${name}.aci`), { manifest, busybox: false })));
    t.is(e.code, 'EBADMANIFEST', name);
    t.regex(e.message, message, name);
  }
  for (const d of ['blob', 'tree', 'imageManifest', 'tmp']) t.deepEqual(entries(join(s.dataDir, 'cas', d)), [], d);
  s.assertContained();
  await s.cleanup();
});

test('a tree rendered in an earlier boot without a sync is checked once before use, and re-rendered if damaged', async (t) => {
  const s = await sandbox();
  const image = await s.images.resolve(aciPath('busybox-gzip'));
  const { path } = await s.images.render(image.id);
  // As if the machine had rebooted since the render.
  writeFileSync(join(path, 'rendered'), 'an-earlier-boot');
  await s.images.render(image.id);
  t.is(readFileSync(join(path, 'rendered'), 'utf8'), '', 'checked and marked durable');
  writeFileSync(join(path, 'rendered'), 'an-earlier-boot');
  writeFileSync(join(path, 'rootfs', 'etc', 'hostname'), 'lost in the crash');
  await s.images.render(image.id);
  t.is(readFileSync(join(path, 'rootfs', 'etc', 'hostname'), 'utf8'), 'podlog-fixture\n');
  t.deepEqual((await s.events.readAll({ streamPrefix: 'tree-' })).map((e) => e.type), ['TreeRendered', 'TreeDamaged', 'TreeRendered']);
  await s.cleanup();
});

test('an image stored in an earlier boot without a sync is hashed again before a render trusts it', async (t) => {
  const s = await sandbox();
  const image = await s.images.resolve(aciPath('busybox-plain'));
  const { path } = await s.images.render(image.id);
  rmSync(path, { recursive: true });
  const marker = join(s.dataDir, 'cas', 'unsynced', image.id);
  writeFileSync(marker, 'an-earlier-boot');
  // Damage the stored image as a power loss could.
  const blob = join(s.dataDir, 'cas', 'blob', image.id);
  const bytes = readFileSync(blob);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 2000) ^ 0xff, bytes.length - 2000);
  writeFileSync(blob, bytes);
  const e = await refusal(s.images.render(image.id));
  t.is(e.code, 'EDAMAGED');
  t.regex(e.message, /no longer matches its id/);
  t.false(existsSync(path));
  await s.cleanup();
});

test('image gc removes what killed processes left in cas/ and keeps what live ones are writing', async (t) => {
  const s = await sandbox();
  const image = await s.images.importFile(aciPath('busybox-plain'));
  const cas = join(s.dataDir, 'cas');
  writeFileSync(join(cas, 'tmp', 'import-999999999-0badc0de'), 'a dead import');
  writeFileSync(join(cas, 'tmp', `import-${process.pid}-0badc0de`), 'a live import');
  writeFileSync(join(cas, 'blob', `sha512-${'e'.repeat(64)}`), 'stored, never recorded');
  const r = await collectGarbage(s.images, { gracePeriodMs: 24 * 3600_000 });
  t.deepEqual(r.leftovers.sort(), [join(cas, 'blob', `sha512-${'e'.repeat(64)}`), join(cas, 'tmp', 'import-999999999-0badc0de')]);
  t.deepEqual(entries(join(cas, 'tmp')), [`import-${process.pid}-0badc0de`]);
  t.deepEqual(entries(join(cas, 'blob')), [image.id], 'the recorded image stays (within the grace period)');
  t.is(r.trees.length, 1, 'no pod uses its tree');
  t.deepEqual(entries(join(cas, 'tree')), []);
  await s.cleanup();
});
