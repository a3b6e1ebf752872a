import test from 'ava';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { appcArch, manifestFromConfig } from '../../src/images/oci-config.js';
import { busyboxRootfs, fixturesDir } from '../helpers/fixtures.js';
import { assertNothingStored, makeOciLayout, renderedRootfs, sandbox, tarDir } from './helpers.js';
import { refusal } from '../helpers/refusal.js';

const hostile = (name: string): string => join(fixturesDir, 'hostile', name);


const config = {
  architecture: 'amd64',
  os: 'linux',
  created: '2026-01-01T00:00:00Z',
  config: {
    User: '1000',
    Env: ['PATH=/usr/bin:/bin', 'GREETING=hello world'],
    Entrypoint: ['/bin/sh', '-c'],
    Cmd: ['echo $GREETING'],
    WorkingDir: '/home/user',
    ExposedPorts: { '8080/tcp': {} },
  },
  rootfs: { type: 'layers', diff_ids: [] },
};

test('an OCI layout directory imports, maps its config to an app, and renders like an ACI', async (t) => {
  const s = await sandbox();
  const base = tarDir(busyboxRootfs, s.input('busybox.tar'));
  const layout = s.input('busybox-oci');
  makeOciLayout(layout, { layers: [{ tar: base, compression: 'gzip' }], config, annotations: { 'org.opencontainers.image.ref.name': 'docker.io/library/busybox:1.36' } });
  const image = await s.images.importFile(layout);
  t.regex(image.id, /^sha512-[0-9a-f]{64}$/);
  t.is(image.format, 'oci');
  t.is(image.name, 'docker.io/library/busybox');
  const manifest = await s.images.manifest(image.id);
  t.deepEqual(manifest.labels, [{ name: 'version', value: '1.36' }, { name: 'os', value: 'linux' }, { name: 'arch', value: 'amd64' }]);
  t.like(manifest.app, {
    exec: ['/bin/sh', '-c', 'echo $GREETING'],
    user: '1000',
    workingDirectory: '/home/user',
    environment: [{ name: 'PATH', value: '/usr/bin:/bin' }, { name: 'GREETING', value: 'hello world' }],
    ports: [{ name: '8080-tcp', protocol: 'tcp', port: 8080 }],
  });
  t.is((await s.images.resolve('docker.io/library/busybox:1.36')).id, image.id);
  t.is(manifest.app?.group, undefined, "a user alone keeps no group: stage1 takes the user's groups from the image");
  const { path } = await s.images.render(image.id);
  t.is(readFileSync(join(path, 'layers'), 'utf8'), `${image.layers![0]!.key}\n`, 'the tree is the stack of its one layer');
  t.is(spawnSync(join(await renderedRootfs(s, image.id, 'one'), 'bin', 'busybox'), ['echo', 'ok'], { encoding: 'utf8' }).stdout, 'ok\n');
  // The layout is no longer needed: its blobs were copied, checked, into the store.
  rmSync(layout, { recursive: true });
  rmSync(path, { recursive: true });
  t.deepEqual(await s.images.render(image.id), { treeStoreId: (await s.images.render(image.id)).treeStoreId, path });
  t.true(existsSync(join(path, 'layers')));
  t.like((await s.events.readAll({ types: ['TreeRendered'] })).at(-1)!.data, { repair: true });
  t.is((await s.events.readAll({ types: ['LayerRendered'] })).length, 1, 'its layer was rendered once');
  s.assertContained();
  await s.cleanup();
});

test('layers apply in order with whiteouts, in plain, gzip and zstd', async (t) => {
  const s = await sandbox();
  for (const compression of ['none', 'gzip', 'zstd'] as const) {
    const layout = s.input(`whiteouts-${compression}`);
    makeOciLayout(layout, {
      layers: [
        { tar: hostile('layer-base.tar'), compression },
        { tar: hostile('layer-whiteout-before.tar'), compression },
        { tar: hostile('layer-opaque.tar'), compression },
      ],
    });
    const image = await s.images.importFile(layout);
    const rootfs = await renderedRootfs(s, image.id, compression);
    t.deepEqual(readdirSync(join(rootfs, 'etc')), ['hostname'], `${compression}: etc is opaque`);
    t.deepEqual(readdirSync(join(rootfs, 'bin')), ['ls'], `${compression}: bin/cat is whited out`);
  }
  s.assertContained();
  await s.cleanup();
});

