/**
 * HTTP to one repository of a registry (the distribution API v2), over node:http and node:https as
 * fetch.ts: they give what a puller facing a hostile server needs and Node's fetch hides or lacks: the
 * socket to destroy the moment a body passes its cap, an idle timeout per socket, TLS verification
 * off for one agent only (--insecure-options=tls), and redirects decided by hand (followed for blobs
 * only, never from https to http, credentials never sent to another origin). No client library fits
 * better: the maintained ones are either Rust (oci-client, which would stream blobs through the addon
 * and hand Node nothing to cap or resume) or whole image tools.
 *
 * Authentication follows the registry's 401: Bearer (a token from its realm for
 * `repository:NAME:pull`, kept for the pull) or Basic, with the credentials auth.ts finds.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { PodlogError } from '../../errors.js';
import type { FetchPolicy } from '../policy.js';
import { basicHeader, credentialsFor, parseChallenges, type Credentials } from './auth.js';
import type { DockerRef } from './reference.js';

/** A socket that brings nothing for `idleMs` is closed (a test shortens it to see a stalled registry). */
export const timeouts = { idleMs: 30_000 };
const MAX_REDIRECTS = 5;
/** Token answers and error bodies are small JSON documents. */
const SMALL = 1 << 20;
/** rkt's word for plain http, named in the refusal. */
export const HTTP_FLAG = '--insecure-options=http';

export interface Get {
  accept?: readonly string[];
  /** Asks for the bytes from this offset on (a resumed blob); the answer may be 206 or a whole 200. */
  from?: number;
  /** Follow redirects (blobs are often served by a CDN); a manifest's redirect is an error. */
  redirects?: boolean;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  url: URL;
}

const fail = (code: string, message: string): PodlogError => new PodlogError(code, message);

/**
 * Reads `body` whole, at most `cap` bytes: one byte more and the socket is destroyed, so a server
 * that sends forever costs the cap and no more.
 */
export const readCapped = async (body: IncomingMessage, cap: number, what: string): Promise<Buffer> => {
  const length = Number(body.headers['content-length']);
  const over = (): PodlogError => {
    body.destroy();
    return fail('ETOO_LARGE', `${what} is larger than the ${cap} bytes allowed`);
  };
  if (Number.isFinite(length) && length > cap) throw over();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > cap) throw over();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
};

export class RegistryClient {
  readonly base: URL;
  /** The Authorization header the registry accepted last (a Bearer token is for this one scope). */
  private authorization: string | undefined;
  /** Read at the first challenge that needs them (null: not read yet; undefined: none configured). */
  private credentials: Credentials | undefined | null = null;
  private readonly http = new HttpAgent({ keepAlive: true, maxSockets: 8 });
  private readonly https: HttpsAgent;

