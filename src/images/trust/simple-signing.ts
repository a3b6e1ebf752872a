/**
 * containers/image's "simple signing" (an "atomic container signature"), what `skopeo copy --sign-by`
 * writes: an OpenPGP signed message whose data is a claim about one manifest,
 *
 *   {"critical": {"type": "atomic container signature",
 *                 "image": {"docker-manifest-digest": "sha256:…"},
 *                 "identity": {"docker-reference": "HOST[:PORT]/NAME:TAG"}},
 *    "optional": {"creator": "…", "timestamp": …}}
 *
 * The claim is read as strictly as containers/image reads it (signature/simple.go): exactly those
 * fields at the top, in `critical`, in `image` and in `identity`; `optional` is not looked at.
 *
 * The digest must be the digest of the image manifest the pull chose, computed here from its bytes.
 * skopeo 1.9.3 signs every manifest it writes to the registry: a single image's (for a copy of one
 * platform out of an index, that platform's manifest, which the tag then names), and with --all the
 * index and each platform's manifest alike, each signature naming the tag's reference. So the
 * manifest that is downloaded and run is the one checked (podman checks the index instead, which
 * an image signed only at its index would need).
 *
 * The identity follows containers' default rule, matchRepoDigestOrExact: an image pulled by tag must
 * be signed as exactly that HOST/NAME:TAG (a signature for `:v1` does not vouch for `:latest`, which a
 * registry may point anywhere); one pulled by digest needs only the repository to match (the digest
 * is what pins it). References are compared in their normalized form, as containers does (`busybox`
 * is `docker.io/library/busybox`).
 */
import { createHash } from 'node:crypto';

/** A registry image as the puller has resolved it, before any blob is downloaded. */
export interface RegistryImage {
  /** As the user wrote it (for messages). */
  reference: string;
  /** HOST[:PORT], normalized (docker.io, not registry-1.docker.io). */
  registry: string;
  /** The repository path (`library/busybox`). */
  repository: string;
  /** The tag it was pulled by; absent when pulled by digest. */
  tag?: string;
  /** The digest of `manifest`, `sha256:<hex>`: the image manifest the pull chose (an index's, its platform's). */
  digest: string;
  /** The manifest's bytes, exactly as served. */
  manifest: Buffer;
}

export interface Claim {
  digest: string;
  reference: string;
}

const TYPE = 'atomic container signature';

const exactFields = (v: unknown, fields: readonly string[], where: string): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where} is not a JSON object`);
  const keys = Object.keys(v).sort();
  if (keys.join() !== [...fields].sort().join()) throw new Error(`${where} has the fields ${JSON.stringify(keys)}, not ${JSON.stringify(fields)}`);
  return v as Record<string, unknown>;
};

const stringField = (o: Record<string, unknown>, field: string, where: string): string => {
  const v = o[field];
  if (typeof v !== 'string') throw new Error(`${where}.${field} is not a string`);
  return v;
};

/** The claim a signature's data makes; throws saying what is wrong with it. */
export const readClaim = (data: Buffer): Claim => {
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new Error(`its data is not JSON (${(e as Error).message})`);
  }
  const top = exactFields(json, ['critical', 'optional'], 'the claim');
  const critical = exactFields(top.critical, ['type', 'image', 'identity'], 'critical');
  const type = stringField(critical, 'type', 'critical');
  if (type !== TYPE) throw new Error(`its type is ${JSON.stringify(type)}, not ${JSON.stringify(TYPE)}`);
  const image = exactFields(critical.image, ['docker-manifest-digest'], 'critical.image');
  const identity = exactFields(critical.identity, ['docker-reference'], 'critical.identity');
  return { digest: stringField(image, 'docker-manifest-digest', 'critical.image'), reference: stringField(identity, 'docker-reference', 'critical.identity') };
};

/** `sha256:<hex>` of `bytes`, with the algorithm a digest names (sha256 or sha512); undefined for another. */
export const digestAs = (digest: string, bytes: Buffer): string | undefined => {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  return algorithm === 'sha256' || algorithm === 'sha512' ? `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` : undefined;
};

interface Reference {
  /** HOST[:PORT]/PATH, normalized. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** docker's normalization: a first component without a dot or a port (and not localhost) is a path on docker.io. */
const parseReference = (text: string): Reference => {
  const at = text.indexOf('@');
  const digest = at === -1 ? undefined : text.slice(at + 1);
  let name = at === -1 ? text : text.slice(0, at);
  const colon = name.lastIndexOf(':');
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
  if (tag !== undefined) name = name.slice(0, colon);
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  let [host, path] = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost') ? [first, name.slice(slash + 1)] : ['docker.io', name];
  if (host === 'index.docker.io') host = 'docker.io';
  if (host === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  return { repository: `${host}/${path}`, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
};

/** The image's own reference, as its signature should name it. */
export const imageReference = (m: RegistryImage): string =>
  `${m.registry}/${m.repository}${m.tag !== undefined ? `:${m.tag}` : `@${m.digest}`}`;

/** Why `claim` does not vouch for `m`, or undefined when it does. */
export const claimMismatch = (claim: Claim, m: RegistryImage): string | undefined => {
  const actual = digestAs(claim.digest, m.manifest);
  if (actual === undefined) return `it names the digest ${JSON.stringify(claim.digest)}, of an algorithm podlog does not compute`;
  if (actual !== claim.digest) return `it is for the manifest ${claim.digest}, and the image's is ${actual}`;
  const signed = parseReference(claim.reference);
  const image = parseReference(imageReference(m));
  const matches = image.tag === undefined ? signed.repository === image.repository : signed.repository === image.repository && signed.tag === image.tag && signed.digest === undefined;
  return matches ? undefined : `it is for ${claim.reference}, not ${imageReference(m)}`;
};
