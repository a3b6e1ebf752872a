/**
 * Hostile registries, each a small HTTP server of the test's: a blob that does not match its digest,
 * a manifest bigger than 4 MiB, a layer that never ends, a redirect loop, a redirect from https to
 * http, a manifest list with no image for this platform, an index that points at itself (which no
 * index can: it does not match the digest it names) and indexes nested too deep. Each pull
 * is refused with an error naming the reference and what is wrong, nothing is stored (image gc
 * finds nothing to collect afterwards, cas/partial/ is empty) and the connections are closed. Then
 * a registry that ignores Range, image gc's rule for partial downloads, a blob redirected to a CDN,
 * and a registry that stalls.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { storeLayout } from '../../src/images/layout.js';
import { collectGarbage } from '../../src/images/maintenance.js';
import { defaultFetchPolicy } from '../../src/images/policy.js';
import { boardFor } from '../../src/images/progress.js';
import { fetchBlob } from '../../src/images/registry/blobs.js';
import { RegistryClient, timeouts } from '../../src/images/registry/client.js';
import type { Descriptor } from '../../src/images/registry/manifest.js';
import { pull } from '../../src/images/registry/pull.js';
import { parseDockerRef } from '../../src/images/registry/reference.js';
import { listen, rktAuth } from '../helpers/registry.js';
import { assertNothingStored, entries, exitProgram, makeOciLayout, podlogAsync, sandbox, tarDir, type Sandbox } from './helpers.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Blobs {
  manifest: Buffer;
  blobs: Map<string, Buffer>;
  layer: string;
}

/** A small valid image's manifest and blobs, to serve. */
const image = (s: Sandbox): Blobs => {
  const root = s.input('root');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'exit'), exitProgram(3), { mode: 0o755 });
  const dir = s.input('layout');
  const { layers, manifest } = makeOciLayout(dir, { layers: [{ tar: tarDir(root, s.input('root.tar')) }] });
  const blobs = new Map(entries(join(dir, 'blobs', 'sha256')).map((hex) => [`sha256:${hex}`, readFileSync(join(dir, 'blobs', 'sha256', hex))]));
  return { manifest: readFileSync(manifest), blobs, layer: sha256(readFileSync(layers[0]!)) };
};

type Handler = (req: IncomingMessage, res: ServerResponse, base: string) => boolean;

interface Hostile {
  host: string;
  /** Bytes of bodies written, per path. */
  written: Map<string, number>;
  open: () => Promise<number>;
  stop: () => Promise<void>;
}

/** A registry serving `img` as `x:v1`, unless `handler` answers a request first. */
const hostile = async (img: Blobs, handler: Handler, tls?: { key: Buffer; cert: Buffer }): Promise<Hostile> => {
  const written = new Map<string, number>();
  let base = '';
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/';
    const count = res.write.bind(res);
    res.write = ((chunk: Buffer, ...rest: never[]) => {
      written.set(path, (written.get(path) ?? 0) + chunk.length);
      return count(chunk, ...rest);
    }) as typeof res.write;
    if (handler(req, res, base)) return;
    const digest = /^\/v2\/x\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path)?.[1];
    if (path === '/v2/x/manifests/v1') res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(img.manifest);
    else if (digest && img.blobs.has(digest)) res.writeHead(200, { 'content-length': img.blobs.get(digest)!.length }).end(img.blobs.get(digest));
    else res.writeHead(404).end();
  };
  const server: Server = tls ? createHttpsServer(tls, serve) : createHttpServer(serve);
  const port = await listen(server);
  base = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    written,
    open: () => new Promise((resolve) => server.getConnections((_e, n) => resolve(n))),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

/** Writes `chunk` for as long as the client reads. */
const forever = (res: ServerResponse, chunk: Buffer): void => {
  const more = (): void => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', more);
  };
  more();
};

const indexOf = (manifests: unknown[]): Buffer => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));

interface Case {
  what: string;
  handler: (img: Blobs) => Handler;
  message: RegExp;
  tls?: boolean;
  check?: (t: import('ava').ExecutionContext, h: Hostile, img: Blobs) => void;
}

