/**
 * Size limits on what OCI layers and ACIs unpack to, as a user meets them: fetch's --max-layer-size and
 * --max-image-size, the data dir's config.json, and the compression-ratio limit, on gzip bombs built
 * here (MiBs of zeros that gzip to KiBs). A refused image leaves nothing in the store.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';
import { assertNothingStored, entries, makeAci, makeOciLayout, manifestFor, sandbox, tarDir, type Sandbox } from './helpers.js';

const MiB = 2 ** 20;

const podlog = (dir: string, args: string[]): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(join(repoRoot, 'bin', 'podlog'), ['--dir', dir, ...args], { encoding: 'utf8' });

/** A layout whose layers each hold one file of `mib` MiB of zeros; returns it and its layers' digests. */
const bomb = (s: Sandbox, name: string, mibs: number[]): { layout: string; digests: string[] } => {
  const layers = mibs.map((mib, i) => {
    const dir = s.input(`${name}-${i}`);
    mkdirSync(dir);
    writeFileSync(join(dir, `zeros${i}`), Buffer.alloc(mib * MiB));
    return { tar: tarDir(dir, s.input(`${name}-${i}.tar`)), compression: 'gzip' as const };
  });
  const layout = s.input(name);
  const { layers: paths } = makeOciLayout(layout, { layers });
  return { layout, digests: paths.map((p) => `sha256:${p.split('/').pop()!}`) };
};


test('a gzip bomb past --max-layer-size is refused, naming the layer and the limit, and nothing is stored', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const { layout, digests } = bomb(s, 'bomb', [8]);
  const r = podlog(s.dataDir, ['fetch', '--max-layer-size', '1MiB', layout]);
  t.is(r.status, 254, r.stderr);
  t.regex(r.stderr, new RegExp(`layer ${digests[0]}: it unpacks to more than 1048576 bytes, the layer size limit`));
  t.notRegex(r.stderr, /cas\/tmp/, 'the store\'s staging path is not shown');
  await assertNothingStored(t, s, '--max-layer-size');
});

test('an ACI bomb past --max-image-size is refused while it is checked and rendered, and nothing is stored', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const aci = makeAci(s.input('bomb.aci'), { manifest: manifestFor('example.com/bomb'), busybox: false, files: { zeros: '\0'.repeat(8 * MiB) }, compress: 'gzip' });
  const r = podlog(s.dataDir, ['fetch', '--max-image-size', '1MiB', aci]);
  t.is(r.status, 254, r.stderr);
  t.is(r.stderr, `podlog: ${aci}: it unpacks to more than 1048576 bytes, the image size limit (1048576 bytes)\n`);
  await assertNothingStored(t, s, 'ACI --max-image-size');
  t.is(podlog(s.dataDir, ['fetch', '--max-image-size', '9MiB', aci]).status, 0, 'within the limit it imports');
});

test('layers that together pass --max-image-size are refused at the layer that crosses it', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const { layout, digests } = bomb(s, 'two', [3, 3]);
  const r = podlog(s.dataDir, ['fetch', '--max-image-size', '5MiB', layout]);
  t.is(r.status, 254, r.stderr);
  t.regex(r.stderr, new RegExp(`layer ${digests[1]}: it unpacks to more than \\d+ bytes, the image size limit \\(5242880 bytes\\) less the \\d+ bytes of the layers below`));
  await assertNothingStored(t, s, '--max-image-size');
});

test("config.json sets the limits, fetch's flags override it, and image list shows both sizes", async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const { layout, digests } = bomb(s, 'bomb', [8]);
  writeFileSync(join(s.dataDir, 'config.json'), JSON.stringify({ images: { maxLayerSize: '2MiB' } }));
  const refused = podlog(s.dataDir, ['fetch', layout]);
  t.is(refused.status, 254, refused.stderr);
  t.regex(refused.stderr, /more than 2097152 bytes, the layer size limit/);
  await assertNothingStored(t, s, 'config.json');

  // The ratio limit, with its floor lowered so that a small bomb reaches it.
  writeFileSync(join(s.dataDir, 'config.json'), JSON.stringify({ images: { ratioFloor: '1MiB', maxRatio: 100 } }));
  const ratio = podlog(s.dataDir, ['fetch', layout]);
  t.is(ratio.status, 254, ratio.stderr);
  t.regex(ratio.stderr, new RegExp(`layer ${digests[0]}: it unpacks to more than 100 times its \\d+ compressed bytes \\(past 1048576 bytes\\): a compression bomb`));
  await assertNothingStored(t, s, 'ratio');

  writeFileSync(join(s.dataDir, 'config.json'), JSON.stringify({ images: { maxLayerSize: '2MiB' } }));
  const fetched = podlog(s.dataDir, ['fetch', '--max-layer-size', '16MiB', layout]);
  t.is(fetched.status, 0, fetched.stderr);
  const [image] = JSON.parse(podlog(s.dataDir, ['image', 'list', '--format', 'json']).stdout) as Array<{ storedSize: number; unpackedSize: number }>;
  t.true(image!.storedSize < 100 * 1024, `stored ${image!.storedSize}`);
  t.true(image!.unpackedSize > 8 * MiB && image!.unpackedSize < 9 * MiB, `unpacked ${image!.unpackedSize}`);
  t.regex(podlog(s.dataDir, ['image', 'list']).stdout, /\d+(\.\d)?KiB \(8\.0MiB unpacked\)/);
});

test('a size flag or a config.json podlog cannot read is refused before anything is created', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const { layout } = bomb(s, 'small', [1]);
  const flag = podlog(join(s.root, 'fresh'), ['fetch', '--max-image-size', 'lots', layout]);
  t.is(flag.status, 254);
  t.regex(flag.stderr, /--max-image-size: invalid size "lots"/);
  t.deepEqual(entries(join(s.root, 'fresh')), []);
  for (const [config, why] of [
    ['{"images": {"maxLayerSise": "1GiB"}}', /unknown setting "images\.maxLayerSise"/],
    ['{"image": {}}', /unknown setting "image"/],
    ['{"images": {"maxImageSize": "-1"}}', /invalid size "-1"/],
    ['not json', /not JSON/],
  ] as const) {
    writeFileSync(join(s.dataDir, 'config.json'), config);
    const r = podlog(s.dataDir, ['fetch', layout]);
    t.is(r.status, 254, config);
    t.regex(r.stderr, why);
    t.regex(r.stderr, /config\.json/);
  }
  await assertNothingStored(t, s, 'bad config');
});
