/**
 * `podlog fetch URL`: an http(s) download into cas/tmp/, then imported like a file. With an expected
 * id (--hash), the image is refused before anything of it is stored if its id differs. Redirects are
 * followed (at most five); anything but 200 is an error naming the URL and the status.
 */
import { createWriteStream, rmSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PodlogError } from '../errors.js';
import type { ImageRecord } from './index-projection.js';
import { progressFor } from './progress.js';
import { scratch } from './scratch.js';
import type { ImportOptions, Store } from './store.js';

const TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;

const request = (url: URL): Promise<IncomingMessage> =>
  new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    const req = get(url, { timeout: TIMEOUT_MS }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });

/** The response to GET `url` after redirects, status 200. */
const open = async (url: string): Promise<IncomingMessage> => {
  let current = new URL(url);
  for (let hops = 0; ; hops++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') {
      throw new PodlogError('EUSAGE', `${url}: podlog fetches http and https URLs only`);
    }
    let res: IncomingMessage;
    try {
      res = await request(current);
    } catch (e) {
      throw new PodlogError('EFETCH', `${url}: ${(e as Error).message}`);
    }
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location && hops < MAX_REDIRECTS) {
      res.resume();
      current = new URL(res.headers.location, current);
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new PodlogError('EFETCH', `${url}: GET ${current.href} answered ${status} ${res.statusMessage ?? ''}`.trimEnd());
    }
    return res;
  }
};

export const fetchUrl = async (store: Store, url: string, options: Pick<ImportOptions, 'expectedId' | 'quiet' | 'limits'> = {}): Promise<ImageRecord> => {
  const progress = progressFor(options.quiet ?? false);
  const tmp = scratch(store.layout, 'fetch');
  try {
    const res = await open(url);
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
      await pipeline(res, tap, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
    } catch (e) {
      throw new PodlogError('EFETCH', `${url}: the download failed: ${(e as Error).message}`);
    } finally {
      progress.done();
    }
    if (Number.isFinite(length) && bytes !== length) {
      throw new PodlogError('ETRUNCATED', `${url}: the download ended after ${bytes} of ${length} bytes`);
    }
    return await store.importArchive(tmp, url, { source: url, expectedId: options.expectedId, progress, tag: undefined, limits: options.limits });
  } finally {
    rmSync(tmp, { force: true });
  }
};