const CASES: Case[] = [
  {
    what: 'a blob that does not match its digest',
    handler: (img) => (req, res) => {
      if (!req.url?.endsWith(img.layer)) return false;
      const bad = Buffer.from(img.blobs.get(img.layer)!);
      bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
      res.writeHead(200).end(bad);
      return true;
    },
    message: /layer 1\/1 sha256:[0-9a-f]{64}: the blob does not match its digest: expected sha256:[0-9a-f]{64}, found sha256:[0-9a-f]{64}/,
  },
  {
    what: 'a manifest bigger than 4 MiB',
    handler: () => (req, res) => {
      if (!req.url?.includes('/manifests/')) return false;
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      forever(res, Buffer.alloc(1 << 16, 0x20));
      return true;
    },
    message: /manifest v1 \(http:\/\/127\.0\.0\.1:\d+\/v2\/x\/manifests\/v1\) is larger than the 4194304 bytes allowed/,
    check: (t, h) => t.true((h.written.get('/v2/x/manifests/v1') ?? 0) < 12 << 20, `the server wrote ${h.written.get('/v2/x/manifests/v1')} bytes before the connection closed`),
  },
  {
    what: 'a layer that never ends',
    handler: (img) => (req, res) => {
      if (!req.url?.endsWith(img.layer)) return false;
      res.writeHead(200);
      forever(res, Buffer.alloc(1 << 16, 0x41));
      return true;
    },
    message: /sends more than the \d+ bytes its descriptor says; the download was stopped/,
    check: (t, h, img) => t.true((h.written.get(`/v2/x/blobs/${img.layer}`) ?? 0) < 12 << 20),
  },
  {
    what: 'a redirect loop',
    handler: (img) => (req, res, base) => {
      if (!req.url?.endsWith(img.layer)) return false;
      res.writeHead(302, { location: `${base}${req.url}` }).end();
      return true;
    },
    message: /more than 5 redirects, the last to http:\/\/127\.0\.0\.1:\d+\/v2\/x\/blobs\/sha256:[0-9a-f]{64} \(a redirect loop\?\)/,
  },
  {
    what: 'a redirect from https to http',
    tls: true,
    handler: (img) => (req, res, base) => {
      if (!req.url?.endsWith(img.layer)) return false;
      res.writeHead(307, { location: `${base.replace('https:', 'http:')}/elsewhere` }).end();
      return true;
    },
    message: /redirects to http:\/\/127\.0\.0\.1:\d+\/elsewhere, from https to http, which podlog never follows/,
  },
  {
    what: 'a manifest list with no image for linux/amd64',
    handler: (img) => (req, res) => {
      if (!req.url?.endsWith('/manifests/v1')) return false;
      const d = { mediaType: OCI_MANIFEST, digest: sha256(img.manifest), size: img.manifest.length };
      const list = indexOf([{ ...d, platform: { os: 'linux', architecture: 'arm64' } }, { ...d, platform: { os: 'windows', architecture: 'amd64' } }]);
      res.writeHead(200, { 'content-type': OCI_INDEX }).end(list);
      return true;
    },
    message: /image index sha256:[0-9a-f]{64} has no image for linux\/amd64 \(it has linux\/arm64, windows\/amd64\)/,
  },
  {
    // An index cannot hold its own digest: one served again for a child's digest does not match it.
    what: 'an index that points at itself (served again for the digest it names), which does not match that digest',
    handler: () => {
      const index = indexOf([{ mediaType: OCI_INDEX, digest: `sha256:${'ab'.repeat(32)}`, size: 200, platform: { os: 'linux', architecture: 'amd64' } }]);
      return (req, res) => {
        if (!req.url?.includes('/manifests/')) return false;
        res.writeHead(200, { 'content-type': OCI_INDEX }).end(index);
        return true;
      };
    },
    message: /manifest sha256:abab[0-9a-f]+ from http:\/\/127\.0\.0\.1:\d+\/v2\/x\/manifests\/sha256:abab[0-9a-f]+ does not match its digest: expected sha256:abab[0-9a-f]+, found sha256:[0-9a-f]{64}/,
  },
  {
    // What an index that points at itself would come to, each index matching its digest.
    what: 'indexes nested deeper than the limit, which the refusal names',
    handler: (img) => {
      const served = new Map<string, Buffer>();
      let below = { mediaType: OCI_MANIFEST, digest: sha256(img.manifest), size: img.manifest.length };
      for (let i = 0; i < 5; i++) {
        const index = indexOf([{ ...below, platform: { os: 'linux', architecture: 'amd64' } }]);
        below = { mediaType: OCI_INDEX, digest: sha256(index), size: index.length };
        served.set(below.digest, index);
      }
      served.set('v1', served.get(below.digest)!);
      return (req, res) => {
        const index = served.get(/\/manifests\/(.+)$/.exec(req.url ?? '')?.[1] ?? '');
        if (!index) return false;
        res.writeHead(200, { 'content-type': OCI_INDEX }).end(index);
        return true;
      };
    },
    message: /image indexes nest more than 4 deep below sha256:[0-9a-f]{64}/,
  },
];