  constructor(
    readonly ref: DockerRef,
    private readonly policy: FetchPolicy,
  ) {
    // rkt (docker2aci) spoke plain http to a registry only when told so, and then only http.
    this.base = new URL(`${policy.allowHttp ? 'http' : 'https'}://${ref.registry}/`);
    this.https = new HttpsAgent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: !policy.skipTlsVerify });
  }

  /** Closes every connection of the pull. */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }

  private get shown(): string {
    return this.ref.reference;
  }

  private creds(): Credentials | undefined {
    if (this.credentials === null) this.credentials = credentialsFor(this.policy.localConfig, this.ref.registry);
    return this.credentials;
  }

  private checkScheme(url: URL, what: string): void {
    if (url.protocol === 'https:' || (url.protocol === 'http:' && this.policy.allowHttp)) return;
    if (url.protocol === 'http:') throw fail('EINSECURE', `${this.shown}: ${what} ${url.href} is plain http, which podlog does not use without ${HTTP_FLAG}`);
    throw fail('EFETCH', `${this.shown}: ${what} ${url.href} is neither http nor https`);
  }

  private send(url: URL, headers: OutgoingHttpHeaders): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const https = url.protocol === 'https:';
      const req = (https ? httpsRequest : httpRequest)(url, { method: 'GET', headers, agent: https ? this.https : this.http });
      let res: IncomingMessage | undefined;
      req.setTimeout(timeouts.idleMs, () => {
        const e = new Error(`no data from ${url.host} for ${timeouts.idleMs / 1000} s`);
        res?.destroy(e);
        req.destroy(e);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        // OpenSSL's words for a server that answered the handshake in plain http.
        const plain = https && /wrong version number/i.test(e.message);
        const why = plain ? `the server does not speak TLS (a plain-http registry needs ${HTTP_FLAG})` : e.message.trim();
        reject(fail(plain ? 'EINSECURE' : 'EFETCH', `${this.shown}: GET ${url.href}: ${why}`));
      });
      req.on('response', (r) => resolve((res = r)));
      req.end();
    });
  }

  /** Why a registry refused, from its JSON error body (distribution's `{"errors":[{code,message}]}`) when it has one. */
  private async refusal(a: { status: number; body: IncomingMessage; url: URL }, what: string): Promise<PodlogError> {
    let detail = '';
    try {
      const json = JSON.parse((await readCapped(a.body, SMALL, 'the error')).toString('utf8')) as { errors?: Array<{ code?: string; message?: string }> };
      detail = (json.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      a.body.destroy();
    }
    const code = a.status === 404 ? 'ENOENT' : a.status === 401 || a.status === 403 ? 'EAUTH' : 'EFETCH';
    return fail(code, `${this.shown}: ${what}: GET ${a.url.href} answered ${a.status} ${a.body.statusMessage ?? ''}${detail ? ` (${detail})` : ''}`.replace(/ +\(/, ' ('));
  }

  /** GET `path` of the repository (`manifests/REF`, `blobs/DIGEST`), authenticated as the registry asks; a 200 or 206. */
  async get(path: string, what: string, options: Get = {}): Promise<Answer> {
    let url = new URL(`/v2/${this.ref.repository}/${path}`, this.base);
    this.checkScheme(url, 'the registry');
    let authenticated = false;
    for (let hops = 0; ; ) {
      const headers: OutgoingHttpHeaders = {};
      if (options.accept) headers.accept = options.accept.join(', ');
      if (options.from) headers.range = `bytes=${options.from}-`;
      // Credentials go to the registry only, never to where it redirects.
      if (this.authorization && url.origin === this.base.origin) headers.authorization = this.authorization;
      const res = await this.send(url, headers);
      const status = res.statusCode ?? 0;
      if (status === 401 && !authenticated && url.origin === this.base.origin) {
        res.resume();
        await this.authenticate(res.headers['www-authenticate'], url);
        authenticated = true;
        continue;
      }
      if (status >= 300 && status < 400 && options.redirects) {
        res.resume();
        const location = res.headers.location;
        if (!location) throw fail('EFETCH', `${this.shown}: ${what}: ${url.href} redirects (${status}) without a Location`);
        if (++hops > MAX_REDIRECTS) throw fail('EFETCH', `${this.shown}: ${what}: more than ${MAX_REDIRECTS} redirects, the last to ${location} (a redirect loop?)`);
        const next = new URL(location, url);
        if (url.protocol === 'https:' && next.protocol !== 'https:') {
          throw fail('EINSECURE', `${this.shown}: ${what}: ${url.href} redirects to ${next.href}, from https to ${next.protocol.slice(0, -1)}, which podlog never follows`);
        }
        this.checkScheme(next, `${what} redirected to`);
        url = next;
        continue;
      }
      if (status === 200 || (status === 206 && options.from)) return { status, headers: res.headers, body: res, url };
      throw await this.refusal({ status, body: res, url }, what);
    }
  }

  /** Answers a 401's challenge: a Bearer token from the realm, or Basic credentials. */
  private async authenticate(header: string | string[] | undefined, url: URL): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const creds = this.creds();
    if (bearer) {
      this.authorization = `Bearer ${await this.token(bearer.params, creds)}`;
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!creds) throw fail('EAUTH', `${this.shown}: ${url.host} asks for a user and password, and none is configured for it (${this.policy.localConfig}/auth.d/*.json or ~/.docker/config.json)`);
      this.authorization = basicHeader(creds);
      return;
    }
    throw fail('EAUTH', `${this.shown}: GET ${url.href} answered 401 with no challenge podlog answers (${JSON.stringify(header ?? '')})`);
  }

  /** A token for `repository:NAME:pull` from the realm (distribution's token spec), with the credentials if any. */
  private async token(params: Record<string, string>, creds: Credentials | undefined): Promise<string> {
    if (!params.realm) throw fail('EAUTH', `${this.shown}: the registry asks for a Bearer token but names no realm`);
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch {
      throw fail('EAUTH', `${this.shown}: the token realm ${JSON.stringify(params.realm)} is not a URL`);
    }
    this.checkScheme(realm, 'the token realm');
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', `repository:${this.ref.repository}:pull`);
    const res = await this.send(realm, creds ? { authorization: basicHeader(creds) } : {});
    if (res.statusCode !== 200) {
      const e = await this.refusal({ status: res.statusCode ?? 0, body: res, url: realm }, 'the token realm');
      throw fail('EAUTH', `${e.message}${creds ? ` (as ${creds.user}, from ${creds.from})` : ' (no credentials are configured for this registry)'}`);
    }
    let token: unknown;
    try {
      const json = JSON.parse((await readCapped(res, SMALL, 'the token')).toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = json.token ?? json.access_token;
    } catch (e) {
      throw fail('EAUTH', `${this.shown}: the token realm ${realm.origin}${realm.pathname} answered no JSON: ${(e as Error).message}`);
    }
    if (typeof token !== 'string' || token === '') throw fail('EAUTH', `${this.shown}: the token realm ${realm.origin}${realm.pathname} answered no token`);
    return token;
  }
}