test('an OCI layout tar imports like its directory, with the same id, in any of the five compressions', async (t) => {
  const s = await sandbox();
  const layout = s.input('layout');
  makeOciLayout(layout, { layers: [{ tar: hostile('layer-base.tar') }] });
  const fromDir = await s.images.importFile(layout);
  const tar = tarDir(layout, s.input('layout.tar'));
  t.is((await s.images.importFile(tar)).id, fromDir.id);
  for (const [tool, suffix] of [['gzip', 'gz'], ['bzip2', 'bz2'], ['xz', 'xz'], ['zstd', 'zst']] as const) {
    spawnSync(tool, ['-q', '-k', tar]);
    t.is((await s.images.importFile(`${tar}.${suffix}`)).id, fromDir.id, `${tool}-compressed too`);
  }
  t.is((await s.events.readAll({ types: ['ImageImported'] })).length, 1);
  await s.cleanup();
});

test('a missing blob is refused, naming the layout and the blob; nothing is stored', async (t) => {
  const s = await sandbox();
  const layout = s.input('missing');
  const { layers } = makeOciLayout(layout, { layers: [{ tar: hostile('layer-base.tar') }] });
  rmSync(layers[0]!);
  const e = await refusal(s.images.importFile(layout));
  t.is(e.code, 'EBADLAYOUT');
  t.regex(e.message, /missing: layer sha256:[0-9a-f]{64} is missing \(no blobs\/sha256\/[0-9a-f]{64}\)/);
  await assertNothingStored(t, s, 'refused');
  await s.cleanup();
});

test('a blob whose content does not match its digest is refused; nothing is stored', async (t) => {
  const s = await sandbox();
  const layout = s.input('tampered');
  const { layers } = makeOciLayout(layout, { layers: [{ tar: hostile('layer-base.tar') }] });
  appendFileSync(layers[0]!, 'tampered');
  const e = await refusal(s.images.importFile(layout));
  t.is(e.code, 'EDIGEST');
  t.regex(e.message, /tampered: layer sha256:[0-9a-f]{64} does not match its digest/);
  await assertNothingStored(t, s, 'refused');
  await s.cleanup();
});

test('whiteouts pointing outside their layer are refused; nothing is stored', async (t) => {
  const s = await sandbox();
  for (const bad of ['layer-whiteout-escape.tar', 'layer-whiteout-dotdot.tar']) {
    const layout = s.input(bad);
    makeOciLayout(layout, { layers: [{ tar: hostile('layer-base.tar') }, { tar: hostile(bad) }] });
    const e = await refusal(s.images.importFile(layout));
    t.is(e.code, 'EHOSTILE_ARCHIVE', bad);
    t.true(e.message.startsWith(`${layout}: layer sha256:`), e.message);
  }
  await assertNothingStored(t, s, 'refused');
  await s.cleanup();
});

test('an unknown layer media type, a layout without oci-layout, and a bad index are refused', async (t) => {
  const s = await sandbox();
  const foreign = s.input('foreign');
  makeOciLayout(foreign, { layers: [{ tar: hostile('layer-base.tar'), mediaType: 'application/vnd.oci.image.layer.v1.tar+encrypted' }] });
  t.regex((await refusal(s.images.importFile(foreign))).message, /media type "application\/vnd.oci.image.layer.v1.tar\+encrypted", which podlog does not extract/);
  const bare = s.input('bare');
  makeOciLayout(bare, { layers: [{ tar: hostile('layer-base.tar') }] });
  rmSync(join(bare, 'oci-layout'));
  t.regex((await refusal(s.images.importFile(bare))).message, /bare: not an OCI image layout \(no oci-layout file\)/);
  const broken = s.input('broken');
  makeOciLayout(broken, { layers: [{ tar: hostile('layer-base.tar') }] });
  appendFileSync(join(broken, 'index.json'), '}}');
  t.regex((await refusal(s.images.importFile(broken))).message, /broken: index.json is not valid JSON/);
  await assertNothingStored(t, s, 'refused');
  await s.cleanup();
});

test('OCI config mapping: defaults, user:group, arch names', (t) => {
  t.like(manifestFromConfig({ config: {} }, 'example.com/x', undefined).app, { user: '0', group: '0', workingDirectory: '/' });
  t.like(manifestFromConfig({ config: { User: 'www:www', Cmd: ['httpd'] } }, 'example.com/x', 'v1').app, { user: 'www', group: 'www', exec: ['httpd'] });
  t.is(appcArch('arm64'), 'aarch64');
  t.is(appcArch('386'), 'i386');
  t.is(appcArch('arm', 'v6'), 'armv6l');
  t.is(appcArch('arm', 'v7'), 'armv7l');
});