const tlsPair = (s: Sandbox): { key: Buffer; cert: Buffer } => {
  const [key, cert] = [s.input('tls.key'), s.input('tls.crt')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key: readFileSync(key), cert: readFileSync(cert) };
};

/** No connection of the pull is left open (the server sees the close a moment later). */
const closed = async (h: Hostile): Promise<number> => {
  for (let i = 0; i < 50 && (await h.open()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return h.open();
};

for (const c of CASES) {
  test(`hostile registry, ${c.what}: refused, nothing stored, image gc finds nothing, the connection closed`, async (t) => {
    const s = await sandbox();
    t.teardown(s.cleanup);
    const img = image(s);
    const h = await hostile(img, c.handler(img), c.tls ? tlsPair(s) : undefined);
    t.teardown(h.stop);
    const ref = `docker://${h.host}/x:v1`;
    // Over TLS, http is not allowed, but the redirect would be refused even if it were.
    const policy = { ...defaultFetchPolicy(s.input('config')), allowHttp: c.tls !== true, skipTlsVerify: c.tls === true };
    const e = await t.throwsAsync(pull(s.images, ref, { policy }));
    t.true(e.message.startsWith(`${ref}: `), e.message);
    t.regex(e.message, c.message);
    t.is((e as { exitCode?: number }).exitCode, 254);
    c.check?.(t, h, img);
    t.is(await closed(h), 0, 'every connection is closed');
    await assertNothingStored(t, s, c.what);
    const gc = await collectGarbage(s.images, { gracePeriodMs: 0 });
    t.deepEqual([gc.images, gc.trees, gc.layers, gc.leftovers, gc.failures], [[], [], [], [], []], 'image gc finds nothing to collect');
  });
}

test('podlog fetch from a hostile registry: exit 254 and the reason on stderr', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const img = image(s);
  const h = await hostile(img, CASES[0]!.handler(img));
  t.teardown(h.stop);
  const r = await podlogAsync(s.dataDir, ['fetch', '--insecure-options=http', `docker://${h.host}/x:v1`]);
  t.is(r.status, 254);
  t.is(r.stdout, '');
  t.regex(r.stderr, new RegExp(`^podlog: docker://${h.host}/x:v1: layer 1/1 ${img.layer}: the blob does not match its digest`));
  await assertNothingStored(t, s, 'the CLI');
});

test('a registry that ignores Range: the interrupted blob is downloaded again from its start, and the pull succeeds', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const img = image(s);
  const blob = img.blobs.get(img.layer)!;
  const asked: Array<string | undefined> = [];
  /** Each answer as it was sent: its status and the bytes of its body. */
  const answered: Array<{ status: number; bytes: number }> = [];
  const h = await hostile(img, (req, res) => {
    if (!req.url?.endsWith(img.layer)) return false;
    asked.push(req.headers.range);
    res.writeHead(200, { 'content-length': blob.length });
    // The first answer stops half way (the connection dropped); later ones are whole 200s, Range or not.
    const body = asked.length === 1 ? blob.subarray(0, blob.length >> 1) : blob;
    answered.push({ status: res.statusCode, bytes: body.length });
    if (asked.length === 1) res.write(body, () => res.destroy());
    else res.end(body);
    return true;
  });
  t.teardown(h.stop);
  const ref = `docker://${h.host}/x:v1`;
  const policy = { ...defaultFetchPolicy(s.input('config')), allowHttp: true };
  const e = await t.throwsAsync(pull(s.images, ref, { policy }));
  t.regex(e.message, /(interrupted|ended) after \d+ of \d+ bytes.*pulling again continues it/);
  t.deepEqual(entries(join(s.dataDir, 'cas', 'partial')), [img.layer.replace(':', '-')]);
  const kept = statSync(join(s.dataDir, 'cas', 'partial', img.layer.replace(':', '-'))).size;
  const pulled = await pull(s.images, ref, { policy });
  t.is(asked[1], `bytes=${kept}-`, 'the second pull asked for the rest');
  t.deepEqual(answered[1], { status: 200, bytes: blob.length }, 'the registry answered it with the whole blob');
  t.is(answered.length, 2, 'which the pull took, asking nothing more');
  t.is(pulled.image.layers?.[0]?.digest, img.layer, 'and stored');
  t.deepEqual(entries(join(s.dataDir, 'cas', 'partial')), []);
});

