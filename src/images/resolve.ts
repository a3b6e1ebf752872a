/**
 * What a user typed for an image, and finding it in the index, with rkt's rules and messages:
 * rkt/image/common.go guessImageType (id, URL, path or name), imagestore ResolveKey (id prefixes) and
 * GetACI (a name and labels; without a version, the newest import). An OCI layout's image is chosen
 * by a tag after its path, `PATH:TAG`, or as skopeo writes it, `oci:PATH[:TAG]` (`oci-archive:` too);
 * `docker://HOST/NAME[:TAG]` is pulled from a registry (registry/).
 */
import { existsSync, statSync } from 'node:fs';
import { extname, isAbsolute, join } from 'node:path';
import { PodlogError } from '../errors.js';
import type { ImageLabel } from '../events/images.js';
import { label } from './aci-manifest.js';
import type { ImageIndex, ImageRecord } from './index-projection.js';
import { isDockerRef } from './registry/reference.js';

export type ImageRef =
  | { kind: 'id'; id: string }
  | { kind: 'url'; url: string }
  | { kind: 'docker'; ref: string }
  | { kind: 'path'; path: string; tag?: string }
  | { kind: 'name'; name: string; labels: ImageLabel[] };

const ID_PREFIX = 'sha512-';
/** rkt's lenKey: `sha512-` and 64 hex digits. */
export const KEY_LENGTH = ID_PREFIX.length + 64;
const MIN_PREFIX = ID_PREFIX.length + 2;

/** `name[:version][,label=value]...` as rkt's appc image strings spell them. */
const parseName = (ref: string): ImageRef => {
  const [head = '', ...pairs] = ref.split(',');
  const colon = head.lastIndexOf(':');
  const name = colon === -1 ? head : head.slice(0, colon);
  const labels: ImageLabel[] = colon === -1 ? [] : [{ name: 'version', value: head.slice(colon + 1) }];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new PodlogError('EUSAGE', `image ${JSON.stringify(ref)}: ${JSON.stringify(pair)} is not a label=value pair`);
    labels.push({ name: pair.slice(0, eq), value: pair.slice(eq + 1) });
  }
  return { kind: 'name', name, labels };
};

/** What a tag can follow: an image file, or a directory that is an OCI layout (not any directory named like an image). */
const taggable = (path: string): boolean => {
  try {
    return statSync(path).isDirectory() ? existsSync(join(path, 'oci-layout')) : true;
  } catch {
    return false;
  }
};

/**
 * A path and the tag after it: a file that exists as typed wins, else the longest part before a `:`
 * that names an image file or a layout (so a tag, as a full reference, may hold colons too).
 */
const taggedPath = (ref: string): ImageRef | undefined => {
  if (existsSync(ref)) return { kind: 'path', path: ref };
  for (let colon = ref.lastIndexOf(':'); colon > 0; colon = ref.lastIndexOf(':', colon - 1)) {
    const path = ref.slice(0, colon);
    if (taggable(path)) return { kind: 'path', path, tag: ref.slice(colon + 1) };
  }
  return undefined;
};

const SKOPEO = /^oci(-archive)?:/;

/** rkt's guessImageType, step by step, with OCI layouts' tags. */
export const guessRef = (ref: string): ImageRef => {
  if (ref.startsWith(ID_PREFIX)) return { kind: 'id', id: ref };
  if (isDockerRef(ref)) return { kind: 'docker', ref };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) return { kind: 'url', url: ref };
  if (SKOPEO.test(ref) && !existsSync(ref)) {
    const rest = ref.replace(SKOPEO, '');
    return taggedPath(rest) ?? { kind: 'path', path: rest };
  }
  const tagged = taggedPath(ref);
  if (tagged) return tagged;
  if (isAbsolute(ref)) return { kind: 'path', path: ref };
  // A colon separates a version (and is rare in paths); `./` and `.aci` mark relative paths.
  if (ref.includes(':')) return parseName(ref);
  if (ref.includes('./') || extname(ref) === '.aci') return { kind: 'path', path: ref };
  return parseName(ref);
};

/** rkt's ResolveKey: an id or a prefix of one, at least `sha512-` and two hex digits. */
export const findById = (index: ImageIndex, input: string): ImageRecord => {
  const prefix = input.toLowerCase();
  if (!prefix.startsWith(ID_PREFIX)) throw new PodlogError('EIMAGE', `${JSON.stringify(input)}: wrong key prefix (image IDs start with sha512-)`);
  if (prefix.length < MIN_PREFIX) throw new PodlogError('EIMAGE', 'image ID too short');
  // A full appc image id (128 hex digits) names the image by its key.
  const key = prefix.slice(0, KEY_LENGTH);
  const matches = [...index.images.keys()].filter((id) => id.startsWith(key));
  if (matches.length === 0) throw new PodlogError('ENOENT', `no image with ID ${JSON.stringify(input)} in the store`);
  if (matches.length > 1) throw new PodlogError('EIMAGE', 'ambiguous image ID');
  return index.images.get(matches[0]!)!;
};

/**
 * rkt's GetACI over every name an image has: every requested label must match the name's; the newest
 * import or tag of the name wins.
 */
export const findByName = (index: ImageIndex, name: string, labels: readonly ImageLabel[]): ImageRecord | undefined => {
  let best: { image: ImageRecord; position: number } | undefined;
  for (const image of index.images.values()) {
    for (const n of image.names) {
      if (n.name !== name || !labels.every((l) => label(n.labels, l.name) === l.value)) continue;
      if (!best || n.position > best.position) best = { image, position: n.position };
    }
  }
  return best?.image;
};

export const describeName = (name: string, labels: readonly ImageLabel[]): string =>
  [name, ...labels.map((l) => `${l.name}=${l.value}`)].join(',');
