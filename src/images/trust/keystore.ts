/**
 * The trusted keys, laid out as rkt's keystore: `<localConfig>/trustedkeys/root.d/<fingerprint>` for a
 * key that vouches for every image, `<localConfig>/trustedkeys/prefix.d/<prefix>/<fingerprint>` for one
 * that vouches for the images named `<prefix>` or `<prefix>/…` (a prefix is a path: `example.com/app`,
 * `127.0.0.1:5000/team`). Each file is one armored public key, named by its primary key's fingerprint
 * in lowercase hex, files 0644 and directories 0755 (rkt's modes: public keys are no secret).
 *
 * Which keys there are is read from the file names alone (no OpenPGP parsing), so a fetch with an empty
 * store pays nothing. A file in the store that is not named by a fingerprint is an error, not skipped:
 * a key an operator put there by hand under another name would otherwise not count, and a store whose
 * only key does not count is an empty one, which accepts every image (see verify.ts).
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { PodlogError } from '../../errors.js';
import { openpgp } from './pgp.js';

/** A key in the store. */
export interface TrustedKey {
  /** What it vouches for: a name prefix, or '' for every image (root.d). */
  prefix: string;
  /** The primary key's fingerprint, lowercase hex (its file's name). */
  fingerprint: string;
  file: string;
}

export const trustedKeysDir = (localConfig: string): string => join(localConfig, 'trustedkeys');
const rootDir = (localConfig: string): string => join(trustedKeysDir(localConfig), 'root.d');
const prefixDir = (localConfig: string): string => join(trustedKeysDir(localConfig), 'prefix.d');
const keyDir = (localConfig: string, prefix: string): string => (prefix === '' ? rootDir(localConfig) : join(prefixDir(localConfig), prefix));

/** v4 fingerprints are 40 hex digits, v6 ones 64. */
const FINGERPRINT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** Path segments of an image name (an ACI's name, a registry's HOST[:PORT]/REPOSITORY): lowercase, no dot segments. */
const PREFIX = /^[a-z0-9][a-z0-9._~:-]*(?:\/[a-z0-9][a-z0-9._~-]*)*$/;
/** Deeper than any prefix anyone writes; stops a symlink loop. */
const MAX_DEPTH = 32;

/** A prefix as given, checked: it becomes a path under prefix.d. */
export const checkPrefix = (prefix: string): string => {
  if (!PREFIX.test(prefix) || prefix.split('/').some((s) => s === '.' || s === '..')) {
    throw new PodlogError('EUSAGE', `--prefix: ${JSON.stringify(prefix)} is not an image name prefix (lowercase path segments, such as example.com/app or 127.0.0.1:5000/team)`);
  }
  return prefix;
};

/** A fingerprint as people copy it from gpg (upper case, spaced in groups of four), as stored. */
export const normalFingerprint = (text: string): string => {
  const fpr = text.replace(/\s+/g, '').toLowerCase();
  if (!FINGERPRINT.test(fpr)) throw new PodlogError('EUSAGE', `${JSON.stringify(text)} is not a key fingerprint (40 or 64 hex digits, as gpg --fingerprint shows)`);
  return fpr;
};

const list = (dir: string): string[] => {
  try {
    return readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PodlogError('ETRUST_STORE', `${dir}: ${(e as Error).message}`);
  }
};

/** What storeKeys writes before its rename; one a killed `trust` left is no key, and not counted. */
const TEMPORARY = /^\.[0-9a-f]+\.\d+$/;

const strayFile = (file: string): PodlogError =>
  new PodlogError('ETRUST_STORE', `${file}: not a trusted key file (each is named by its key's fingerprint; podlog trust adds keys, podlog trust rm removes them)`);

/** The keys in `dir` (root.d, or a prefix's directory) and, for prefix.d, its deeper prefixes. */
const walk = (base: string, dir: string, deeper: boolean, depth: number, into: TrustedKey[]): void => {
  for (const name of list(dir)) {
    if (TEMPORARY.test(name)) continue;
    const file = join(dir, name);
    let st;
    try {
      st = statSync(file);
    } catch (e) {
      throw new PodlogError('ETRUST_STORE', `${file}: ${(e as Error).message}`);
    }
    if (st.isDirectory() && deeper && depth < MAX_DEPTH) walk(base, file, deeper, depth + 1, into);
    else if (st.isFile() && FINGERPRINT.test(name) && (depth > 0 || !deeper)) into.push({ prefix: deeper ? relative(base, dir) : '', fingerprint: name, file });
    else throw strayFile(file);
  }
};

