/** The image verbs as a user runs them: bin/podlog (built by npm test's pretest) against a data dir. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { withPrepareLock } from '../../src/images/locks.js';
import { readImage } from '../../src/native.js';
import { aciPath, fixturesDir, repoRoot } from '../helpers/fixtures.js';
import { assertNothingStored, entries, makeAci, makeOciLayout, manifestFor, podlogAsync, sandbox, tarDir, type CliResult } from './helpers.js';

const hostile = (name: string): string => join(fixturesDir, 'hostile', name);


const REFUSED: Array<[string, string, RegExp]> = [
  ['traversal.aci', 'path traversal', /"rootfs\/\.\.\/\.\.\/canary\/pwned" has a `\.\.` component \(path traversal\)/],
  ['absolute.aci', 'absolute name', /entry "\/tmp\/podlog-hostile-absolute" is an absolute path/],
  ['symlink-escape.aci', 'symlink escape', /"escape" is a symlink to a directory missing from the tree \(symlink escape\)/],
  ['hardlink-escape.aci', 'hardlink escape', /hardlink "rootfs\/shadow" .*\(hardlink escape\)/],
  ['hardlink-ahead.aci', 'hardlink to a later entry', /hardlink "rootfs\/early" points at "later", which is not a file already extracted/],
  ['duplicate.aci', 'duplicate entry', /duplicate entry "rootfs\/bin\/sh"/],
  ['extra-top-level.aci', 'extra top-level entry', /unexpected entry "etc\/": an ACI holds only manifest and rootfs\//],
  ['manifest-not-json.aci', 'manifest not JSON', /manifest is not JSON/],
  ['manifest-huge.aci', 'manifest of megabytes', /manifest is 2097187 bytes, larger than the 1048576 bytes allowed/],
  ['wrong-ackind.aci', 'wrong acKind', /manifest acKind is "PodManifest", expected "ImageManifest"/],
  ['truncated.aci', 'truncated archive', /truncated/],
  ['unknown-compression.aci', 'unknown compression', /unknown compression/],
];

test('every hostile or broken ACI: exit 254, a message naming the file and the problem, nothing stored, the canary untouched', async (t) => {
  const s = await sandbox();
  for (const [file, what, message] of REFUSED) {
    const r = await podlogAsync(s.dataDir, ['fetch', hostile(file)]);
    t.is(r.status, 254, `${what}: ${r.stderr}`);
    t.is(r.stdout, '', what);
    t.true(r.stderr.startsWith(`podlog: ${hostile(file)}: `), `${what}: ${r.stderr}`);
    t.regex(r.stderr, message, what);
    await assertNothingStored(t, s, what);
  }
  await s.cleanup();
});

test('a broken OCI layout via the CLI: exit 254, the layout and the blob named, nothing stored', async (t) => {
  const s = await sandbox();
  const layout = s.input('tampered-oci');
  const { layers } = makeOciLayout(layout, { layers: [{ tar: hostile('layer-base.tar') }] });
  writeFileSync(layers[0]!, 'not the layer any more');
  const r = await podlogAsync(s.dataDir, ['fetch', layout]);
  t.is(r.status, 254);
  t.regex(r.stderr, new RegExp(`^podlog: ${layout}: layer sha256:[0-9a-f]{64} does not match its digest`));
  await assertNothingStored(t, s, 'tampered OCI layer');
  await s.cleanup();
});

test('a symlink replaced by a directory: refused in an ACI (duplicate), neutralised across OCI layers', async (t) => {
  const s = await sandbox();
  const aci = makeAci(s.input('swap.aci'), { manifest: manifestFor('example.com/swap'), busybox: false });
  // Append the directory and a file below it after the symlink, as a second tar run would.
  const stage = s.input('swap-stage');
  mkdirSync(join(stage, 'rootfs'), { recursive: true });
  symlinkSync('../../canary', join(stage, 'rootfs', 'a'));
  spawnSync('tar', ['-C', stage, '-rf', aci, 'rootfs/a']);
  spawnSync('rm', ['-r', join(stage, 'rootfs', 'a')]);
  mkdirSync(join(stage, 'rootfs', 'a'));
  writeFileSync(join(stage, 'rootfs', 'a', 'pwned'), 'x');
  spawnSync('tar', ['-C', stage, '-rf', aci, 'rootfs/a', 'rootfs/a/pwned']);
  const r = await podlogAsync(s.dataDir, ['fetch', aci]);
  t.is(r.status, 254, r.stderr);
  t.regex(r.stderr, /swap.aci: duplicate entry "rootfs\/a\/?"/);
  await assertNothingStored(t, s, 'ACI');

  const lower = s.input('lower');
  mkdirSync(lower);
  symlinkSync('../../canary', join(lower, 'a'));
  const upper = s.input('upper');
  mkdirSync(join(upper, 'a'), { recursive: true });
  writeFileSync(join(upper, 'a', 'pwned'), 'x');
  const layout = s.input('swap-oci');
  makeOciLayout(layout, { layers: [{ tar: tarDir(lower, s.input('lower.tar')) }, { tar: tarDir(upper, s.input('upper.tar')) }] });
  const ok = await podlogAsync(s.dataDir, ['fetch', layout]);
  t.is(ok.status, 0, ok.stderr);
  const [image] = (await s.images.index()).images.values();
  const top = join(s.dataDir, 'cas', 'layers', image!.layers![1]!.key, 'rootfs');
  t.true(lstatSync(join(top, 'a')).isDirectory(), 'the upper layer holds a directory where the lower has the symlink');
  t.is(readFileSync(join(top, 'a', 'pwned'), 'utf8'), 'x', 'the directory replaced the symlink');
  s.assertContained();
  await s.cleanup();
});

test('fetch prints only the id when not on a terminal; list, cat-manifest, export (same id), extract, render, verify, rm', async (t) => {
  const s = await sandbox();
  const r = await podlogAsync(s.dataDir, ['fetch', aciPath('busybox-xz')]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  const id = r.stdout.trim();
  t.regex(id, /^sha512-[0-9a-f]{64}$/);

  const list = await podlogAsync(s.dataDir, ['image', 'list']);
  t.regex(list.stdout, /^ID\s+NAME\s+SIZE\s+IMPORT TIME\s+LAST USED\n/);
  t.true(list.stdout.includes(`${id.slice(0, 19)}  podlog.test/busybox:1.0.0`), list.stdout);
  const json = JSON.parse((await podlogAsync(s.dataDir, ['image', 'list', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
  t.like(json[0], { id, name: 'podlog.test/busybox', format: 'aci', latest: true, size: readFileSync(join(fixturesDir, 'aci', 'busybox.tar')).length });

  const manifest = JSON.parse((await podlogAsync(s.dataDir, ['image', 'cat-manifest', id.slice(0, 12)])).stdout) as { name: string };
  t.is(manifest.name, 'podlog.test/busybox');

  const exported = s.input('exported.aci');
  t.is((await podlogAsync(s.dataDir, ['image', 'export', id, exported])).status, 0);
  t.is((await readImage(exported)).key, id, 'the exported file has the same id');
  const again = await podlogAsync(s.dataDir, ['image', 'export', id, exported]);
  t.is(again.status, 254);
  t.regex(again.stderr, /already exists \(use --overwrite\)/);

  t.is((await podlogAsync(s.dataDir, ['image', 'extract', id, s.input('extracted')])).status, 0);
  t.true(existsSync(s.input('extracted/bin/busybox')), 'extract writes the rootfs only');
  t.is((await podlogAsync(s.dataDir, ['image', 'render', id, s.input('rendered')])).status, 0);
  t.true(existsSync(s.input('rendered/rootfs/bin/busybox')));
  t.true(existsSync(s.input('rendered/manifest')));

  const verify = await podlogAsync(s.dataDir, ['image', 'verify', id]);
  t.regex(verify.stdout, new RegExp(`^image ${id}: tree deps-sha512-[0-9a-f]{64} ok\n$`));

  const rm = await podlogAsync(s.dataDir, ['image', 'rm', id]);
  t.is(rm.status, 0, rm.stderr);
  t.regex(rm.stdout, /rm: 1 image\(s\) successfully removed/);
  t.is((await podlogAsync(s.dataDir, ['image', 'list', '--format', 'json'])).stdout.trim(), '[]');
  const missing = await podlogAsync(s.dataDir, ['image', 'rm', id]);
  t.is(missing.status, 254);
  t.regex(missing.stderr, /no image with ID/);
  s.assertContained();
  await s.cleanup();
});

test('image verify finds a damaged tree, records it, and renders it again', async (t) => {
  const s = await sandbox();
  const id = (await podlogAsync(s.dataDir, ['fetch', aciPath('busybox-plain')])).stdout.trim();
  const tree = entries(join(s.dataDir, 'cas', 'tree'))[0]!;
  const motd = join(s.dataDir, 'cas', 'tree', tree, 'rootfs', 'etc', 'hostname');
  writeFileSync(motd, 'tampered\n');
  const r = await podlogAsync(s.dataDir, ['image', 'verify', id]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /was damaged: repaired/);
  t.is(readFileSync(motd, 'utf8'), 'podlog-fixture\n');
  const events = await s.events.readAll({ streamPrefix: 'tree-' });
  t.deepEqual(events.map((e) => e.type), ['TreeRendered', 'TreeDamaged', 'TreeRendered']);
  t.like(events[2]!.data, { repair: true, hash: events[0]!.data.hash });
  await s.cleanup();
});

test('image gc waits for a prepare holding the prepare lock, and keeps the tree that pod uses', async (t) => {
  const s = await sandbox();
  const busybox = (await podlogAsync(s.dataDir, ['fetch', aciPath('busybox-plain')])).stdout.trim();
  t.is((await podlogAsync(s.dataDir, ['fetch', aciPath('worker')])).status, 0);
  const { treeStoreId } = await s.images.render(busybox);
  let gc: Promise<CliResult> | undefined;
  await withPrepareLock(s.dataDir, async () => {
    gc = podlogAsync(s.dataDir, ['image', 'gc']);
    // gc cannot start until this lock is released; a real prepare (which shares the lock) runs meanwhile.
    await new Promise((r) => setTimeout(r, 500));
    const prepared = await podlogAsync(s.dataDir, ['prepare', aciPath('busybox-plain')]);
    t.is(prepared.status, 0, prepared.stderr);
  });
  const r = await gc!;
  t.is(r.status, 0, r.stderr);
  t.deepEqual(entries(join(s.dataDir, 'cas', 'tree')), [treeStoreId], 'the pod’s tree is kept, the other removed');
  t.regex(r.stdout, /removed tree deps-sha512-/);
  const json = JSON.parse((await podlogAsync(s.dataDir, ['image', 'list', '--format', 'json'])).stdout) as Array<{ id: string; lastUsed: string; importTime: string }>;
  t.is(json.length, 2, 'images within the grace period stay');
  t.true(json.find((i) => i.id === busybox)!.lastUsed > json.find((i) => i.id === busybox)!.importTime, 'the pod’s use is the image’s last use');
  const all = await podlogAsync(s.dataDir, ['image', 'gc', '--grace-period', '0s']);
  t.is(all.status, 0, all.stderr);
  t.deepEqual((JSON.parse((await podlogAsync(s.dataDir, ['image', 'list', '--format', 'json'])).stdout) as Array<{ id: string }>).map((i) => i.id), [busybox], 'an image a pod uses stays');
  await s.cleanup();
});

test('three fetches of one image at once: one image, one tree, one event each', async (t) => {
  const s = await sandbox();
  const copies = ['a', 'b', 'c'].map((n) => {
    const p = s.input(`${n}.aci`);
    copyFileSync(aciPath('busybox-gzip'), p);
    return p;
  });
  const results = await Promise.all(copies.map((p) => podlogAsync(s.dataDir, ['fetch', p])));
  for (const r of results) t.is(r.status, 0, r.stderr);
  t.is(new Set(results.map((r) => r.stdout)).size, 1);
  t.is((await s.events.readAll({ types: ['ImageImported'] })).length, 1);
  t.is((await s.events.readAll({ types: ['TreeRendered'] })).length, 1);
  t.is(entries(join(s.dataDir, 'cas', 'tree')).length, 1);
  t.is(entries(join(s.dataDir, 'cas', 'blob')).length, 1);
  t.deepEqual(entries(join(s.dataDir, 'cas', 'tmp')), []);
  await s.cleanup();
});

/** Serves `routes` (path → body, or a handler) on 127.0.0.1; stopped by the returned function. */
const serve = async (routes: Record<string, Buffer | ((res: import('node:http').ServerResponse) => void)>): Promise<{ url: string; stop: () => Promise<void> }> => {
  const server: Server = createServer((req, res) => {
    const route = routes[req.url ?? ''];
    if (route === undefined) {
      res.writeHead(404).end('not here');
    } else if (typeof route === 'function') {
      route(res);
    } else {
      res.writeHead(200, { 'content-length': route.length }).end(route);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, stop: () => new Promise((r) => server.close(() => r())) };
};

test('fetch over http: only with --insecure-options=http; the id is checked against --hash before anything is stored', async (t) => {
  const s = await sandbox();
  const aci = readFileSync(aciPath('busybox-zstd'));
  const id = (await readImage(aciPath('busybox-zstd'))).key;
  const http = await serve({
    '/busybox.aci': aci,
    '/moved.aci': (res) => res.writeHead(302, { location: '/busybox.aci' }).end(),
    '/cut.aci': (res) => {
      res.writeHead(200, { 'content-length': aci.length });
      res.end(aci.subarray(0, 1000));
    },
  });
  try {
    const plain = await podlogAsync(s.dataDir, ['fetch', `${http.url}/busybox.aci`]);
    t.is(plain.status, 254);
    t.is(plain.stderr, `podlog: ${http.url}/busybox.aci: plain http, which only --insecure-options=http allows\n`);
    await assertNothingStored(t, s, 'plain http');

    const wrong = `sha512-${'0'.repeat(64)}`;
    const bad = await podlogAsync(s.dataDir, ['fetch', '--insecure-options=http', `${http.url}/busybox.aci`, '--hash', wrong]);
    t.is(bad.status, 254);
    t.is(bad.stderr, `podlog: ${http.url}/busybox.aci: image hash does not match expected (${id} != ${wrong})\n`);
    await assertNothingStored(t, s, 'wrong hash');

    const notFound = await podlogAsync(s.dataDir, ['fetch', '--insecure-options=http', `${http.url}/nothing.aci`]);
    t.is(notFound.status, 254);
    t.regex(notFound.stderr, /nothing.aci: GET .* answered 404 Not Found/);
    const cut = await podlogAsync(s.dataDir, ['fetch', '--insecure-options=http', `${http.url}/cut.aci`]);
    t.is(cut.status, 254);
    t.regex(cut.stderr, /cut.aci: /);
    await assertNothingStored(t, s, 'failed downloads');

    const ok = await podlogAsync(s.dataDir, ['fetch', '--insecure-options=http', `${http.url}/moved.aci`, '--hash', id]);
    t.is(ok.status, 0, ok.stderr);
    t.is(ok.stdout, `${id}\n`);
    const imported = await s.events.readAll({ types: ['ImageImported'] });
    t.is(imported[0]!.data.source, `${http.url}/moved.aci`);
  } finally {
    await http.stop();
  }
  await s.cleanup();
});

test('a progress bar on a terminal only, and none with --quiet', async (t) => {
  const s = await sandbox();
  const onTty = (args: string) => spawnSync('script', ['-qec', `${join(repoRoot, 'bin', 'podlog')} --dir ${s.dataDir} ${args}`, '/dev/null'], { encoding: 'utf8' });
  const shown = onTty(`fetch ${aciPath('busybox-bzip2')}`);
  t.is(shown.status, 0, shown.stdout);
  t.regex(shown.stdout, /\r\x1b\[K(copying|checking|rendering)/);
  t.regex(shown.stdout, /sha512-[0-9a-f]{64}/);
  const quiet = onTty(`fetch --quiet ${aciPath('busybox-xz')}`);
  t.is(quiet.status, 0, quiet.stdout);
  t.notRegex(quiet.stdout, /\x1b\[K/);
  await s.cleanup();
});
