/**
 * `fetch FILE` with its signature checked (verify.ts): the image file's import, preceded by the check
 * when one is due and followed by the verdict's ImageVerified.
 *
 * What is checked is what is stored: the file is copied into cas/tmp/ first, the signature is checked
 * over that copy and the copy is imported (a user's file could change between a check of it and its
 * import). The check needs the image's name, from its manifest, before the import reads it again:
 * with a check due, an ACI is read three times (copy, manifest and signature, import) where an
 * unchecked import reads it once. An OCI layout (directory or tar) carries no signature podlog can
 * check, so with a key trusted it is refused unless --insecure-options=image; a registry's images
 * have simple signing instead.
 */
import { copyFile, readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { rmSync, statSync } from 'node:fs';
import { readConfig } from '../../config-file.js';
import { PodlogError } from '../../errors.js';
import { readImage } from '../../native.js';
import { parseImageManifest } from '../aci-manifest.js';
import type { ImageRecord } from '../index-projection.js';
import { archiveKind } from '../oci-archive.js';
import type { FetchPolicy } from '../policy.js';
import { progressFor } from '../progress.js';
import { scratch } from '../scratch.js';
import { about, type ImportOptions, type Store } from '../store.js';
import { checkAci, checkDue, recordVerdict, type Verdict } from './verify.js';

/** The bytes of `path`.asc, rkt's detached signature beside an image file; undefined when there is none. */
export const signatureBeside = async (path: string): Promise<Buffer | undefined> => {
  try {
    return await readFile(`${path}.asc`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PodlogError('EIO', `${path}.asc: ${(e as Error).message}`);
  }
};

const unsignable = (path: string, what: string): PodlogError =>
  new PodlogError('EUNTRUSTED', `${path}: refused: ${what} carries no signature podlog can check, and keys are trusted; --insecure-options=image skips the signature check`);

/**
 * The verdict on an image file in cas/tmp/ (`file`: the private copy that will be imported; `shown`
 * names it): an ACI's detached signature, read by `signature` only when a check is due, checked for
 * the name in its manifest; an OCI layout tar is refused when keys are trusted. For `fetch URL`:
 * the download, with `signature` the GET of URL.asc (fetchSignature).
 */
export const verifyArchive = async (
  store: Store, policy: FetchPolicy, a: { shown: string; file: string; signature: () => Promise<Buffer | undefined> }, options: Pick<ImportOptions, 'limits'> = {},
): Promise<Verdict> => {
  const due = checkDue(policy);
  if ('verdict' in due) return due.verdict;
  if ((await archiveKind(a.file, a.shown)).format === 'oci') throw unsignable(a.shown, 'an OCI layout');
  const info = await readImage(a.file, { ...readConfig(store.layout.dataDir).images, ...options.limits }).catch((e: unknown) => {
    throw about(e, a.shown, [[a.file, a.shown]]);
  });
  const name = parseImageManifest(info.manifest, a.shown).name;
  return checkAci(policy, { shown: a.shown, path: a.file, name, signature: await a.signature() });
};

/** Imports the image file at `path` (as `store.importFile` does) if `policy` lets it in, and records the verdict. */
export const importVerified = async (store: Store, policy: FetchPolicy, path: string, options: ImportOptions = {}): Promise<ImageRecord> => {
  const abs = resolvePath(path);
  const source = options.source ?? abs;
  const due = checkDue(policy);
  if ('verdict' in due) {
    const record = await store.importFile(path, options);
    await recordVerdict(store, record.id, source, due.verdict, options);
    return record;
  }
  if (statSync(abs, { throwIfNoEntry: false })?.isDirectory()) throw unsignable(path, 'an OCI layout directory');
  const copy = scratch(store.layout, 'verify');
  try {
    await copyFile(abs, copy).catch((e: unknown) => {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new PodlogError(missing ? 'ENOENT' : 'EIO', `${path}: ${missing ? 'no such file or directory' : (e as Error).message}`);
    });
    const verdict = await verifyArchive(store, policy, { shown: path, file: copy, signature: () => signatureBeside(abs) }, options);
    const record = await store.importArchive(copy, path, {
      source, expectedId: options.expectedId, progress: progressFor(options.quiet ?? false), tag: options.tag, limits: options.limits,
    });
    await recordVerdict(store, record.id, source, verdict, options);
    return record;
  } finally {
    rmSync(copy, { force: true });
  }
};
