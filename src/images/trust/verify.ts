/**
 * Who vouches for an image: its signature checked against the trusted keys (keystore.ts) when it is
 * fetched, and the result recorded in the log as the image's `ImageVerified` event, so the log says
 * who vouched for what ran. Two kinds of signature, both OpenPGP, both checked by openpgp.js:
 * - an ACI's: rkt's detached signature over the exact bytes of the .aci file (`gpg --armor
 *   --detach-sign`), `IMAGE.aci.asc` beside the file or the URL;
 * - a registry image's: containers' simple signing (simple-signing.ts), found in the lookaside store
 *   configured for the registry (lookaside.ts).
 * A key vouches for the images named by its prefix (`example.com/app` for `example.com/app` and
 * `example.com/app/…`; a registry image's name is HOST[:PORT]/REPOSITORY), a root key for all.
 *
 * POLICY. With no key trusted at all (no root.d and no prefix.d entry), every image is accepted, as
 * podman's default policy (insecureAcceptAnything) accepts it; the log records the skip with the
 * reason `no-trusted-keys`, and stderr says so once per image on a terminal (unless --quiet). As soon as one key is
 * trusted, every image fetched must carry a signature by a key trusted for its name (or a root key),
 * else it is refused (exit 254) naming the image, the keys that would have vouched for it and what was
 * found instead: no signature, a signature by a key not trusted for that name, or one that does not
 * match the image. --insecure-options=image checks nothing and the log records the skip with the
 * reason `insecure-options`. Why: requiring signatures while nothing is trusted would refuse every
 * image people build locally, which rkt did and podman does not; the trust store is the operator's
 * switch. A refused image is not stored and has no stream: the refusal is the command's error.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { PodlogError } from '../../errors.js';
import { imageStream, type ImageVerdict } from '../../events/images.js';
import type { FetchPolicy } from '../policy.js';
import type { Store } from '../store.js';
import { readStoredKey, trustedKeys, vouchesFor, type TrustedKey } from './keystore.js';
import { lookasideFor, readSignatures, registriesDir, signatureUrl } from './lookaside.js';
import { loadKeys, NotASignature, verifyDetached, verifySigned, type LoadedKey, type SignatureCheck } from './pgp.js';
import { claimMismatch, digestAs, readClaim, type RegistryImage } from './simple-signing.js';

export type Verdict = ImageVerdict;
export type { RegistryImage } from './simple-signing.js';

/** How gpg shows a fingerprint (the store names files in lowercase). */
const shownFingerprint = (fpr: string): string => fpr.toUpperCase();

/**
 * The verdict when there is nothing to check (--insecure-options=image, or no key trusted), else the
 * trusted keys to check against.
 */
export const checkDue = (policy: FetchPolicy): { verdict: Verdict } | { keys: TrustedKey[] } => {
  if (policy.skipImageVerify) return { verdict: { verified: false, skipped: 'insecure-options' } };
  const keys = trustedKeys(policy.localConfig);
  return keys.length > 0 ? { keys } : { verdict: { verified: false, skipped: 'no-trusted-keys' } };
};

const where = (k: TrustedKey): string => (k.prefix === '' ? 'root' : `prefix ${k.prefix}`);

/** The refusal: the image, what was found, and which keys would have vouched for `name`. */
const refuse = (shown: string, name: string, keys: readonly TrustedKey[], found: string): PodlogError => {
  const forName = keys.filter((k) => vouchesFor(k, name));
  const searched =
    forName.length > 0
      ? `trusted for ${name}: ${forName.map((k) => `${where(k)} ${shownFingerprint(k.fingerprint)}`).join(', ')}`
      : `no key is trusted for ${name} (only for ${[...new Set(keys.map(where))].join(', ')})`;
  return new PodlogError('EUNTRUSTED', `${shown}: refused: ${found}; ${searched}; --insecure-options=image skips the signature check`);
};

/** The key trusted for `name` that made a valid one of `checks`, and the most specific prefix it is trusted for. */
const trustedSigner = (checks: readonly SignatureCheck[], keys: readonly LoadedKey[], name: string): { fingerprint: string; prefix: string } | undefined => {
  for (const c of checks) {
    if (!c.valid) continue;
    const vouching = keys.filter((k) => k.fingerprint === c.signer && vouchesFor(k, name)).sort((a, b) => b.prefix.length - a.prefix.length);
    if (vouching[0]) return { fingerprint: shownFingerprint(c.signer), prefix: vouching[0].prefix };
  }
  return undefined;
};

/** What signatures that vouch for nothing were. */
const describe = (checks: readonly SignatureCheck[], keys: readonly TrustedKey[], name: string): string => {
  if (checks.length === 0) return 'it holds no signature';
  return checks
    .map((c) => {
      if (c.valid) {
        const trusted = keys.filter((k) => k.fingerprint === c.signer).map(where);
        return `signed by ${shownFingerprint(c.signer)}, which is trusted for ${trusted.join(', ')}, not for ${name}`;
      }
      if (c.unknown) return `signed by ${shownFingerprint(c.issuer)}, which is not a trusted key`;
      // openpgp's words for a digest that differs; anything else is the key's (expired, revoked) or the signature's.
      if (/digest did not match/i.test(c.detail)) return `the signature by ${shownFingerprint(c.issuer)} does not match the image (${c.detail})`;
      return `the signature by ${shownFingerprint(c.issuer)} is not valid (${c.detail})`;
    })
    .join(', and ');
};

