import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PodlogError } from '../../src/errors.js';
import { treeHash } from '../../src/native.js';
import { aciPath } from '../helpers/fixtures.js';
import { entries, makeAci, manifestFor, sandbox } from './helpers.js';

const refusal = async (p: Promise<unknown>): Promise<PodlogError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof PodlogError)) throw new Error(`expected a PodlogError, got ${String(e)}`);
  return e;
};

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