/** Every key in the store, root keys first, then by prefix. */
export const trustedKeys = (localConfig: string): TrustedKey[] => {
  const keys: TrustedKey[] = [];
  walk(rootDir(localConfig), rootDir(localConfig), false, 0, keys);
  walk(prefixDir(localConfig), prefixDir(localConfig), true, 0, keys);
  return keys;
};

/** Whether `key` vouches for images named `name`: a root key, or one for the name or a parent of it. */
export const vouchesFor = (key: Pick<TrustedKey, 'prefix'>, name: string): boolean =>
  key.prefix === '' || name === key.prefix || name.startsWith(`${key.prefix}/`);

/** A key read from a file the user gave, checked and ready to store. */
export interface NewKey {
  fingerprint: string;
  userIds: string[];
  armored: string;
}

/**
 * The public keys in `bytes` (armored or binary, one key or several, as `gpg --export` writes them),
 * each able to sign; anything else is refused naming `shown`.
 */
export const readPublicKeys = async (bytes: Buffer, shown: string): Promise<NewKey[]> => {
  const pgp = await openpgp();
  const text = bytes.toString('latin1');
  let keys: Awaited<ReturnType<typeof pgp.readKeys>>;
  try {
    keys = text.trimStart().startsWith('-----BEGIN PGP') ? await pgp.readKeys({ armoredKeys: text }) : await pgp.readKeys({ binaryKeys: new Uint8Array(bytes) });
  } catch (e) {
    if (/PRIVATE KEY BLOCK/.test(text)) throw secretKey(shown);
    throw new PodlogError('EBADKEY', `${shown}: not an OpenPGP public key (${(e as Error).message})`);
  }
  const found: NewKey[] = [];
  for (const key of keys) {
    if (key.isPrivate()) throw secretKey(shown);
    const fingerprint = key.getFingerprint();
    try {
      await key.getSigningKey();
    } catch (e) {
      throw new PodlogError('EBADKEY', `${shown}: key ${fingerprint.toUpperCase()} cannot sign anything podlog would check (${(e as Error).message})`);
    }
    found.push({ fingerprint, userIds: key.getUserIDs(), armored: key.armor() });
  }
  return found;
};

const secretKey = (shown: string): PodlogError =>
  new PodlogError('EBADKEY', `${shown}: holds a secret key; trust takes the public key only (gpg --armor --export FINGERPRINT)`);

/** Makes `rel`'s directories below `base` with mode 0755, whatever the umask. */
const makeDirs = (base: string, rel: string): void => {
  let dir = base;
  for (const part of ['', ...rel.split('/').filter((p) => p !== '')]) {
    dir = join(dir, part);
    if (mkdirSync(dir, { recursive: true }) !== undefined) chmodSync(dir, 0o755);
  }
};

/** Stores `keys` for `prefix` ('' for root): each written whole (a temporary file renamed), mode 0644. */
export const storeKeys = (localConfig: string, prefix: string, keys: readonly NewKey[]): TrustedKey[] => {
  const dir = keyDir(localConfig, prefix);
  makeDirs(localConfig, relative(localConfig, dir));
  return keys.map((k) => {
    const file = join(dir, k.fingerprint);
    const tmp = join(dir, `.${k.fingerprint}.${process.pid}`);
    writeFileSync(tmp, k.armored, { mode: 0o644 });
    chmodSync(tmp, 0o644);
    renameSync(tmp, file);
    return { prefix, fingerprint: k.fingerprint, file };
  });
};

/** The armored key of a stored entry. */
export const readStoredKey = (key: TrustedKey): string => readFileSync(key.file, 'utf8');

/**
 * Removes the key `fingerprint` from `prefix` ('' for root), or from everywhere it is trusted when
 * `prefix` is undefined; prefix directories left empty go too. Returns what it removed.
 */
export const removeKey = (localConfig: string, fingerprint: string, prefix: string | undefined): TrustedKey[] => {
  const removed = trustedKeys(localConfig).filter((k) => k.fingerprint === fingerprint && (prefix === undefined || k.prefix === prefix));
  for (const k of removed) {
    rmSync(k.file);
    for (let dir = dirname(k.file); k.prefix !== '' && dir !== prefixDir(localConfig) && list(dir).length === 0; dir = dirname(dir)) rmdirSync(dir);
  }
  return removed;
};
