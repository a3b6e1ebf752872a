/**
 * OCI layers are stored and rendered once for every image that has them (src/images/layer-store.ts):
 * two images over one base keep one copy of its blob and one rendering of it, run as their own
 * layers say, and removing one leaves the other runnable; `image gc` frees a layer only when no image
 * or tree uses it.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs } from '../helpers/fixtures.js';
import { podlogBin } from '../stage0/harness.js';
import { entries, makeTaggedLayout, sandbox, tarDir, type OciSpec, type Sandbox } from './helpers.js';

const podlog = (dir: string, args: string[]) => spawnSync(podlogBin, ['--dir', dir, ...args], { encoding: 'utf8', timeout: 120_000 });

/** A layer tar of `files` (path → content), plus whiteouts (`.wh.` files) for `remove`. */
const layer = (s: Sandbox, name: string, files: Record<string, string>, remove: string[] = []): string => {
  const dir = s.input(`${name}-tree`);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  for (const path of remove) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path, '..', `.wh.${path.split('/').at(-1)!}`), '');
  }
  return tarDir(dir, s.input(`${name}.tar`));
};

/** An image of the shared busybox base and a layer of its own; its app prints /etc/which and whether /bin/vi is there. */
const image = (base: string, own: string): OciSpec => ({
  layers: [{ tar: base }, { tar: own }],
  config: {
    architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] },
    config: { Cmd: ['/bin/sh', '-c', 'cat /etc/which; if [ -e /bin/vi ]; then echo vi; else echo no vi; fi'] },
  },
});

const cas = (s: Sandbox, dir: string): string[] => entries(join(s.dataDir, 'cas', dir)).sort();

test('two images over one base store its blob and its rendering once, run apart, and outlive each other', async (t) => {
  const s = await sandbox();
  const base = tarDir(busyboxRootfs, s.input('base.tar'));
  const layout = s.input('pair');
  makeTaggedLayout(layout, {
    a: image(base, layer(s, 'a', { 'etc/which': 'A\n' })),
    b: image(base, layer(s, 'b', { 'etc/which': 'B\n' }, ['bin/vi'])),
  });
  const a = await s.images.importFile(layout, { tag: 'a' });
  t.is(cas(s, 'layers').length, 2);
  const b = await s.images.importFile(layout, { tag: 'b' });
  t.is(a.layers![0]!.key, b.layers![0]!.key, 'one chain key for the shared base');
  t.not(a.layers![1]!.key, b.layers![1]!.key);
  t.is(cas(s, 'layer-blob').length, 3, 'blobs: the base once, and one of its own each');
  t.deepEqual(cas(s, 'layers'), [...new Set([...a.layers!, ...b.layers!].map((x) => x.key))].sort(), 'rendered layers: the base once');
  t.deepEqual(
    (await s.events.readAll({ types: ['LayerRendered'] })).map((e) => e.data.key),
    [a.layers![0]!.key, a.layers![1]!.key, b.layers![1]!.key],
    'the second import rendered only its own layer',
  );

  const run = (ref: string) => podlog(s.dataDir, ['run', ref]);
  t.is(run(`${layout}:a`).stdout, 'A\nvi\n');
  t.is(run(`${layout}:b`).stdout, 'B\nno vi\n', "b's whiteout hides the base's /bin/vi in b only");
  t.is(run(`${layout}:a`).stdout, 'A\nvi\n');

  t.is(podlog(s.dataDir, ['image', 'rm', a.id]).status, 0);
  t.is(cas(s, 'layer-blob').length, 2, "image rm removed a's own blob and kept the shared one");
  const gc = podlog(s.dataDir, ['gc', '--grace-period=0s']);
  t.is(gc.status, 0, gc.stderr);
  // Within the grace period b stays: only trees no pod uses, and layers no image or tree uses, go.
  const imageGc = podlog(s.dataDir, ['image', 'gc']);
  t.is(imageGc.status, 0, imageGc.stderr);
  t.regex(imageGc.stdout, new RegExp(`removed layer ${a.layers![1]!.key}`));
  t.deepEqual(cas(s, 'layers'), b.layers!.map((x) => x.key).sort(), "gc freed a's layer only");
  t.is(run(b.id).stdout, 'B\nno vi\n', 'b still runs');

  t.is(podlog(s.dataDir, ['image', 'rm', b.id]).status, 0);
  t.is(podlog(s.dataDir, ['gc', '--grace-period=0s']).status, 0);
  t.is(podlog(s.dataDir, ['image', 'gc', '--grace-period=0s']).status, 0);
  for (const dir of ['layers', 'layer-blob', 'tree', 'oci']) t.deepEqual(cas(s, dir), [], `cas/${dir} is empty`);
  t.deepEqual(readdirSync(join(s.dataDir, 'cas', 'tmp')), []);
  s.assertContained();
  await s.cleanup();
});

test('a damaged layer is found by image verify and rendered again over the layers below', async (t) => {
  const s = await sandbox();
  const base = tarDir(busyboxRootfs, s.input('base.tar'));
  const layout = s.input('one');
  makeTaggedLayout(layout, { b: image(base, layer(s, 'b', { 'etc/which': 'B\n' }, ['bin/vi'])) });
  const b = await s.images.importFile(layout, { tag: 'b' });
  const top = b.layers![1]!.key;
  writeFileSync(join(s.dataDir, 'cas', 'layers', top, 'rootfs', 'etc', 'which'), 'tampered\n');
  const verify = podlog(s.dataDir, ['image', 'verify', b.id]);
  t.is(verify.status, 0, verify.stderr);
  t.deepEqual((await s.events.readAll({ types: ['LayerDamaged'] })).map((e) => e.data.key), [top]);
  t.like((await s.events.readAll({ types: ['LayerRendered'] })).at(-1)!.data, { key: top, repair: true });
  t.is(podlog(s.dataDir, ['run', b.id]).stdout, 'B\nno vi\n', 'the repaired layer still hides the base file');
  s.assertContained();
  await s.cleanup();
});
