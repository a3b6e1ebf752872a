/**
 * Images built by the tests themselves: ACIs with chosen manifests (tar of a staging dir), and a data
 * dir with an event log and an image store next to a canary file that nothing may touch.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { commandContext } from '../../src/events/metadata.js';
import { renderToDir } from '../../src/images/maintenance.js';
import { Store } from '../../src/images/store.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/port.js';
import { busyboxRootfs, repoRoot } from '../helpers/fixtures.js';

export const manifestFor = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  acKind: 'ImageManifest',
  acVersion: '0.8.11',
  name,
  labels: [
    { name: 'os', value: 'linux' },
    { name: 'arch', value: 'amd64' },
  ],
  ...extra,
});

export interface AciSpec {
  manifest: Record<string, unknown> | string;
  /** Copy the busybox rootfs in (default true). */
  busybox?: boolean;
  /** Files to write below rootfs/, path → content. */
  files?: Record<string, string>;
  /** Compress with this program (gzip, xz, zstd...). */
  compress?: string;
}

/** Writes an ACI to `path` (GNU tar, sorted, reproducible) and returns the path. */
export const makeAci = (path: string, spec: AciSpec): string => {
  const stage = mkdtempSync(join(tmpdir(), 'podlog-aci-stage-'));
  try {
    writeFileSync(join(stage, 'manifest'), typeof spec.manifest === 'string' ? spec.manifest : JSON.stringify(spec.manifest));
    if (spec.busybox ?? true) cpSync(busyboxRootfs, join(stage, 'rootfs'), { recursive: true, verbatimSymlinks: true });
    else mkdirSync(join(stage, 'rootfs'));
    for (const [file, content] of Object.entries(spec.files ?? {})) {
      mkdirSync(dirname(join(stage, 'rootfs', file)), { recursive: true });
      writeFileSync(join(stage, 'rootfs', file), content);
    }
    mkdirSync(dirname(path), { recursive: true });
    const tar = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--format=gnu', '-C', stage, '-cf', path, 'manifest', 'rootfs']);
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr.toString()}`);
    if (spec.compress) {
      const c = spawnSync(spec.compress, ['-f', '-q', path]);
      if (c.status !== 0) throw new Error(`${spec.compress}: ${c.stderr.toString()}`);
      const suffix: Record<string, string> = { gzip: '.gz', xz: '.xz', zstd: '.zst', bzip2: '.bz2' };
      cpSync(`${path}${suffix[spec.compress]}`, path);
      rmSync(`${path}${suffix[spec.compress]}`);
    }
    return path;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
};

export interface Sandbox {
  /** Holds `data/` (the data dir), `canary/file`, and `in/` for test inputs. */
  root: string;
  dataDir: string;
  input: (name: string) => string;
  events: EventStore;
  images: Store;
  /** Throws if the canary changed or anything appeared next to the data dir but in/. */
  assertContained: () => void;
  cleanup: () => Promise<void>;
}

export const sandbox = async (): Promise<Sandbox> => {
  const root = mkdtempSync(join(tmpdir(), 'podlog-images-'));
  const dataDir = join(root, 'data');
  mkdirSync(join(root, 'canary'));
  mkdirSync(join(root, 'in'));
  writeFileSync(join(root, 'canary', 'file'), 'untouched');
  const events = await openStore(dataDir);
  return {
    root,
    dataDir,
    input: (name) => join(root, 'in', name),
    events,
    images: new Store(dataDir, events, commandContext(['test'])),
    assertContained: () => {
      if (readdirSync(join(root, 'canary')).join() !== 'file') throw new Error('the canary dir was written to');
      if (readFileSync(join(root, 'canary', 'file'), 'utf8') !== 'untouched') throw new Error('the canary was changed');
      const left = readdirSync(root).filter((n) => !['canary', 'data', 'in'].includes(n));
      if (left.length > 0) throw new Error(`written next to the data dir: ${left.join(', ')}`);
    },
    cleanup: async () => {
      await events.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
};

/** Entries of a store directory (empty when it does not exist). */
export const entries = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

export interface OciLayer {
  /** A tar file to use as the layer's content. */
  tar: string;
  compression?: 'none' | 'gzip' | 'zstd';
  /** Overrides the descriptor's media type. */
  mediaType?: string;
}

export interface OciSpec {
  layers: OciLayer[];
  config?: Record<string, unknown>;
  /** Annotations of the manifest's descriptor in index.json. */
  annotations?: Record<string, string>;
}

const MEDIA: Record<string, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

/** Writes `content` as a blob of the layout at `dir`; returns its descriptor. */
const putBlob = (dir: string, content: Buffer, mediaType: string): { mediaType: string; digest: string; size: number } => {
  const hex = createHash('sha256').update(content).digest('hex');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'blobs', 'sha256', hex), content);
  return { mediaType, digest: `sha256:${hex}`, size: content.length };
};

/** Writes an OCI image layout at `dir` and returns the paths of its blobs (for tests that damage them). */
export const makeOciLayout = (dir: string, spec: OciSpec): { layers: string[]; manifest: string } => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const layers = spec.layers.map((l) => {
    const raw = readFileSync(l.tar);
    const compression = l.compression ?? 'gzip';
    const content =
      compression === 'gzip' ? gzipSync(raw) : compression === 'zstd' ? spawnSync('zstd', ['-q', '-c'], { input: raw, maxBuffer: 1 << 30 }).stdout : raw;
    return putBlob(dir, content, l.mediaType ?? MEDIA[compression]!);
  });
  const config = putBlob(
    dir,
    Buffer.from(JSON.stringify(spec.config ?? { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [] } })),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = putBlob(
    dir,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers })),
    'application/vnd.oci.image.manifest.v1+json',
  );
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, ...(spec.annotations ? { annotations: spec.annotations } : {}) }] }));
  const path = (d: { digest: string }): string => join(dir, 'blobs', 'sha256', d.digest.slice('sha256:'.length));
  return { layers: layers.map(path), manifest: path(manifest) };
};

/** A tar of a directory's contents (as a layer: names relative to it). */
export const tarDir = (dir: string, out: string): string => {
  const r = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', out, '.']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr.toString()}`);
  return out;
};

