/**
 * Choosing an image of an OCI layout by its tag (`PATH:TAG`, `--tag`, skopeo's `oci:PATH:TAG`), every
 * image of a layout at once, and telling a layout tar from an ACI by its structure: a `docker save`
 * tar whose small blobs come first, a tar that is neither.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { label } from '../../src/images/aci-manifest.js';
import { guessRef } from '../../src/images/resolve.js';
import { busyboxRootfs } from '../helpers/fixtures.js';
import { refusal } from '../helpers/refusal.js';
import { podlogBin } from '../stage0/harness.js';
import { assertNothingStored, dockerSaveTar, exitProgram, makeAci, makeOciLayout, makeTaggedLayout, manifestFor, sandbox, tarDir, type OciSpec, type Sandbox } from './helpers.js';

const podlog = (dir: string, args: string[]) => spawnSync(podlogBin, ['--dir', dir, ...args], { encoding: 'utf8', timeout: 120_000 });

/** A busybox image whose app exits with `code`. */
const app = (s: Sandbox, code: number): OciSpec => ({
  layers: [{ tar: tarDir(busyboxRootfs, s.input(`busybox-${code}.tar`)), compression: 'none' }],
  config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh', '-c', `exit ${code}`] }, rootfs: { type: 'layers', diff_ids: [] } },
});

/** A layout `two` tagged `one` (app exits 1) and `two` (app exits 2), and its tar. */
const twoTags = (s: Sandbox): { dir: string; tar: string } => {
  const dir = s.input('two');
  makeTaggedLayout(dir, { one: app(s, 1), two: app(s, 2) });
  return { dir, tar: tarDir(dir, s.input('two.tar')) };
};

const versionOf = async (s: Sandbox, id: string): Promise<string | undefined> => label((await s.images.manifest(id)).labels, 'version');

const imageEvents = async (s: Sandbox): Promise<number> => (await s.events.readAll({ types: ['ImageImported'] })).length;

test('a two-tag layout, directory and tar: each tag chooses its image; no tag, or an unknown one, is refused naming the tags', async (t) => {
  const s = await sandbox();
  const { dir, tar } = twoTags(s);
  const one = await s.images.importFile(dir, { tag: 'one' });
  const two = await s.images.importFile(dir, { tag: 'two' });
  t.not(one.id, two.id);
  t.deepEqual([one.name, await versionOf(s, one.id), two.name, await versionOf(s, two.id)], ['two', 'one', 'two', 'two'], 'named by the layout, versioned by the tag');
  t.deepEqual((await s.images.manifest(two.id)).app?.exec, ['/bin/sh', '-c', 'exit 2']);
  for (const path of [dir, tar]) {
    t.is((await s.images.importFile(path, { tag: 'one' })).id, one.id, `${path}: one`);
    t.is((await s.images.importFile(path, { tag: 'two' })).id, two.id, `${path}: two`);
    const unknown = await refusal(s.images.importFile(path, { tag: 'three' }));
    t.is(unknown.code, 'ENOTAG');
    t.is(unknown.message, `${path}: the OCI layout has no image tagged "three" (its tags: one, two)`);
    const ambiguous = await refusal(s.images.importFile(path));
    t.is(ambiguous.message, `${path}: the OCI layout holds 2 images (its tags: one, two): choose one as PATH:TAG or with --tag`);
  }
  t.is(await imageEvents(s), 2, 'each image imported once');
  s.assertContained();
  await s.cleanup();
});

test('references: PATH:TAG and oci:PATH[:TAG] resolve wherever an image is accepted; a file named with a colon wins as typed', async (t) => {
  const s = await sandbox();
  const { dir, tar } = twoTags(s);
  const one = await s.images.importFile(dir, { tag: 'one' });
  const two = await s.images.importFile(dir, { tag: 'two' });
  t.deepEqual(guessRef(`${dir}:two`), { kind: 'path', path: dir, tag: 'two' });
  t.deepEqual(guessRef(`oci:${tar}:one`), { kind: 'path', path: tar, tag: 'one' });
  t.deepEqual(guessRef(`oci-archive:${tar}`), { kind: 'path', path: tar });
  // A directory that is no layout is no path to tag: `src` (in the repository, ava's cwd) stays a name.
  t.deepEqual(guessRef('src:1.0'), { kind: 'name', name: 'src', labels: [{ name: 'version', value: '1.0' }] });
  t.is((await s.images.resolve(`${dir}:one`)).id, one.id);
  t.is((await s.images.resolve(`${tar}:two`)).id, two.id);
  t.is((await s.images.resolve(`oci:${dir}:two`)).id, two.id);
  t.is((await s.images.resolve(`oci-archive:${tar}:one`)).id, one.id);
  t.regex((await refusal(s.images.resolve(`oci:${dir}`))).message, /holds 2 images \(its tags: one, two\)/);
  // A tag given for an ACI is refused, not ignored.
  const aci = makeAci(s.input('app.aci'), { manifest: manifestFor('example.com/app'), busybox: false });
  t.is((await refusal(s.images.resolve(`${aci}:one`))).message, `${aci}: an ACI has no tags ("one" chooses an image of an OCI layout)`);
  // `two:one` exists as a layout of its own (tag `other`), next to the layout `two`.
  const colon = `${dir}:one`;
  makeTaggedLayout(colon, { other: app(s, 3) });
  t.deepEqual(guessRef(colon), { kind: 'path', path: colon });
  t.deepEqual(guessRef(`${colon}:other`), { kind: 'path', path: colon, tag: 'other' });
  const other = await s.images.resolve(colon);
  t.deepEqual((await s.images.manifest(other.id)).app?.exec, ['/bin/sh', '-c', 'exit 3']);
  s.assertContained();
  await s.cleanup();
});