test('a blob the store came to hold while the pull waited for its lock (another pull stored it) is linked from the store, not downloaded again', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const img = image(s);
  const asked: string[] = [];
  const h = await hostile(img, (req) => {
    asked.push(req.url ?? '');
    return false;
  });
  t.teardown(h.stop);
  // Where another pull's import puts it, unrecorded when this pull read the index.
  mkdirSync(join(s.dataDir, 'cas', 'layer-blob'), { recursive: true });
  writeFileSync(join(s.dataDir, 'cas', 'layer-blob', img.layer.replace(':', '-')), img.blobs.get(img.layer)!);
  const pulled = await pull(s.images, `docker://${h.host}/x:v1`, { policy: { ...defaultFetchPolicy(s.input('config')), allowHttp: true } });
  t.is(pulled.image.layers?.[0]?.digest, img.layer);
  t.false(asked.includes(`/v2/x/blobs/${img.layer}`), `asked: ${asked.join(', ')}`);
  const run = await podlogAsync(s.dataDir, ['run', pulled.image.id, '--exec', '/exit']);
  t.is(run.status, 3, run.stderr);
});

test('bytes a hostile registry left in cas/partial/ under a digest: continued from an honest registry, the blob fails its digest, and is downloaded again from 0', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const img = image(s);
  const blob = img.blobs.get(img.layer)!;
  const asked: Array<string | undefined> = [];
  // An honest registry that answers a Range with the bytes asked for.
  const h = await hostile(img, (req, res) => {
    if (!req.url?.endsWith(img.layer)) return false;
    asked.push(req.headers.range);
    const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    const headers = from > 0 ? { 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}` } : {};
    res.writeHead(from > 0 ? 206 : 200, { ...headers, 'content-length': blob.length - from }).end(blob.subarray(from));
    return true;
  });
  t.teardown(h.stop);
  mkdirSync(join(s.dataDir, 'cas', 'partial'), { recursive: true });
  writeFileSync(join(s.dataDir, 'cas', 'partial', img.layer.replace(':', '-')), Buffer.alloc(blob.length >> 1, 0x66));
  const pulled = await pull(s.images, `docker://${h.host}/x:v1`, { policy: { ...defaultFetchPolicy(s.input('config')), allowHttp: true } });
  t.is(pulled.image.layers?.[0]?.digest, img.layer);
  t.deepEqual(asked, [`bytes=${blob.length >> 1}-`, undefined], 'continued, then asked again whole');
  t.deepEqual(entries(join(s.dataDir, 'cas', 'partial')), []);
});

test("the progress board on a terminal marks a blob that failed its digest as failed, one downloaded whole as done", async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const img = image(s);
  const h = await hostile(img, CASES[0]!.handler(img));
  t.teardown(h.stop);
  let text = '';
  const terminal = { isTTY: true, columns: 200, write: (chunk: string) => void (text += chunk) } as unknown as NodeJS.WriteStream;
  const board = boardFor(false, terminal);
  const client = new RegistryClient(parseDockerRef(`docker://${h.host}/x:v1`), { ...defaultFetchPolicy(s.input('config')), allowHttp: true });
  t.teardown(() => client.close());
  const manifest = JSON.parse(img.manifest.toString()) as { config: Descriptor; layers: Descriptor[] };
  const layout = storeLayout(s.dataDir);
  mkdirSync(s.input('blobs'));
  await t.throwsAsync(fetchBlob(client, layout, manifest.layers[0]!, s.input('blobs/layer'), 'layer 1/1', board.line()), { message: /does not match its digest/ });
  await fetchBlob(client, layout, manifest.config, s.input('blobs/config'), 'config', board.line());
  const lines = text.split(/\r\x1b\[K/).map((l) => l.trim());
  t.true(lines.includes(`layer 1/1 ${img.layer.slice(0, 19)} failed, ${(manifest.layers[0]!.size / 1e6).toFixed(1)} MB`), text);
  t.false(lines.some((l) => l.startsWith('layer 1/1') && l.includes(' done,')), text);
  t.true(lines.some((l) => l.startsWith(`config ${manifest.config.digest.slice(0, 19)} done,`)), text);
});

test('image gc removes a partial download a day old, and keeps a fresh one for the next pull to continue; the download locks of blobs no longer partial go', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const partial = join(s.dataDir, 'cas', 'partial');
  const locks = join(s.dataDir, 'cas', 'locks');
  mkdirSync(partial, { recursive: true });
  const [old, fresh, done] = [`sha256-${'1'.repeat(64)}`, `sha256-${'2'.repeat(64)}`, `sha256-${'3'.repeat(64)}`];
  writeFileSync(join(partial, old), 'abandoned');
  writeFileSync(join(partial, fresh), 'under way');
  for (const name of [old, fresh, done]) mkdirSync(join(locks, `partial-${name}`), { recursive: true });
  mkdirSync(join(locks, 'tree-kept'));
  const dayAgo = new Date(Date.now() - 25 * 3600_000);
  utimesSync(join(partial, old), dayAgo, dayAgo);
  const gc = await collectGarbage(s.images, { gracePeriodMs: 0 });
  t.deepEqual(gc.leftovers, [join(partial, old)]);
  t.deepEqual(entries(partial), [fresh]);
  t.deepEqual(entries(locks).sort(), [`partial-${fresh}`, 'tree-kept'], 'the lock of the partial kept stays, and other locks');
});

