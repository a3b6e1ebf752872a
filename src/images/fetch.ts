/**
 * `podlog fetch URL`: an http(s) download into cas/tmp/, its signature (URL.asc) checked when a check
 * is due (trust/verify.ts), then imported like a file. With an expected id (--hash), the image is
 * refused before anything of it is stored if its id differs.
 */
import { createWriteStream, rmSync } from 'node:fs';
import { Transform } from 'node:stream';
import { PodlogError } from '../errors.js';
import { httpGetFollowing } from './http-get.js';
import { pipeToFile } from './pipe-to-file.js';
import type { ImageRecord } from './index-projection.js';
import { defaultFetchPolicy } from './policy.js';
import { progressFor } from './progress.js';
import { scratch } from './scratch.js';
import type { ImportOptions, Store } from './store.js';
import { verifyArchive } from './trust/import.js';
import { fetchSignature } from './trust/lookaside.js';
import { recordVerdict } from './trust/verify.js';

/** rkt's place for an image URL's signature: its path with .asc appended, before any query. */
const signatureUrlOf = (url: string): string => {
  const u = new URL(url);
  u.pathname += '.asc';
  return u.href;
};

export const fetchUrl = async (store: Store, url: string, options: Pick<ImportOptions, 'expectedId' | 'quiet' | 'limits' | 'policy'> = {}): Promise<ImageRecord> => {
  const policy = options.policy ?? defaultFetchPolicy();
  const progress = progressFor(options.quiet ?? false);
  const tmp = scratch(store.layout, 'fetch');
  try {
    const res = (await httpGetFollowing(url, policy, 'EFETCH'))!;
    const length = Number(res.headers['content-length']);
    progress.start('downloading', Number.isFinite(length) ? length : undefined);
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        progress.add(chunk.length);
        done(null, chunk);
      },
    });
    try {
      await pipeToFile(res, tap, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
    } catch (e) {
      throw new PodlogError('EFETCH', `${url}: the download failed: ${(e as Error).message}`);
    } finally {
      progress.done();
    }
    if (Number.isFinite(length) && bytes !== length) {
      throw new PodlogError('ETRUNCATED', `${url}: the download ended after ${bytes} of ${length} bytes`);
    }
    const verdict = await verifyArchive(store, policy, { shown: url, file: tmp, signature: () => fetchSignature(signatureUrlOf(url), policy) }, options);
    const record = await store.importArchive(tmp, url, { source: url, expectedId: options.expectedId, progress, tag: undefined, limits: options.limits });
    await recordVerdict(store, record.id, url, verdict, options);
    return record;
  } finally {
    rmSync(tmp, { force: true });
  }
};