test('podlog fetch: LAYOUT:TAG, --tag, oci:, and a layout with several images imports all, one id a line, saying what', async (t) => {
  const s = await sandbox();
  const { dir, tar } = twoTags(s);
  const all = podlog(s.dataDir, ['fetch', tar]);
  t.is(all.status, 0, all.stderr);
  const ids = all.stdout.trim().split('\n');
  t.is(ids.length, 2);
  const [one = '', two = ''] = ids;
  t.is(all.stderr, `${tar}: imported 2 images, one per tag: two:one, two:two\n`);
  const byTag = (args: string[]): string => {
    const r = podlog(s.dataDir, ['fetch', ...args]);
    t.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr, '', args.join(' '));
    return r.stdout.trim();
  };
  t.is(byTag([`${dir}:one`]), one);
  t.is(byTag(['--tag', 'two', dir]), two);
  t.is(byTag([`oci:${tar}:two`]), two);
  t.is(byTag([`oci:${dir}:one`, `${tar}:two`]), `${one}\n${two}`);
  const unknown = podlog(s.dataDir, ['fetch', `${dir}:three`]);
  t.is(unknown.status, 254);
  t.is(unknown.stderr, `podlog: ${dir}: the OCI layout has no image tagged "three" (its tags: one, two)\n`);
  const both = podlog(s.dataDir, ['fetch', '--tag', 'one', `${dir}:two`]);
  t.is(both.status, 254);
  t.regex(both.stderr, /names its tag; --tag one cannot name another/);
  const list = podlog(s.dataDir, ['image', 'list', '--format', 'json']);
  t.is((JSON.parse(list.stdout) as unknown[]).length, 2, 'two images, imported once each');
  t.is(await imageEvents(s), 2);
  // Each tag runs its own image.
  t.is(podlog(s.dataDir, ['run', `${dir}:two`]).status, 2);
  t.is(podlog(s.dataDir, ['run', `oci:${tar}:one`]).status, 1);
  await s.cleanup();
});

/** An image whose blobs take a few KiB: its one file is a program that exits with `code`. */
const small = (s: Sandbox, code: number): OciSpec => {
  const root = s.input(`exit-${code}`);
  mkdirSync(root);
  writeFileSync(join(root, 'exit'), exitProgram(code), { mode: 0o755 });
  return {
    layers: [{ tar: tarDir(root, s.input(`exit-${code}.tar`)), compression: 'none' }],
    config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['/exit'] }, rootfs: { type: 'layers', diff_ids: [] } },
  };
};

test('a docker save tar with small blobs (blobs/ first, or manifest.json and repositories first) is a layout: it imports and runs', async (t) => {
  const s = await sandbox();
  for (const dockerOrder of [true, false]) {
    const layout = s.input(`saved-${dockerOrder}`);
    makeOciLayout(layout, small(s, dockerOrder ? 7 : 8));
    const tar = dockerSaveTar(layout, s.input(`saved-${dockerOrder}.tar`), `hello:${dockerOrder}`, dockerOrder);
    const listed = spawnSync('tar', ['-tf', tar], { encoding: 'utf8' }).stdout.split('\n');
    if (dockerOrder) t.deepEqual(listed.filter((n) => !n.startsWith('blobs/')).slice(0, 4), ['index.json', 'manifest.json', 'oci-layout', 'repositories']);
    t.true(listed.slice(0, 8).includes('manifest.json'), 'the first 8 entries, which the old detection read, hold manifest.json');
    const fetched = podlog(s.dataDir, ['fetch', tar]);
    t.is(fetched.status, 0, fetched.stderr);
    const image = await s.images.resolve(`docker.io/library/hello:${dockerOrder}`);
    t.is(image.id, fetched.stdout.trim());
    t.is(image.format, 'oci');
    const run = podlog(s.dataDir, ['run', tar]);
    t.is(run.status, dockerOrder ? 7 : 8, run.stderr);
  }
  await s.cleanup();
});