test("a blob redirected to another origin (a CDN) is followed there, without the registry's credentials", async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const img = image(s);
  const cdnAuth: Array<string | undefined> = [];
  const cdn = createHttpServer((req, res) => {
    cdnAuth.push(req.headers.authorization);
    res.writeHead(200).end(img.blobs.get(img.layer));
  });
  const cdnPort = await listen(cdn);
  t.teardown(() => new Promise<void>((r) => cdn.close(() => r())));
  const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
  const h = await hostile(img, (req, res) => {
    if (req.headers.authorization !== basic) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
      return true;
    }
    if (!req.url?.endsWith(img.layer)) return false;
    res.writeHead(307, { location: `http://127.0.0.1:${cdnPort}/cdn/layer?sig=1` }).end();
    return true;
  });
  t.teardown(h.stop);
  const config = rktAuth(s.input('config'), h.host, { user: 'u', password: 'p' });
  const pulled = await pull(s.images, `docker://${h.host}/x:v1`, { policy: { ...defaultFetchPolicy(config), allowHttp: true } });
  t.is(pulled.image.layers?.[0]?.digest, img.layer);
  t.deepEqual(cdnAuth, [undefined], 'the CDN was asked once, with no Authorization');
});

// Serial: the shortened timeout is the module's, and no other test of this file runs meanwhile.
test.serial('a registry that stalls mid-blob: the pull stops after the idle timeout, the connection closed, the bytes kept for the next pull', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const img = image(s);
  const h = await hostile(img, (req, res) => {
    if (!req.url?.endsWith(img.layer)) return false;
    const blob = img.blobs.get(img.layer)!;
    res.writeHead(200, { 'content-length': blob.length });
    res.write(blob.subarray(0, 100));
    return true;
  });
  t.teardown(h.stop);
  const idle = timeouts.idleMs;
  timeouts.idleMs = 300;
  t.teardown(() => void (timeouts.idleMs = idle));
  const e = await t.throwsAsync(pull(s.images, `docker://${h.host}/x:v1`, { policy: { ...defaultFetchPolicy(s.input('config')), allowHttp: true } }));
  t.regex(e.message, /interrupted after 100 of \d+ bytes \(no data from 127\.0\.0\.1:\d+ for 0\.3 s\); pulling again continues it/);
  t.is(await closed(h), 0);
  t.deepEqual(entries(join(s.dataDir, 'cas', 'partial')), [img.layer.replace(':', '-')]);
});
