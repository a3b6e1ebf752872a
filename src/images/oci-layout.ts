/**
 * Reading an OCI image layout directory (image-spec image-layout.md): `oci-layout`, `index.json`, and
 * content-addressed `blobs/<alg>/<hex>`. One image manifest is chosen: the one tagged so (its index.json
 * entry's `org.opencontainers.image.ref.name`) or the layout's only image, nested indexes followed and,
 * among several platforms, the one for this host's. Every blob it needs is checked against its
 * descriptor's digest and size while it is copied into a staging directory of the store, so nothing
 * unverified is ever stored and the layout can change or vanish afterwards without effect. A layer
 * blob the store holds already (another image has it) is not copied again.
 *
 * The image's id is rkt-style: `sha512-` and 64 hex digits of the sha512 of the image manifest's
 * bytes, which pin the config and every layer by digest.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basename, join } from 'node:path';
import { PodlogError } from '../errors.js';
import { isObject, showValue, type ImageManifest } from './aci-manifest.js';
import { archiveKind } from './oci-archive.js';
import { manifestFromConfig, parseOciConfig, sanitizeIdentifier } from './oci-config.js';
import type { Progress } from './progress.js';
import { hashToKey } from './tree-store.js';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFESTS = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Layer media types podlog extracts; the addon tells the compression by magic bytes. */
export const LAYERS = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);
/** JSON documents (index, manifests, configs) are small; the limit keeps a hostile one out of memory. */
const JSON_LIMIT = 1 << 20;
/** The annotation that tags an image of a layout (image-spec annotations.md). */
const REF_NAME = 'org.opencontainers.image.ref.name';
const DIGEST = /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

/** Go's GOARCH for this host, as OCI platforms spell it. */
export const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

/** An OCI image's id: `sha512-` and 64 hex digits of the sha512 of its image manifest's bytes. */
export const ociImageId = (manifest: Buffer): string => hashToKey(createHash('sha512').update(manifest).digest('hex'));

/** The image a layout holds, as far as its manifest tells. */
export interface OciImage {
  /** `sha512-` and 64 hex digits of the sha512 of the image manifest's bytes. */
  id: string;
  /** The manifest's OCI digest. */
  digest: string;
  manifest: { config?: Descriptor; layers?: unknown };
  bytes: Buffer;
  /** Of its descriptor in index.json: where the image's name and tag come from. */
  annotations: Record<string, string>;
}

export interface StagedOci {
  /** The appc manifest made from the image's config. */
  manifest: ImageManifest;
  /** The layers, bottom first: digest, and the blob's file (staged, or in the store already). */
  layers: { digest: string; file: string }[];
  /** Bytes of layer data. */
  size: number;
}

export class OciReader {
  constructor(
    private readonly dir: string,
    /** How messages name the layout: the path the user gave. */
    private readonly shown: string,
  ) {}

  private fail(code: string, what: string): PodlogError {
    return new PodlogError(code, `${this.shown}: ${what}`);
  }