/**
 * An ACI's detached signature (`signature`: the bytes of IMAGE.aci.asc, undefined when there is none)
 * over the file at `path`, for the image named `name` (its manifest's); `shown` names it in messages.
 * Resolves to the verdict to record, or refuses (PodlogError EUNTRUSTED, exit 254).
 */
export const checkAci = async (
  policy: FetchPolicy,
  a: { shown: string; path: string; name: string; signature: Buffer | undefined },
): Promise<Verdict> => {
  const due = checkDue(policy);
  if ('verdict' in due) return due.verdict;
  if (a.signature === undefined) throw refuse(a.shown, a.name, due.keys, `it has no signature (${a.shown}.asc)`);
  const keys = await loadKeys(due.keys, readStoredKey);
  let checks: SignatureCheck[];
  try {
    checks = await verifyDetached(Readable.toWeb(createReadStream(a.path)), a.signature, keys);
  } catch (e) {
    if (e instanceof NotASignature) throw refuse(a.shown, a.name, due.keys, `${a.shown}.asc is not an OpenPGP signature (${e.message})`);
    throw new PodlogError('EIO', `${a.shown}: ${(e as Error).message}`, { cause: e });
  }
  const signer = trustedSigner(checks, keys, a.name);
  if (signer) return { verified: true, kind: 'aci-signature', ...signer };
  throw refuse(a.shown, a.name, due.keys, describe(checks, due.keys, a.name));
};

/**
 * A registry image's simple-signing signatures, read from the lookaside configured for its registry,
 * checked before any of its blobs is downloaded. `m.manifest` is the image manifest the pull chose and
 * `m.digest` its digest (both as the registry served them). Resolves to the verdict to record, or
 * refuses (EUNTRUSTED, exit 254).
 */
export const checkRegistryImage = async (policy: FetchPolicy, m: RegistryImage): Promise<Verdict> => {
  const due = checkDue(policy);
  if ('verdict' in due) return due.verdict;
  const name = `${m.registry}/${m.repository}`;
  if (digestAs(m.digest, m.manifest) !== m.digest) throw new PodlogError('EDIGEST', `${m.reference}: the manifest served does not have the digest ${m.digest}`);
  const lookaside = lookasideFor(policy.localConfig, m);
  if (!lookaside) throw refuse(m.reference, name, due.keys, `it has no signature (no lookaside is configured for ${m.registry} in ${registriesDir(policy.localConfig)})`);
  const found = await readSignatures(lookaside.url, m, policy);
  if (found.length === 0) throw refuse(m.reference, name, due.keys, `it has no signature (none at ${signatureUrl(lookaside.url, m, 1)})`);
  const keys = await loadKeys(due.keys, readStoredKey);
  const problems: string[] = [];
  for (const s of found) {
    let signed;
    try {
      signed = await verifySigned(s.bytes, keys);
    } catch (e) {
      if (!(e instanceof NotASignature)) throw e;
      problems.push(`${s.url} is not an OpenPGP signed message (${e.message})`);
      continue;
    }
    const signer = trustedSigner(signed.checks, keys, name);
    if (!signer) {
      problems.push(`${s.url}: ${describe(signed.checks, due.keys, name)}`);
      continue;
    }
    let mismatch: string | undefined;
    try {
      mismatch = claimMismatch(readClaim(signed.data), m);
    } catch (e) {
      mismatch = `it is not a container signature: ${(e as Error).message}`;
    }
    if (mismatch === undefined) return { verified: true, kind: 'simple-signing', ...signer };
    problems.push(`${s.url}: signed by ${signer.fingerprint}, but ${mismatch}`);
  }
  throw refuse(m.reference, name, due.keys, problems.join('; '));
};

/**
 * Records a verdict as the image's ImageVerified, once the image is stored (`source`: where this fetch
 * took it from), unless it is the verdict the image already has: a pod run from the same file, with
 * the same keys, does not add a commit and a line to every run. When it records that nothing was
 * checked because no key is trusted, says so on a terminal (unless `quiet`): a script's stderr stays
 * as it was before podlog checked signatures.
 */
export const recordVerdict = async (store: Store, imageId: string, source: string, verdict: Verdict, { quiet = false }: { quiet?: boolean } = {}): Promise<void> => {
  const last = (await store.record(imageId)).verification;
  if (isDeepStrictEqual(last, verdict)) return;
  await store.append(imageStream(imageId), 'ImageVerified', { id: imageId, source, ...verdict });
  if (!quiet && process.stderr.isTTY && !verdict.verified && verdict.skipped === 'no-trusted-keys') {
    process.stderr.write(`${source}: signature not checked: no key is trusted (podlog trust adds one)\n`);
  }
};