test('a tar that is neither a layout nor an ACI is refused naming both; nothing is stored', async (t) => {
  const s = await sandbox();
  const cases: Array<[string, string[], string]> = [
    ['foreign', ['foo', 'bar'], 'it has none of these entries'],
    ['half-layout', ['oci-layout', 'blobs/x'], 'it has only oci-layout'],
    ['half-aci', ['manifest'], 'it has only manifest'],
  ];
  for (const [name, files, why] of cases) {
    const stage = s.input(name);
    for (const f of files) {
      mkdirSync(join(stage, f, '..'), { recursive: true });
      writeFileSync(join(stage, f), '{}');
    }
    const tar = tarDir(stage, s.input(`${name}.tar`));
    const expected = `${tar}: ${why}: neither an OCI image layout (oci-layout and index.json) nor an ACI (manifest and rootfs/)`;
    const e = await refusal(s.images.importFile(tar));
    t.is(e.code, 'EBADARCHIVE');
    t.is(e.message, expected);
    spawnSync('gzip', ['-k', tar]);
    t.is((await refusal(s.images.importFile(`${tar}.gz`))).message, expected.replace(tar, `${tar}.gz`), `${name}: gzip-compressed too`);
    const r = podlog(s.dataDir, ['fetch', tar]);
    t.is(r.status, 254);
    t.is(r.stderr, `podlog: ${expected}\n`);
  }
  const empty = s.input('empty.tar');
  spawnSync('tar', ['-cf', empty, '-T', '/dev/null']);
  t.regex((await refusal(s.images.importFile(empty))).message, /empty.tar: an empty tar archive: neither an OCI image layout/);
  await assertNothingStored(t, s, 'refused');
  await s.cleanup();
});

test('one image under several names: a second tag of its manifest, in the same layout or another, names it too; the newest fetch of a name wins; rm by any name removes it', async (t) => {
  const s = await sandbox();
  const dir = s.input('app');
  makeTaggedLayout(dir, { v1: app(s, 1), v2: app(s, 1) });
  const both = podlog(s.dataDir, ['fetch', dir]);
  t.is(both.status, 0, both.stderr);
  const [id = '', again] = both.stdout.trim().split('\n');
  t.is(again, id, 'one manifest, one image');
  t.is(both.stderr, `${dir}: imported 2 images, one per tag: app:v1, app:v2\n`);
  const list = (): Array<{ id: string; name: string; labels: unknown; latest: boolean; names: Array<{ name: string; labels: Array<{ name: string; value: string }> }> }> =>
    JSON.parse(podlog(s.dataDir, ['image', 'list', '--format', 'json']).stdout);
  const [row, ...others] = list();
  t.deepEqual(others, [], 'one row per image');
  t.like(row, { id, name: 'app', latest: true });
  t.deepEqual(row!.names.map((n) => [n.name, label(n.labels, 'version')]), [['app', 'v1'], ['app', 'v2']]);
  t.regex(podlog(s.dataDir, ['image', 'list', '--no-legend']).stdout, /^sha512-[0-9a-f]{12}\s+app:v2\s/, 'NAME is the newest name');
  t.is(podlog(s.dataDir, ['run', 'app:v1']).status, 1, 'the first name still resolves');
  t.is(podlog(s.dataDir, ['run', 'app:v2']).status, 1, 'and the second');
  t.is((await s.events.readAll({ types: ['ImageTagged'] })).length, 1);
  t.is(podlog(s.dataDir, ['fetch', `${dir}:v2`]).status, 0);
  t.is((await s.events.readAll({ types: ['ImageTagged'] })).length, 1, 'fetching a name the image has, its newest, records nothing');

  // Another layout (another name) of the same manifest; then `app:v2` moves to another image and back.
  const other = s.input('other');
  makeTaggedLayout(other, { v3: app(s, 1) });
  t.is(podlog(s.dataDir, ['fetch', other]).stdout.trim(), id);
  t.is((await s.images.resolve('other:v3')).id, id);
  const moved = s.input('moved/app');
  makeTaggedLayout(moved, { v2: app(s, 2) });
  const second = podlog(s.dataDir, ['fetch', moved]).stdout.trim();
  t.not(second, id);
  t.is(podlog(s.dataDir, ['run', 'app:v2']).status, 2, 'the newest import of app:v2');
  t.is(podlog(s.dataDir, ['fetch', `${dir}:v2`]).stdout.trim(), id);
  t.is(podlog(s.dataDir, ['run', 'app:v2']).status, 1, 'fetched again, app:v2 is the first image again');
  t.is(podlog(s.dataDir, ['run', 'app']).status, 1, 'and app, with no version, too');
  t.deepEqual(list().map((i) => [i.id, i.name, label(i.names.at(-1)!.labels, 'version'), i.latest]), [[id, 'app', 'v2', true], [second, 'app', 'v2', false]]);

  const rm = podlog(s.dataDir, ['image', 'rm', 'other:v3']);
  t.is(rm.status, 0, rm.stderr);
  t.is(rm.stdout, `removed image ${id} (app:v2)\nrm: 1 image(s) successfully removed\n`, 'rm by any name removes the image');
  t.deepEqual(list().map((i) => i.id), [second]);
  t.is(podlog(s.dataDir, ['run', 'app:v1']).status, 254, 'none of its names is left');
  await s.cleanup();
});
