/**
 * Manifests from a registry: asked for with every type podlog reads (OCI index and manifest, Docker
 * schema 2 manifest and manifest list), read to at most 4 MiB with a hard stop, checked against the
 * digest they were asked by, and an index (or list) followed to the image for linux on this host's
 * architecture, at most a few levels deep. An index cannot name itself or an index above it: each is
 * asked for by the digest of its bytes, which its parent's bytes hold; a registry that answers with
 * an index already seen answers with bytes that do not match the digest asked for.
 */
import { createHash } from 'node:crypto';
import { PodlogError } from '../../errors.js';
import { isObject, showValue } from '../aci-manifest.js';
import { HOST_ARCH, LAYERS } from '../oci-layout.js';
import { readCapped, type RegistryClient } from './client.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];
const INDEXES = new Set([OCI_INDEX, DOCKER_LIST]);
const IMAGES = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);

/** The distribution registry's own limit on a manifest it accepts (4 MiB). */
export const MANIFEST_LIMIT = 4 << 20;
/** An index of indexes of ... this deep is not an image anyone made. */
const MAX_DEPTH = 4;
export const DIGEST = /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: unknown; architecture?: unknown; variant?: unknown };
}

export interface Manifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: Record<string, unknown>;
}

/** An image manifest's blobs: its config and its layers, bottom first. */
export interface ImageBlobs {
  config: Descriptor;
  layers: Descriptor[];
}

export const digestOf = (bytes: Buffer, alg = 'sha256'): string => `${alg}:${createHash(alg).update(bytes).digest('hex')}`;

const bad = (code: string, client: RegistryClient, what: string): PodlogError => new PodlogError(code, `${client.ref.reference}: ${what}`);

/** A descriptor checked before its blob is asked for: a digest that names a file safely, a size that is a size. */
export const descriptor = (client: RegistryClient, d: unknown, what: string): Descriptor => {
  if (!isObject(d) || typeof d.mediaType !== 'string') throw bad('EBADMANIFEST', client, `${what} is not a descriptor: ${showValue(d)}`);
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw bad('EBADMANIFEST', client, `${what} has an invalid digest ${showValue(d.digest)}`);
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) throw bad('EBADMANIFEST', client, `${what} ${d.digest} has an invalid size ${showValue(d.size)}`);
  return d as unknown as Descriptor;
};

/** GET a manifest by tag or digest; by digest (or with `expected`), its bytes must hash to it. */
export const fetchManifest = async (client: RegistryClient, ref: string, expected?: Descriptor): Promise<Manifest> => {
  const what = `manifest ${ref}`;
  if (expected && expected.size > MANIFEST_LIMIT) throw bad('ETOO_LARGE', client, `${what} is ${expected.size} bytes, larger than the ${MANIFEST_LIMIT} bytes allowed`);
  const { body, headers, url } = await client.get(`manifests/${ref}`, what, { accept: ACCEPT });
  let bytes: Buffer;
  try {
    bytes = await readCapped(body, MANIFEST_LIMIT, `${client.ref.reference}: ${what} (${url.href})`);
  } catch (e) {
    if (e instanceof PodlogError) throw e;
    throw bad('EFETCH', client, `${what}: reading ${url.href} failed: ${(e as Error).message}`);
  }
  const wanted = expected?.digest ?? (DIGEST.test(ref) ? ref : undefined);
  const digest = digestOf(bytes, wanted?.split(':')[0]);
  if (wanted !== undefined && digest !== wanted) throw bad('EDIGEST', client, `${what} from ${url.href} does not match its digest: expected ${wanted}, found ${digest}`);
  if (expected && bytes.length !== expected.size) throw bad('EDIGEST', client, `${what} is ${bytes.length} bytes, but its descriptor says ${expected.size}`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw bad('EBADMANIFEST', client, `${what} is not JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw bad('EBADMANIFEST', client, `${what} is not a JSON object`);
  if (json.schemaVersion === 1) throw bad('EBADMANIFEST', client, `${what} is a Docker schema 1 manifest, which podlog does not read (push the image again with a current tool)`);
  const header = String(headers['content-type'] ?? '').split(';')[0]!.trim();
  const mediaType = typeof json.mediaType === 'string' ? json.mediaType : header || (Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST);
  if (!INDEXES.has(mediaType) && !IMAGES.has(mediaType)) throw bad('EBADMANIFEST', client, `${what} has media type ${showValue(mediaType)}, not an image manifest or index podlog reads`);
  return { digest, mediaType, bytes, json };
};

const platformOf = (d: Descriptor): string => (isObject(d.platform) ? `${String(d.platform.os)}/${String(d.platform.architecture)}` : 'no platform');

/**
 * The image manifest for linux on this host's architecture: `top` itself, or what its index (list)
 * names for the platform, followed through nested indexes.
 */
export const choosePlatform = async (client: RegistryClient, top: Manifest): Promise<Manifest> => {
  const os = 'linux';
  const arch = HOST_ARCH[process.arch] ?? process.arch;
  let current = top;
  for (let depth = 0; INDEXES.has(current.mediaType); depth++) {
    if (depth >= MAX_DEPTH) throw bad('EBADMANIFEST', client, `image indexes nest more than ${MAX_DEPTH} deep below ${top.digest}`);
    const what = `image index ${current.digest}`;
    if (!Array.isArray(current.json.manifests)) throw bad('EBADMANIFEST', client, `${what} has no "manifests" list`);
    const list = current.json.manifests.map((d, i) => descriptor(client, d, `${what}: manifests[${i}]`));
    const usable = list.filter((d) => INDEXES.has(d.mediaType) || IMAGES.has(d.mediaType));
    const chosen = usable.find((d) => isObject(d.platform) && d.platform.os === os && d.platform.architecture === arch) ?? usable.find((d) => d.platform === undefined && INDEXES.has(d.mediaType));
    if (!chosen) {
      const has = usable.map(platformOf).join(', ');
      throw bad('ENOPLATFORM', client, `${what} has no image for ${os}/${arch}${has ? ` (it has ${has})` : ''}`);
    }
    current = await fetchManifest(client, chosen.digest, chosen);
  }
  return current;
};

/** The config and layers of an image manifest, refused before any download if podlog cannot use them. */
export const imageBlobs = (client: RegistryClient, m: Manifest): ImageBlobs => {
  const what = `image manifest ${m.digest}`;
  const config = descriptor(client, m.json.config, `${what}: config`);
  if (config.size > MANIFEST_LIMIT) throw bad('ETOO_LARGE', client, `${what}: its config ${config.digest} is ${config.size} bytes, larger than the ${MANIFEST_LIMIT} bytes allowed`);
  if (!Array.isArray(m.json.layers)) throw bad('EBADMANIFEST', client, `${what} has no "layers" list`);
  const layers = m.json.layers.map((d, i) => descriptor(client, d, `${what}: layers[${i}]`));
  for (const l of layers) {
    if (!LAYERS.has(l.mediaType)) throw bad('EBADMANIFEST', client, `${what}: layer ${l.digest} has media type ${showValue(l.mediaType)}, which podlog does not extract`);
  }
  return { config, layers };
};
