/**
 * The OCI image layout reader (index.json, nested indexes, image manifests, configs and blobs) under
 * generated layouts written to disk: a valid layout yields the image for this host's platform, with
 * its id, digest and annotations, and stages its layers in order, byte for byte; a layout with a
 * mutated document (any field removed, replaced or added) or a damaged blob is read and staged, or
 * refused with a PodlogError of the layout's codes, and nothing else is ever thrown.
 */
import test from 'ava';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodlogError } from '../../src/errors.js';
import { OciReader } from '../../src/images/oci-layout.js';
import { progressFor } from '../../src/images/progress.js';
import { mutate, mutation, toText, type Json, type Mutation } from './json-mutations.js';

const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
const HOST = { os: 'linux', architecture: HOST_ARCH[process.arch] ?? process.arch };
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar';
const CODES = ['EBADLAYOUT', 'EBADMANIFEST', 'EDIGEST', 'ENOTAG'];
const silent = progressFor(true);

interface ImageSpec {
  config: Json;
  layers: string[];
}

interface LayoutSpec {
  /** The host's image, and images for other platforms: one image (a tag) for several platforms. */
  host: ImageSpec;
  others: Array<ImageSpec & { architecture: string }>;
  annotations: Record<string, string>;
  /** Whether index.json points at a nested index that lists the images. */
  nested: boolean;
}

/** Which document a mutation applies to, or which blob is damaged and how. */
type Fault =
  | { doc: 'index' | 'nested' | 'manifest' | 'config'; change: Mutation }
  | { blob: 'layer' | 'config' | 'manifest'; damage: 'missing' | 'changed' | 'size' };

const image: fc.Arbitrary<ImageSpec> = fc.record({
  config: fc.record({
    architecture: fc.constant(HOST.architecture),
    os: fc.constant('linux'),
    config: fc.record({ User: fc.constantFrom('', '1000', '1000:100'), Cmd: fc.array(fc.constantFrom('/bin/sh', '-c', 'true'), { maxLength: 3 }) }),
  }),
  layers: fc.array(fc.string({ maxLength: 16 }), { maxLength: 3 }),
});

const layout: fc.Arbitrary<LayoutSpec> = fc.record({
  host: image,
  others: fc.array(image.map((i) => ({ ...i, architecture: 'mips64' })), { maxLength: 2 }),
  annotations: fc.dictionary(fc.constantFrom('org.opencontainers.image.ref.name', 'io.containerd.image.name', 'x'), fc.constantFrom('latest', 'example.com/app:1.0'), { maxKeys: 2 }),
  nested: fc.boolean(),
});

const fault: fc.Arbitrary<Fault> = fc.oneof(
  { arbitrary: fc.record({ doc: fc.constantFrom('index', 'nested', 'manifest', 'config'), change: mutation(['manifests', 'mediaType', 'digest', 'size', 'platform', 'annotations', 'config', 'layers', 'os', 'architecture']) }), weight: 4 },
  { arbitrary: fc.record({ blob: fc.constantFrom('layer', 'config', 'manifest'), damage: fc.constantFrom('missing', 'changed', 'size') }), weight: 1 },
);

interface Written {
  dir: string;
  /** The host image's manifest descriptor, and its layers' contents and digests. */
  manifest: { digest: string; bytes: Buffer; annotations: Record<string, string> };
  layers: Array<{ digest: string; bytes: Buffer }>;
}

/** Writes the layout into a fresh directory under `root`, with `fault` applied as it is written. */
const write = (root: string, spec: LayoutSpec, fault?: Fault): Written => {
  const dir = mkdtempSync(join(root, 'layout-'));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const doc = (kind: string, v: Json): Buffer => Buffer.from(fault && 'doc' in fault && fault.doc === kind ? toText(mutate(v, fault.change).value) : JSON.stringify(v));
  const blob = (kind: string | undefined, bytes: Buffer, mediaType: string): { mediaType: string; digest: string; size: number } => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const damage = fault && 'blob' in fault && fault.blob === kind ? fault.damage : undefined;
    const path = join(dir, 'blobs', 'sha256', digest.slice(7));
    if (damage !== 'missing') writeFileSync(path, damage === 'changed' ? Buffer.concat([bytes, Buffer.from('!')]) : bytes);
    return { mediaType, digest, size: bytes.length + (damage === 'size' ? 1 : 0) };
  };
  const host = { digest: '', bytes: Buffer.alloc(0), annotations: spec.annotations };
  const hostLayers: Written['layers'] = [];
  const descriptors = [{ ...spec.host, architecture: HOST.architecture }, ...spec.others].map((img, i) => {
    const mine = i === 0;
    // The other platforms' blobs differ from the host's: a damaged host blob is not found intact under the same digest.
    const layers = img.layers.map((l) => {
      const bytes = Buffer.from(mine ? l : `${i}:${l}`);
      const d = blob(mine ? 'layer' : undefined, bytes, LAYER);
      if (mine) hostLayers.push({ digest: d.digest, bytes });
      return d;
    });
    const config = blob(
      mine ? 'config' : undefined,
      mine ? doc('config', img.config) : Buffer.from(JSON.stringify({ ...(img.config as object), variant: String(i) })),
      'application/vnd.oci.image.config.v1+json',
    );
    const m = { schemaVersion: 2, mediaType: MANIFEST, config, layers };
    const bytes = mine ? doc('manifest', m) : Buffer.from(JSON.stringify(m));
    const d = blob(mine ? 'manifest' : undefined, bytes, MANIFEST);
    if (mine) Object.assign(host, { digest: d.digest, bytes });
    return { ...d, platform: { os: 'linux', architecture: img.architecture }, annotations: spec.annotations };
  });
  let manifests: Json = descriptors;
  if (spec.nested) {
    const nested = blob(undefined, doc('nested', { schemaVersion: 2, manifests: descriptors }), INDEX);
    manifests = [nested];
  }
  writeFileSync(join(dir, 'index.json'), doc('index', { schemaVersion: 2, manifests }));
  return { dir, manifest: host, layers: hostLayers };
};

