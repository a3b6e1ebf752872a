/**
 * OpenPGP through openpgp.js, loaded at its first use: it is most of the CLI bundle's weight, and only
 * `trust` and a fetch against a non-empty trust store need it (the bundle turns this import() into a
 * lazy require). What a signature check found is said in the store's terms: which primary key signed,
 * or why the signature does not count.
 */
import type { ReadableStream } from 'node:stream/web';
import type { PublicKey, VerifyMessageResult } from 'openpgp';
import { PodlogError } from '../../errors.js';
import type { TrustedKey } from './keystore.js';

type OpenPgp = typeof import('openpgp');
type VerificationResult = VerifyMessageResult['signatures'][number];
let loaded: Promise<OpenPgp> | undefined;
export const openpgp = (): Promise<OpenPgp> => (loaded ??= import('openpgp'));

/** A stored key, parsed. */
export interface LoadedKey extends TrustedKey {
  key: PublicKey;
}

/** The stored keys parsed; a file that is not the key its name says is an error naming it. */
export const loadKeys = async (entries: readonly TrustedKey[], read: (k: TrustedKey) => string): Promise<LoadedKey[]> => {
  const pgp = await openpgp();
  return Promise.all(
    entries.map(async (entry) => {
      let key: PublicKey;
      try {
        key = await pgp.readKey({ armoredKey: read(entry) });
      } catch (e) {
        throw new PodlogError('ETRUST_STORE', `${entry.file}: not an OpenPGP public key (${(e as Error).message})`);
      }
      if (key.isPrivate() || key.getFingerprint() !== entry.fingerprint) {
        throw new PodlogError('ETRUST_STORE', `${entry.file}: holds key ${key.getFingerprint().toUpperCase()}${key.isPrivate() ? ' (a secret key)' : ''}, not the public key its name says`);
      }
      return { ...entry, key: key as PublicKey };
    }),
  );
};

/** One signature of a detached signature file or a signed message, checked against the store's keys. */
export type SignatureCheck =
  /** It matches the data; `signer` is the primary key's fingerprint. */
  | { valid: true; signer: string }
  /** `issuer`: the fingerprint (or key id) it names. `unknown`: no stored key has it; else it does not match. */
  | { valid: false; issuer: string; unknown: boolean; detail: string };

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

const checkOne = async (r: VerificationResult, keys: readonly LoadedKey[]): Promise<SignatureCheck> => {
  const holder = keys.find((k) => k.key.getKeys(r.keyID).length > 0);
  try {
    await r.verified;
    // openpgp verifies with the keys it was given only: a valid signature has its holder.
    return { valid: true, signer: holder!.fingerprint };
  } catch (e) {
    const fpr = (await r.signature).packets[0]?.issuerFingerprint;
    return { valid: false, issuer: fpr ? hex(fpr) : r.keyID.toHex(), unknown: holder === undefined, detail: (e as Error).message };
  }
};

/** The distinct keys to give openpgp (one key may be trusted for several prefixes). */
const distinct = (keys: readonly LoadedKey[]): PublicKey[] => [...new Map(keys.map((k) => [k.fingerprint, k.key])).values()];

/** Thrown for bytes that are no OpenPGP signature at all; the caller says whose. */
export class NotASignature extends Error {}

/**
 * A detached signature (armored, as `gpg --armor --detach-sign` writes it, or binary) over `data`,
 * read to its end as it is hashed.
 */
export const verifyDetached = async (data: ReadableStream<Uint8Array>, signature: Buffer, keys: readonly LoadedKey[]): Promise<SignatureCheck[]> => {
  const pgp = await openpgp();
  const text = signature.toString('latin1');
  let parsed;
  try {
    parsed = text.trimStart().startsWith('-----BEGIN PGP') ? await pgp.readSignature({ armoredSignature: text }) : await pgp.readSignature({ binarySignature: new Uint8Array(signature) });
  } catch (e) {
    throw new NotASignature((e as Error).message);
  }
  const message = await pgp.createMessage({ binary: data });
  const result = await pgp.verify({ message, signature: parsed, verificationKeys: distinct(keys), format: 'binary' });
  // The signatures settle once the data has been read through.
  const reader = result.data.getReader();
  while (!(await reader.read()).done);
  return Promise.all(result.signatures.map((r) => checkOne(r, keys)));
};

/** A signed message (as `gpg --sign` writes it: the data inside): its signatures and its data. */
export const verifySigned = async (bytes: Buffer, keys: readonly LoadedKey[]): Promise<{ checks: SignatureCheck[]; data: Buffer }> => {
  const pgp = await openpgp();
  let result;
  try {
    const message = await pgp.readMessage({ binaryMessage: new Uint8Array(bytes) });
    result = await pgp.verify({ message, verificationKeys: distinct(keys), format: 'binary', expectSigned: false });
  } catch (e) {
    throw new NotASignature((e as Error).message);
  }
  return { checks: await Promise.all(result.signatures.map((r) => checkOne(r, keys))), data: Buffer.from(result.data) };
};
