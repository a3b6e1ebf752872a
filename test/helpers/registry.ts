/**
 * A real registry for the pull tests: Debian's docker-registry (the distribution registry, v2.8) on
 * 127.0.0.1 with a config in a temp dir, with no auth, htpasswd (Basic; the bcrypt hash made with
 * libcrypt through perl, which every Debian system has), or token auth (Bearer: a realm served by the
 * test that signs ES256 JWTs with a key and certificate made by openssl, which the registry checks
 * against its rootcertbundle). Filled with `skopeo copy` from OCI layouts. A counting proxy in front
 * of it sees (and may cut) every request.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, sign, createPrivateKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const USER = 'puller';
export const PASSWORD = 'Correct-Horse-7';

export interface Registry {
  /** 127.0.0.1:PORT */
  host: string;
  /** Token requests the realm answered (Bearer mode), each with the scope asked for. */
  tokens: string[];
  stop: () => Promise<void>;
}

export const listen = async (server: Server): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};

const freePort = async (): Promise<number> => {
  const s = createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
};

const closeServer = (s: Server): Promise<void> =>
  new Promise((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  });

/** A bcrypt hash of `password` by the system's crypt(3) (libxcrypt knows $2b$; perl-base is Essential in Debian). */
const bcrypt = (password: string): string => {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  // The last of bcrypt's 22 salt characters carries 2 bits only: one of .Oeu.
  const salt = [...randomBytes(21)].map((b) => alphabet[b % 64]).join('') + '.Oeu'[randomBytes(1)[0]! % 4];
  return execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`]).toString();
};

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** The token realm: Basic credentials in, a JWT for the scope asked for out (distribution's token spec). */
const tokenRealm = (dir: string, service: string, issuer: string, tokens: string[]): Server => {
  const key = createPrivateKey(readFileSync(join(dir, 'token.key')));
  const der = execFileSync('openssl', ['x509', '-in', join(dir, 'token.crt'), '-outform', 'DER']);
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://realm');
    const auth = req.headers.authorization ?? '';
    if (auth !== `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"wrong user or password"}');
      return;
    }
    const scope = url.searchParams.get('scope') ?? '';
    tokens.push(scope);
    const access = scope === '' ? [] : scope.split(' ').map((s) => {
      const [type, name, actions] = s.split(':') as [string, string, string];
      return { type, name, actions: actions.split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [der.toString('base64')] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: USER, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access }));
    const signature = sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${b64url(signature)}` }));
  });
};

/** Starts a registry; `auth` chooses none, htpasswd (Basic) or token (Bearer). */
export const startRegistry = async (auth: 'none' | 'basic' | 'bearer' = 'none'): Promise<Registry> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-registry-'));
  const port = await freePort();
  const tokens: string[] = [];
  let realm: Server | undefined;
  let authConfig = '';
  if (auth === 'basic') {
    writeFileSync(join(dir, 'htpasswd'), `${USER}:${bcrypt(PASSWORD)}\n`);
    authConfig = `auth:\n  htpasswd:\n    realm: podlog-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (auth === 'bearer') {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=podlog-test-token',
      '-keyout', join(dir, 'token.key'), '-out', join(dir, 'token.crt'),
    ], { stdio: 'ignore' });
    realm = tokenRealm(dir, 'podlog-test-registry', 'podlog-test-realm', tokens);
    const realmPort = await listen(realm);
    authConfig = `auth:\n  token:\n    realm: http://127.0.0.1:${realmPort}/token\n    service: podlog-test-registry\n    issuer: podlog-test-realm\n    rootcertbundle: ${join(dir, 'token.crt')}\n`;
  }
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: podlog-test\n${authConfig}`,
  );
  // Killed with the test process even when ava kills that without running teardowns (a timeout).
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL', '--', '/usr/bin/docker-registry', 'serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    if (realm) await closeServer(realm);
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const status = await new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.end();
    });
    if (status === 200 || status === 401) break;
    if (i > 100 || child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host: `127.0.0.1:${port}`, tokens, stop };
};

/**
 * `skopeo copy` of an OCI layout's image (`oci:DIR:TAG`) to the registry; `all` copies every platform
 * of an index. Asynchronous: the token realm answers skopeo from this process.
 */
export const push = async (layout: string, registry: Registry | string, dest: string, options: { tag?: string; format?: 'oci' | 'v2s2'; all?: boolean; creds?: boolean } = {}): Promise<void> => {
  const host = typeof registry === 'string' ? registry : registry.host;
  await execFileAsync('/usr/bin/skopeo', [
    'copy', '--insecure-policy', '--dest-tls-verify=false', ...(options.creds ? ['--dest-creds', `${USER}:${PASSWORD}`] : []),
    ...(options.format ? ['--format', options.format] : []), ...(options.all ? ['--all'] : []),
    `oci:${layout}${options.tag ? `:${options.tag}` : ''}`, `docker://${host}/${dest}`,
  ]);
};

/**
 * rkt's auth.d under the local config `config`, with `credentials` (the test user's by default) for
 * `host`; returns the local config.
 */
export const rktAuth = (config: string, host: string, credentials: { user: string; password: string } = { user: USER, password: PASSWORD }): string => {
  mkdirSync(join(config, 'auth.d'), { recursive: true });
  writeFileSync(join(config, 'auth.d', 'registry.json'), JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: [host], credentials }));
  return config;
};

export interface Seen {
  method: string;
  path: string;
  range?: string;
}

export interface Proxy {
  host: string;
  seen: Seen[];
  /** Cuts the next answer to a path matching `path` after `bytes` of its body (the connection is destroyed). */
  cutNext: (path: RegExp, bytes: number) => void;
  stop: () => Promise<void>;
}

/** An HTTP proxy in front of `target` (HOST:PORT) that records every request and can cut an answer short. */
export const countingProxy = async (target: string): Promise<Proxy> => {
  const [hostname, port] = target.split(':') as [string, string];
  const seen: Seen[] = [];
  let cut: { path: RegExp; bytes: number } | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    seen.push({ method: req.method ?? 'GET', path, ...(req.headers.range ? { range: req.headers.range } : {}) });
    const cutHere = cut && cut.path.test(path) ? cut : undefined;
    if (cutHere) cut = undefined;
    const upstream = request({ hostname, port: Number(port), path, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (!cutHere) {
        up.pipe(res);
        return;
      }
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        const room = cutHere.bytes - sent;
        if (room > 0) res.write(chunk.subarray(0, room));
        sent += chunk.length;
        if (sent >= cutHere.bytes) {
          up.destroy();
          res.socket?.destroy();
        }
      });
      up.on('end', () => res.end());
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  const listenPort = await listen(server);
  return {
    host: `127.0.0.1:${listenPort}`,
    seen,
    cutNext: (path, bytes) => (cut = { path, bytes }),
    stop: () => closeServer(server),
  };
};