/** Reads and stages the layout; a refusal comes back, anything but a PodlogError of the layout's codes is thrown. */
const readAndStage = async (dir: string): Promise<{ image: ReturnType<OciReader['read']>; staged: Awaited<ReturnType<OciReader['stage']>>; stage: string } | PodlogError> => {
  const reader = new OciReader(dir, 'layout');
  const stage = join(dir, 'stage');
  try {
    const image = reader.read();
    return { image, staged: await reader.stage(image, stage, silent, () => undefined), stage };
  } catch (e) {
    if (e instanceof PodlogError && CODES.includes(e.code) && e.exitCode === 254 && e.message.startsWith('layout')) return e;
    throw e;
  }
};

const root = mkdtempSync(join(tmpdir(), 'podlog-oci-property-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

test('a valid layout yields the host image and stages its layers in order', async (t) => {
  const numRuns = 500;
  await fc.assert(
    fc.asyncProperty(layout, async (spec) => {
      const w = write(root, spec);
      const r = await readAndStage(w.dir);
      if (r instanceof PodlogError) throw r;
      t.is(r.image.digest, w.manifest.digest);
      t.is(r.image.id, `sha512-${createHash('sha512').update(w.manifest.bytes).digest('hex').slice(0, 64)}`);
      t.deepEqual(r.image.annotations, spec.nested ? {} : w.manifest.annotations);
      const blob = (digest: string): string => join(r.stage, 'blobs', digest.replace(':', '-'));
      t.deepEqual(r.staged.layers, w.layers.map((l) => ({ digest: l.digest, file: blob(l.digest) })));
      for (const l of w.layers) t.deepEqual(readFileSync(blob(l.digest)), l.bytes);
      t.is(r.staged.size, w.layers.reduce((n, l) => n + l.bytes.length, 0));
      t.deepEqual(r.staged.manifest.app?.exec ?? [], (spec.host.config as { config: { Cmd: string[] } }).config.Cmd);
      rmSync(w.dir, { recursive: true });
    }),
    { numRuns, includeErrorInReport: true },
  );
  t.log(`${numRuns} layouts`);
});

test('a layout with a mutated document or a damaged blob is staged or refused with a layout error', async (t) => {
  const numRuns = 800;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(layout, fault, async (spec, f) => {
      const w = write(root, spec, f);
      const r = await readAndStage(w.dir);
      if (r instanceof PodlogError) refused++;
      // A damaged blob of the host image is always found.
      else if ('blob' in f && !(f.blob === 'layer' && w.layers.length === 0)) throw new Error(`a ${f.damage} ${f.blob} blob went unnoticed`);
      rmSync(w.dir, { recursive: true });
    }),
    { numRuns, includeErrorInReport: true },
  );
  t.log(`${numRuns} damaged layouts: ${refused} refused, the others staged`);
  t.pass();
});

test('a hostile index is refused by the descriptor it holds, not thrown on', async (t) => {
  const deep = `${'['.repeat(50_000)}1${']'.repeat(50_000)}`;
  for (const [what, index] of [
    ['annotation', '{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"org.opencontainers.image.ref.name":7}}]}'],
    ['deep digest', `{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":${deep}}]}`],
    ['deep descriptor', `{"manifests":[${deep}]}`],
  ] as const) {
    const dir = mkdtempSync(join(root, 'hostile-'));
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(dir, 'index.json'), index);
    const r = await readAndStage(dir);
    t.true(r instanceof PodlogError && r.message.length < 500, `${what}: ${String(r)}`);
    unlinkSync(join(dir, 'index.json'));
  }
});
