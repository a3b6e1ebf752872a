/**
 * Bearer tokens for an API reachable over TCP: the token is read from a file only its owner can read,
 * and every request must present it. Both sides are hashed before the constant-time comparison so that
 * they have equal lengths (timingSafeEqual needs that) and the token's length does not leak either.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { PodlogError } from '../../errors.js';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * The token of a --token-file: its content without the final newline. Refused where its group or
 * others have any access (as ssh refuses a private key): a token others can read is no secret, and
 * one others can write lets them choose it.
 */
export const readTokenFile = (path: string): Buffer => {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new PodlogError('EUSAGE', `--token-file: ${(e as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new PodlogError('EUSAGE', `--token-file: ${path} has mode ${(mode & 0o777).toString(8)}: only its owner may have access to it (chmod 600)`);
  }
  if (text.trim() === '' || /\s/.test(text)) throw new PodlogError('EUSAGE', `--token-file: ${path} must hold one token, without spaces`);
  return digest(text);
};

/** Whether an Authorization header presents the token (a sha256 digest, from readTokenFile). */
export const presentsToken = (tokenDigest: Buffer, header: string | undefined): boolean => {
  const match = /^Bearer +(\S+)$/i.exec(header ?? '');
  return match !== null && timingSafeEqual(digest(match[1]!), tokenDigest);
};