const REF_NAME = 'org.opencontainers.image.ref.name';

/** Writes an OCI layout holding one image per tag (its index.json entry annotated with the tag). */
export const makeTaggedLayout = (dir: string, images: Record<string, OciSpec>): void => {
  const manifests = Object.entries(images).map(([tag, spec]) => {
    makeOciLayout(dir, { ...spec, annotations: { ...spec.annotations, [REF_NAME]: tag } });
    return (JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] }).manifests[0];
  });
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
};

/**
 * A tar of a one-image layout as `docker save` (Docker >= 25) writes it (moby image/tarexport/save.go:
 * archive.Tar of its directory, names in lexical order, so blobs/ first): `manifest.json` and
 * `repositories` beside `index.json` and `oci-layout`, a legacy v1 config among the blobs, the image
 * tagged `repo:tag` in index.json's annotations. `dockerOrder: false` puts manifest.json and
 * repositories first instead.
 */
export const dockerSaveTar = (layout: string, out: string, repoTag: string, dockerOrder = true): string => {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests[0]!;
  const blob = (digest: string): string => `blobs/sha256/${digest.slice('sha256:'.length)}`;
  const manifest = JSON.parse(readFileSync(join(layout, blob(entry.digest)), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  const legacy = Buffer.from(JSON.stringify({ id: 'legacy', created: '1970-01-01T00:00:00Z' }));
  writeFileSync(join(layout, 'blobs', 'sha256', createHash('sha256').update(legacy).digest('hex')), legacy);
  const [repo, tag] = repoTag.split(':') as [string, string];
  const top = manifest.layers.at(-1)!.digest.slice('sha256:'.length);
  writeFileSync(join(layout, 'manifest.json'), JSON.stringify([{ Config: blob(manifest.config.digest), RepoTags: [repoTag], Layers: manifest.layers.map((l) => blob(l.digest)) }]));
  writeFileSync(join(layout, 'repositories'), JSON.stringify({ [repo]: { [tag]: top } }));
  entry.annotations = { 'io.containerd.image.name': `docker.io/library/${repoTag}`, [REF_NAME]: tag };
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
  const names = dockerOrder ? ['blobs', 'index.json', 'manifest.json', 'oci-layout', 'repositories'] : ['manifest.json', 'repositories', 'blobs', 'index.json', 'oci-layout'];
  const r = spawnSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', ...(dockerOrder ? ['--sort=name'] : []), '-C', layout, '-cf', out, ...names]);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr.toString()}`);
  return out;
};

/**
 * A static x86-64 Linux program of 132 bytes that exits with `code` (exit(2) and nothing else): an
 * app for images whose blobs must stay small.
 */
export const exitProgram = (code: number): Buffer => {
  const base = 0x400000n;
  const code64 = Buffer.from([0xbf, code & 0xff, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]); // mov edi, code; mov eax, 60; syscall
  const elf = Buffer.alloc(64 + 56);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(elf);
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(base + 120n, 24); // entry: the code after both headers
  elf.writeBigUInt64LE(64n, 32); // program headers right after this one
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(1, 64); // PT_LOAD of the whole file, read and execute
  elf.writeUInt32LE(5, 68);
  elf.writeBigUInt64LE(base, 80);
  elf.writeBigUInt64LE(base, 88);
  elf.writeBigUInt64LE(132n, 96);
  elf.writeBigUInt64LE(132n, 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  return Buffer.concat([elf, code64]);
};

/** A refused import left nothing: no content, tree or staging entry in the store, no image event, nothing outside. */
export const assertNothingStored = async (t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, s: Sandbox, what: string): Promise<void> => {
  for (const d of ['blob', 'oci', 'layer-blob', 'layers', 'tree', 'imageManifest', 'tmp', 'partial']) t.deepEqual(entries(join(s.dataDir, 'cas', d)), [], `${what}: cas/${d} is empty`);
  for (const prefix of ['image-', 'tree-', 'layer-']) t.deepEqual((await s.events.readAll({ streamPrefix: prefix })).length, 0, `${what}: no ${prefix} event`);
  s.assertContained();
};

/**
 * The rootfs an image's pods see, flattened into a fresh directory of the sandbox by `image render`
 * (an OCI image's tree is a stack of layers that only stage1's overlay puts together).
 */
export const renderedRootfs = async (s: Sandbox, imageId: string, name: string): Promise<string> => {
  const dir = join(s.root, 'in', name);
  await renderToDir(s.images, imageId, dir);
  return join(dir, 'rootfs');
};

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/podlog without blocking the event loop: the test's own servers (a registry's proxy, a realm) keep answering. */
export const podlogAsync = (dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, 'bin', 'podlog'), ['--dir', dir, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
