/**
 * A GET over http(s) as podlog's fetches make it: redirects followed (at most five), never from https
 * to plain http, plain http only with --insecure-options=http as in rkt, the certificate unchecked
 * only with --insecure-options=tls; anything but 200 (or a 404 the caller expects) is an error naming
 * the URL and the status.
 */
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { PodlogError } from '../errors.js';
import type { FetchPolicy } from './policy.js';

const TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;

const request = (url: URL, policy: FetchPolicy): Promise<IncomingMessage> =>
  new Promise((resolve, reject) => {
    const req = url.protocol === 'https:' ? httpsGet(url, { timeout: TIMEOUT_MS, rejectUnauthorized: !policy.skipTlsVerify }, resolve) : httpGet(url, { timeout: TIMEOUT_MS }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });

/**
 * The response to GET `url` after redirects, status 200; undefined for a 404 when `absentOk` (a
 * signature that is not there). `code` is the error's code for what went wrong on the way.
 */
export const httpGetFollowing = async (url: string, policy: FetchPolicy, code: string, absentOk = false): Promise<IncomingMessage | undefined> => {
  let current = new URL(url);
  for (let hops = 0; ; hops++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') {
      throw new PodlogError('EUSAGE', `${url}: podlog fetches http and https URLs only`);
    }
    if (current.protocol === 'http:' && !policy.allowHttp) {
      throw new PodlogError('EINSECURE', `${url}: ${current.href === url ? '' : `redirected to ${current.href}: `}plain http, which only --insecure-options=http allows`);
    }
    let res: IncomingMessage;
    try {
      res = await request(current, policy);
    } catch (e) {
      throw new PodlogError(code, `${url}: ${(e as Error).message}`);
    }
    const status = res.statusCode ?? 0;
    // A body podlog will not read is not drained either: a server may send it forever.
    if (status >= 300 && status < 400 && res.headers.location) {
      res.destroy();
      if (hops === MAX_REDIRECTS) throw new PodlogError(code, `${url}: more than ${MAX_REDIRECTS} redirects, the last to ${res.headers.location} (a redirect loop?)`);
      const next = new URL(res.headers.location, current);
      if (current.protocol === 'https:' && next.protocol === 'http:') throw new PodlogError('EINSECURE', `${url}: ${current.href} redirects from https to plain http (${next.href}), which podlog never follows`);
      current = next;
      continue;
    }
    if (status === 404 && absentOk) {
      res.destroy();
      return undefined;
    }
    if (status !== 200) {
      res.destroy();
      throw new PodlogError(code, `${url}: GET ${current.href} answered ${status} ${res.statusMessage ?? ''}`.trimEnd());
    }
    return res;
  }
};