  /** A blob's path, refusing digests that are not digests and blobs that are not regular files. */
  private blob(d: Descriptor, what: string): string {
    if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw this.fail('EBADLAYOUT', `${what} has an invalid digest ${showValue(d.digest)}`);
    if (!Number.isSafeInteger(d.size) || d.size < 0) throw this.fail('EBADLAYOUT', `${what} ${d.digest} has an invalid size ${showValue(d.size)}`);
    const [alg, hex] = d.digest.split(':') as [string, string];
    const path = join(this.dir, 'blobs', alg, hex);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      throw this.fail('EBADLAYOUT', `${what} ${d.digest} is missing (no blobs/${alg}/${hex})`);
    }
    if (!st.isFile()) throw this.fail('EBADLAYOUT', `${what} ${d.digest} is not a regular file in blobs/`);
    return path;
  }

  private check(d: Descriptor, what: string, actual: string, size: number): void {
    const alg = d.digest.split(':')[0]!;
    if (`${alg}:${actual}` !== d.digest) throw this.fail('EDIGEST', `${what} ${d.digest} does not match its digest (its content hashes to ${alg}:${actual})`);
    if (size !== d.size) throw this.fail('EDIGEST', `${what} ${d.digest} is ${size} bytes, but its descriptor says ${d.size}`);
  }

  /** A small JSON blob, checked against its descriptor. */
  private json<T>(d: Descriptor, what: string): { value: T; bytes: Buffer } {
    const path = this.blob(d, what);
    if (d.size > JSON_LIMIT) throw this.fail('EBADLAYOUT', `${what} ${d.digest} is ${d.size} bytes, larger than the ${JSON_LIMIT} allowed`);
    const bytes = readFileSync(path);
    this.check(d, what, createHash(d.digest.split(':')[0]!).update(bytes).digest('hex'), bytes.length);
    return { value: this.parse<T>(bytes, `${what} ${d.digest}`), bytes };
  }

  private parse<T>(bytes: Buffer, what: string): T {
    try {
      const v: unknown = JSON.parse(bytes.toString('utf8'));
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      return v as T;
    } catch (e) {
      throw this.fail('EBADMANIFEST', `${what} is not valid JSON (${(e as Error).message})`);
    }
  }

  private descriptors(list: unknown, what: string): Descriptor[] {
    if (!Array.isArray(list)) throw this.fail('EBADMANIFEST', `${what} has no list of descriptors`);
    const optionalStrings = (v: unknown, keys?: string[]): boolean =>
      v === undefined || (isObject(v) && Object.entries(v).every(([k, s]) => typeof s === 'string' || (keys !== undefined && !keys.includes(k))));
    return list.map((d: unknown) => {
      // The fields read before a descriptor's blob is: its media type, platform and annotations.
      const valid =
        isObject(d) &&
        typeof d.mediaType === 'string' &&
        optionalStrings(d.platform, ['os', 'architecture', 'variant']) &&
        optionalStrings(d.annotations);
      if (!valid) throw this.fail('EBADMANIFEST', `${what} holds an invalid descriptor ${showValue(d)}`);
      return d as unknown as Descriptor;
    });
  }

  /** The image manifest to import: the only one, or the one for this host among an index's. */
  private choose(list: Descriptor[], what: string): Descriptor {
    const os = 'linux';
    const arch = HOST_ARCH[process.arch] ?? process.arch;
    const usable = list.filter((d) => MANIFESTS.has(d.mediaType) || d.mediaType === INDEX || d.mediaType === DOCKER_LIST);
    const fits = usable.length === 1 ? usable : usable.filter((d) => !d.platform || (d.platform.os === os && d.platform.architecture === arch));
    const chosen = fits[0];
    if (!chosen) {
      const platforms = usable.map((d) => `${d.platform?.os ?? '?'}/${d.platform?.architecture ?? '?'}`).join(', ');
      throw this.fail('EBADLAYOUT', `${what} lists no image for ${os}/${arch}${platforms ? ` (it has ${platforms})` : ''}`);
    }
    return chosen;
  }

  /** index.json's image descriptors, grouped by their `org.opencontainers.image.ref.name` (an image per tag). */
  images(indexBytes: Buffer): Map<string | undefined, Descriptor[]> {
    if (indexBytes.length > JSON_LIMIT) throw this.fail('EBADLAYOUT', `index.json is larger than the ${JSON_LIMIT} bytes allowed`);
    const groups = new Map<string | undefined, Descriptor[]>();
    for (const d of this.descriptors(this.parse<{ manifests?: unknown }>(indexBytes, 'index.json').manifests, 'index.json')) {
      if (!MANIFESTS.has(d.mediaType) && d.mediaType !== INDEX && d.mediaType !== DOCKER_LIST) continue;
      const tag = d.annotations?.[REF_NAME];
      groups.set(tag, [...(groups.get(tag) ?? []), d]);
    }
    return groups;
  }

  /** The descriptors of the image tagged `tag`, or of the layout's only image. */
  private tagged(indexBytes: Buffer, tag: string | undefined): Descriptor[] {
    const groups = this.images(indexBytes);
    const tags = [...groups.keys()].filter((k) => k !== undefined);
    const named = tags.length === 0 ? 'it has no tags' : `its tags: ${tags.join(', ')}`;
    if (tag !== undefined) {
      const group = groups.get(tag);
      if (!group) throw this.fail('ENOTAG', `the OCI layout has no image tagged ${JSON.stringify(tag)} (${named})`);
      return group;
    }
    if (groups.size > 1) throw this.fail('ENOTAG', `the OCI layout holds ${groups.size} images (${named}): choose one as PATH:TAG or with --tag`);
    return [...groups.values()][0] ?? [];
  }

  /**
   * Reads `oci-layout`, `index.json` and the image manifest tagged `tag` (or the layout's only one),
   * checked against its digest: cheap, and enough to know the image's id, so a layout whose image is
   * stored already is not read further.
   */
  read(tag?: string): OciImage {
    let layout: { imageLayoutVersion?: unknown };
    try {
      layout = this.parse(readFileSync(join(this.dir, 'oci-layout')), 'oci-layout');
    } catch (e) {
      if (e instanceof PodlogError) throw e;
      throw this.fail('EBADLAYOUT', 'not an OCI image layout (no oci-layout file)');
    }
    if (typeof layout.imageLayoutVersion !== 'string') throw this.fail('EBADLAYOUT', 'oci-layout has no imageLayoutVersion');
    let indexBytes: Buffer;
    try {
      indexBytes = readFileSync(join(this.dir, 'index.json'));
    } catch {
      throw this.fail('EBADLAYOUT', 'the OCI layout has no index.json');
    }
    let chosen = this.choose(this.tagged(indexBytes, tag), 'index.json');
    const annotations = { ...chosen.annotations };
    for (let depth = 0; !MANIFESTS.has(chosen.mediaType); depth++) {
      if (depth > 8) throw this.fail('EBADLAYOUT', 'image indexes nest too deep');
      const nested = this.json<{ manifests?: unknown }>(chosen, 'image index').value;
      chosen = this.choose(this.descriptors(nested.manifests, `image index ${chosen.digest}`), `image index ${chosen.digest}`);
    }
    const { value: manifest, bytes } = this.json<{ config?: Descriptor; layers?: unknown }>(chosen, 'image manifest');
    return { id: ociImageId(bytes), digest: chosen.digest, manifest, bytes, annotations };
  }

  /**
   * Copies what the image needs into `stage`, verifying every blob against its descriptor: the image
   * manifest as `image/manifest.json`, and as `blobs/<alg>-<hex>` each layer blob for which `stored`
   * gives no file (the store's copy of a blob is used as it is). A blob `verified` names is the
   * store's own, checked as it was written (a pull's, in cas/tmp/): it is linked, not read again.
   */
  async stage(image: OciImage, stage: string, progress: Progress, stored: (digest: string) => string | undefined, verified?: ReadonlySet<string>): Promise<StagedOci> {
    const { manifest, digest } = image;
    if (!manifest.config || typeof manifest.config !== 'object') throw this.fail('EBADMANIFEST', `image manifest ${digest} has no config`);
    const config = parseOciConfig(this.json<unknown>(manifest.config, 'image config').value, `${this.shown}: image config ${manifest.config.digest}`);
    const layers = this.descriptors(manifest.layers, `image manifest ${digest}`);
    for (const l of layers) {
      if (!LAYERS.has(l.mediaType)) throw this.fail('EBADLAYOUT', `layer ${showValue(l.digest)} has media type ${showValue(l.mediaType)}, which podlog does not extract`);
    }
    const paths = layers.map((l) => this.blob(l, 'layer'));
    mkdirSync(join(stage, 'blobs'), { recursive: true });
    mkdirSync(join(stage, 'image'), { recursive: true });
    const copied = new Map<string, string>();
    const missing = layers.filter((l) => stored(l.digest) === undefined);
    progress.start('verifying layers', missing.reduce((n, l) => n + l.size, 0));
    for (const [i, l] of layers.entries()) {
      if (stored(l.digest) !== undefined || copied.has(l.digest)) continue;
      const file = join(stage, 'blobs', l.digest.replace(':', '-'));
      if (verified?.has(l.digest) && lstatSync(paths[i]!).size === l.size) {
        linkSync(paths[i]!, file);
        copied.set(l.digest, file);
        progress.add(l.size);
        continue;
      }
      const hash = createHash(l.digest.split(':')[0]!);
      let size = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          progress.add(chunk.length);
          done(null, chunk);
        },
      });
      await pipeline(createReadStream(paths[i]!), tap, createWriteStream(file, { flags: 'wx' }));
      this.check(l, 'layer', hash.digest('hex'), size);
      copied.set(l.digest, file);
    }
    progress.done();
    writeFileSync(join(stage, 'image', 'manifest.json'), image.bytes);
    const { name, version } = this.naming(image.annotations);
    return {
      manifest: manifestFromConfig(config, name, version),
      layers: layers.map((l) => ({ digest: l.digest, file: stored(l.digest) ?? copied.get(l.digest)! })),
      size: layers.reduce((n, l) => n + l.size, 0),
    };
  }

  /** The image's name and version: from the reference annotations, else from the layout's file name. */
  private naming(annotations: Record<string, string>): { name: string; version: string | undefined } {
    const ref = (annotations['io.containerd.image.name'] ?? annotations[REF_NAME])?.split('@')[0];
    const fallback = sanitizeIdentifier(basename(this.shown).replace(/\.(tar|oci)$/, ''));
    if (!ref) return { name: fallback, version: undefined };
    if (/^[\w][\w.-]*$/.test(ref)) return { name: fallback, version: ref };
    // A full reference: registry/repository[:tag].
    const colon = ref.lastIndexOf(':');
    const tagged = colon > ref.lastIndexOf('/');
    return { name: sanitizeIdentifier(tagged ? ref.slice(0, colon) : ref), version: tagged ? ref.slice(colon + 1) : undefined };
  }
}

/**
 * The tags of the OCI layout (directory or tar) at `path`, in index.json's order; none for an ACI or
 * what is not a layout, whose import says what is wrong with it.
 */
export const layoutTags = async (path: string, shown: string): Promise<string[]> => {
  if (!existsSync(path)) return [];
  let index: Buffer | undefined;
  if (statSync(path).isDirectory()) {
    index = existsSync(join(path, 'index.json')) ? readFileSync(join(path, 'index.json')) : undefined;
  } else {
    index = (await archiveKind(path, shown)).index;
  }
  if (!index) return [];
  return [...new OciReader(path, shown).images(index).keys()].filter((k) => k !== undefined);
};
