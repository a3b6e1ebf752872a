/**
 * Signatures checked by the trust module's functions, with keys and signatures made by the real gpg:
 * an ACI's detached signature (importVerified, the file import with its check) and a registry image's
 * simple signing (checkRegistryImage, signatures made with `gpg --sign` over the payload skopeo
 * writes, served from a file:// or http:// lookaside). Each refusal must name the image, the keys
 * that would have vouched for it and what was found, and leave nothing in the store.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pullVerified } from '../../src/images/trust/pull.js';
import { defaultFetchPolicy, type FetchPolicy } from '../../src/images/policy.js';
import { importVerified, verifyArchive } from '../../src/images/trust/import.js';
import { readPublicKeys, storeKeys, trustedKeys } from '../../src/images/trust/keystore.js';
import { fetchSignature } from '../../src/images/trust/lookaside.js';
import { checkRegistryImage, type RegistryImage } from '../../src/images/trust/verify.js';
import { makeGpg, skopeoCopy } from '../helpers/gpg.js';
import { refusal } from '../helpers/refusal.js';
import { countingProxy, listen, startRegistry } from '../helpers/registry.js';
import { entries, makeAci, makeOciLayout, manifestFor, sandbox, tarDir, type Sandbox } from './helpers.js';

const gpg = makeGpg();
const PUBLISHER = gpg.newKey('Publisher');
const STRANGER = gpg.newKey('Stranger');
const NEIGHBOUR = gpg.newKey('Neighbour');
test.after.always('the gpg home and its agent go', () => gpg.close());

/** Trusts `fpr` for `prefix` ('' for root) in `localConfig`, as `podlog trust` does. */
const trust = async (localConfig: string, prefix: string, fpr: string): Promise<void> => {
  const file = gpg.exportKey(fpr, join(gpg.home, `${fpr}.asc`));
  storeKeys(localConfig, prefix, await readPublicKeys(readFileSync(file), file));
};

const policyIn = (s: Sandbox, changes: Partial<FetchPolicy> = {}): FetchPolicy => ({ ...defaultFetchPolicy(s.input('etc')), ...changes });

const appAci = (s: Sandbox, file: string, name = 'example.com/app', content = 'one'): string =>
  makeAci(s.input(file), { manifest: manifestFor(name), busybox: false, files: { 'etc/content': content } });

/** An HTTP server on 127.0.0.1 answering a path with `answer`'s bytes (404 for undefined), closed when the test ends. */
const serve = async (t: ExecutionContext, answer: (path: string) => Buffer | undefined): Promise<{ base: string; asked: string[] }> => {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url ?? '');
    const body = answer(req.url ?? '');
    if (body) res.end(body);
    else res.writeHead(404).end();
  });
  const port = await listen(server);
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { base: `http://127.0.0.1:${port}`, asked };
};

/** What the store holds: images in the index, image streams in the log, blobs, leftovers in cas/tmp. */
const holdings = async (s: Sandbox) => ({
  images: [...(await s.images.index()).images.keys()],
  streams: (await s.events.readAll({ streamPrefix: 'image-' })).map((e) => e.type),
  blobs: entries(join(s.dataDir, 'cas', 'blob')),
  tmp: entries(join(s.dataDir, 'cas', 'tmp')),
});
const NOTHING = { images: [], streams: [], blobs: [], tmp: [] };

test('a signed ACI is imported, and its ImageVerified names the key that vouched for it and for which prefix', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await trust(s.input('etc'), 'example.com', PUBLISHER);
  const aci = appAci(s, 'app.aci');
  gpg.detachSign(PUBLISHER, aci);
  const image = await importVerified(s.images, policyIn(s), aci, { quiet: true });
  t.is(image.name, 'example.com/app');
  const events = await s.events.readStream(`image-${image.id}`);
  t.deepEqual(events.map((e) => e.type), ['ImageImported', 'ImageVerified']);
  t.deepEqual(events[1]!.data, { id: image.id, source: aci, verified: true, kind: 'aci-signature', fingerprint: PUBLISHER, prefix: 'example.com' });
  t.deepEqual((await s.images.index()).images.get(image.id)!.verification, { verified: true, kind: 'aci-signature', fingerprint: PUBLISHER, prefix: 'example.com' });
  t.deepEqual(entries(join(s.dataDir, 'cas', 'tmp')), []);
  s.assertContained();
});

test('a root key vouches for every name; the most specific prefix a signer is trusted for is the one recorded', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await trust(s.input('etc'), '', PUBLISHER);
  await trust(s.input('etc'), 'example.com/app', PUBLISHER);
  for (const [file, name, prefix] of [['other.aci', 'elsewhere.org/tool', ''], ['app.aci', 'example.com/app', 'example.com/app']] as const) {
    const aci = appAci(s, file, name);
    gpg.detachSign(PUBLISHER, aci);
    const image = await importVerified(s.images, policyIn(s), aci, { quiet: true });
    t.like((await s.events.readStream(`image-${image.id}`))[1]!.data, { verified: true, fingerprint: PUBLISHER, prefix }, name);
  }
});

test('refused with exit 254, naming the image, the keys trusted for its name and what was found, with nothing stored', async (t) => {
  const cases: Array<{ what: string; sign: (aci: string, s: Sandbox) => void; found: RegExp }> = [
    { what: 'unsigned', sign: () => undefined, found: /it has no signature \(.*app\.aci\.asc\)/ },
    { what: 'signed by an untrusted key', sign: (aci) => gpg.detachSign(STRANGER, aci), found: new RegExp(`signed by ${STRANGER}, which is not a trusted key`) },
    {
      what: 'signed by a key trusted for another prefix',
      sign: (aci) => gpg.detachSign(NEIGHBOUR, aci),
      found: new RegExp(`signed by ${NEIGHBOUR}, which is trusted for prefix example.com/ap, not for example.com/app`),
    },
    {
      what: 'tampered after it was signed (the old signature kept)',
      sign: (aci, s) => {
        gpg.detachSign(PUBLISHER, aci);
        appAci(s, 'app.aci', 'example.com/app', 'two');
      },
      found: new RegExp(`the signature by ${PUBLISHER} does not match the image`),
    },
    {
      what: 'signed with a hash too weak to count (SHA-1)',
      sign: (aci) => gpg.detachSign(PUBLISHER, aci, 'SHA1'),
      found: new RegExp(`the signature by ${PUBLISHER} is not valid \\(Hash algorithm too weak`),
    },
    {
      what: 'a signature file that is no signature',
      sign: (aci) => writeFileSync(`${aci}.asc`, 'not a signature\n'),
      found: /app\.aci\.asc is not an OpenPGP signature/,
    },
  ];
  for (const c of cases) {
    const s = await sandbox();
    t.teardown(s.cleanup);
    await trust(s.input('etc'), 'example.com/app', PUBLISHER);
    // A prefix is a path: example.com/ap vouches for example.com/ap/…, never for example.com/app.
    await trust(s.input('etc'), 'example.com/ap', NEIGHBOUR);
    const aci = appAci(s, 'app.aci');
    c.sign(aci, s);
    const e = await refusal(importVerified(s.images, policyIn(s), aci, { quiet: true }));
    t.is(e.code, 'EUNTRUSTED', c.what);
    t.is(e.exitCode, 254, c.what);
    t.true(e.message.startsWith(`${aci}: refused: `), `${c.what}: ${e.message}`);
    t.regex(e.message, c.found, c.what);
    t.true(e.message.includes(`trusted for example.com/app: prefix example.com/app ${PUBLISHER}`), `${c.what}: ${e.message}`);
    t.false(e.message.includes(NEIGHBOUR) && c.what !== 'signed by a key trusted for another prefix', `${c.what}: only the keys for its name are listed: ${e.message}`);
    t.regex(e.message, /--insecure-options=image/, c.what);
    t.deepEqual(await holdings(s), NOTHING, c.what);
    s.assertContained();
  }
});

test('with no key trusted for its name, the refusal says which prefixes have keys', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await trust(s.input('etc'), 'example.com/other', NEIGHBOUR);
  const aci = appAci(s, 'app.aci');
  gpg.detachSign(PUBLISHER, aci);
  const e = await refusal(importVerified(s.images, policyIn(s), aci, { quiet: true }));
  t.regex(e.message, new RegExp(`signed by ${PUBLISHER}, which is not a trusted key; no key is trusted for example.com/app \\(only for prefix example.com/other\\)`));
});

test('--insecure-options=image imports an unsigned image, and the log says the check was skipped and why', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await trust(s.input('etc'), 'example.com/app', PUBLISHER);
  const aci = appAci(s, 'app.aci');
  const image = await importVerified(s.images, policyIn(s, { skipImageVerify: true }), aci, { quiet: true });
  const events = await s.events.readStream(`image-${image.id}`);
  t.deepEqual(events.map((e) => [e.type, e.data]).at(-1), ['ImageVerified', { id: image.id, source: aci, verified: false, skipped: 'insecure-options' }]);
});

test('with no key trusted at all, an unsigned image is imported, and the log records the skip as no-trusted-keys', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const aci = appAci(s, 'app.aci');
  const image = await importVerified(s.images, policyIn(s), aci, { quiet: true });
  t.like((await s.events.readStream(`image-${image.id}`)).at(-1)!, { type: 'ImageVerified', data: { verified: false, skipped: 'no-trusted-keys' } });
  t.like((await s.images.index()).images.get(image.id)!.verification, { verified: false, skipped: 'no-trusted-keys' });
});

test('an ACI from a URL: its URL.asc is fetched only when a check is due, and vouches for the download as a file\'s .asc does', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const aci = appAci(s, 'app.aci');
  gpg.detachSign(PUBLISHER, aci);
  const { base, asked } = await serve(t, (path) => (path === '/app.aci.asc' ? readFileSync(`${aci}.asc`) : undefined));
  const policy = policyIn(s, { allowHttp: true });
  const check = (name: string) => verifyArchive(s.images, policy, { shown: `${base}/${name}`, file: aci, signature: () => fetchSignature(`${base}/${name}.asc`, policy) });
  t.deepEqual(await check('app.aci'), { verified: false, skipped: 'no-trusted-keys' });
  t.deepEqual(asked, [], 'no signature is asked for while no key is trusted');
  await trust(s.input('etc'), 'example.com/app', PUBLISHER);
  t.deepEqual(await check('app.aci'), { verified: true, kind: 'aci-signature', fingerprint: PUBLISHER, prefix: 'example.com/app' });
  t.regex((await refusal(check('other.aci'))).message, new RegExp(`^${base}/other\\.aci: refused: it has no signature \\(${base}/other\\.aci\\.asc\\)`));
  t.deepEqual(asked, ['/app.aci.asc', '/other.aci.asc']);
});

test('with a key trusted, an OCI layout (directory or tar) is refused: it carries no signature podlog can check', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await trust(s.input('etc'), '', PUBLISHER);
  mkdirSync(s.input('layer'));
  writeFileSync(join(s.input('layer'), 'file'), 'content');
  const layer = tarDir(s.input('layer'), s.input('layer.tar'));
  makeOciLayout(s.input('layout'), { layers: [{ tar: layer }] });
  const tar = tarDir(s.input('layout'), s.input('layout.tar'));
  for (const [path, what] of [[s.input('layout'), 'an OCI layout directory'], [tar, 'an OCI layout']] as const) {
    const e = await refusal(importVerified(s.images, policyIn(s), path, { quiet: true }));
    t.is(e.code, 'EUNTRUSTED');
    t.is(e.message, `${path}: refused: ${what} carries no signature podlog can check, and keys are trusted; --insecure-options=image skips the signature check`);
  }
  t.deepEqual(await holdings(s), NOTHING);
});

test('trust refuses a secret key and what is no key, and stores keys as rkt does: one armored file per fingerprint, 0644 in 0755 directories', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const secret = gpg.exportSecretKey(PUBLISHER, s.input('secret.asc'));
  t.regex((await refusal(readPublicKeys(readFileSync(secret), secret))).message, /secret\.asc: holds a secret key; trust takes the public key only/);
  writeFileSync(s.input('junk.asc'), 'hello\n');
  t.regex((await refusal(readPublicKeys(readFileSync(s.input('junk.asc')), 'junk.asc'))).message, /^junk\.asc: not an OpenPGP public key/);
  await trust(s.input('etc'), '127.0.0.1:5000/team', PUBLISHER);
  const file = join(s.input('etc'), 'trustedkeys', 'prefix.d', '127.0.0.1:5000', 'team', PUBLISHER.toLowerCase());
  t.is(statSync(file).mode & 0o777, 0o644);
  for (const dir of ['trustedkeys', 'trustedkeys/prefix.d', 'trustedkeys/prefix.d/127.0.0.1:5000', 'trustedkeys/prefix.d/127.0.0.1:5000/team']) {
    t.is(statSync(join(s.input('etc'), dir)).mode & 0o777, 0o755, dir);
  }
  t.regex(readFileSync(file, 'utf8'), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  t.deepEqual(trustedKeys(s.input('etc')), [{ prefix: '127.0.0.1:5000/team', fingerprint: PUBLISHER.toLowerCase(), file }]);
});

test('a file in the trust store not named by a fingerprint refuses every fetch, naming it', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const dir = join(s.input('etc'), 'trustedkeys', 'root.d');
  mkdirSync(dir, { recursive: true });
  gpg.exportKey(PUBLISHER, join(dir, 'publisher.asc'));
  const e = await refusal(importVerified(s.images, policyIn(s), appAci(s, 'app.aci'), { quiet: true }));
  t.is(e.code, 'ETRUST_STORE');
  t.is(e.message, `${join(dir, 'publisher.asc')}: not a trusted key file (each is named by its key's fingerprint; podlog trust adds keys, podlog trust rm removes them)`);
});

// Registry images: simple signing.

const REGISTRY = '127.0.0.1:5000';
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: [] }));
const DIGEST = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
const image = (changes: Partial<RegistryImage> = {}): RegistryImage => ({
  reference: `${REGISTRY}/app/busybox:v1`, registry: REGISTRY, repository: 'app/busybox', tag: 'v1', digest: DIGEST, manifest, ...changes,
});

/** The payload skopeo 1.9.3 writes (its fields in its order), signed by `fpr` as `gpg --sign` does. */
const signature = (fpr: string, claim: { reference?: string; digest?: string; type?: string } = {}): Buffer =>
  gpg.sign(
    fpr,
    Buffer.from(JSON.stringify({
      critical: { identity: { 'docker-reference': claim.reference ?? `${REGISTRY}/app/busybox:v1` }, image: { 'docker-manifest-digest': claim.digest ?? DIGEST }, type: claim.type ?? 'atomic container signature' },
      optional: { creator: 'atomic 5.23.1', timestamp: 1796195724 },
    })),
  );

/** A local config trusting PUBLISHER for REGISTRY/app, with a file lookaside holding `signatures` for DIGEST. */
const lookasideSetup = async (s: Sandbox, signatures: Buffer[], lookaside = pathToFileURL(s.input('sigs')).href): Promise<string> => {
  const etc = s.input('etc');
  await trust(etc, `${REGISTRY}/app`, PUBLISHER);
  mkdirSync(join(etc, 'registries.d'), { recursive: true });
  writeFileSync(join(etc, 'registries.d', 'sigs.json'), JSON.stringify({ docker: { [REGISTRY]: { lookaside } } }));
  const dir = join(s.input('sigs'), 'app', `busybox@${DIGEST.replace(':', '=')}`);
  mkdirSync(dir, { recursive: true });
  signatures.forEach((b, i) => writeFileSync(join(dir, `signature-${i + 1}`), b));
  return dir;
};

test('simple signing: a signature by a key trusted for HOST/NAME, for the manifest and the reference, vouches for the image', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await lookasideSetup(s, [signature(PUBLISHER)]);
  t.deepEqual(await checkRegistryImage(policyIn(s), image()), { verified: true, kind: 'simple-signing', fingerprint: PUBLISHER, prefix: `${REGISTRY}/app` });
  // Pulled by digest, a signature for any tag of the repository vouches for it (containers' matchRepoDigestOrExact).
  const byDigest = image({ reference: `${REGISTRY}/app/busybox@${DIGEST}`, tag: undefined });
  delete byDigest.tag;
  t.like(await checkRegistryImage(policyIn(s), byDigest), { verified: true, fingerprint: PUBLISHER });
});

test('simple signing: a later signature counts when an earlier one does not', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await lookasideSetup(s, [signature(STRANGER), signature(PUBLISHER, { reference: `${REGISTRY}/app/busybox:v2` }), signature(PUBLISHER)]);
  t.like(await checkRegistryImage(policyIn(s), image()), { verified: true, fingerprint: PUBLISHER });
});

test('simple signing: refused naming the image, the keys for its name and what each signature was', async (t) => {
  // The lookaside path holds the repository without its registry, as containers/image lays it out.
  const sig1 = `/sigs/app/busybox@${DIGEST.replace(':', '=')}/signature-1`;
  const cases: Array<{ what: string; signatures: Buffer[]; m?: Partial<RegistryImage>; found: RegExp }> = [
    { what: 'no signature', signatures: [], found: new RegExp(`it has no signature \\(none at file://.*/sigs/app/busybox@sha256=[0-9a-f]{64}/signature-1\\)`) },
    { what: 'an untrusted signer', signatures: [signature(STRANGER)], found: new RegExp(`signature-1: signed by ${STRANGER}, which is not a trusted key`) },
    {
      what: 'another manifest',
      signatures: [signature(PUBLISHER, { digest: `sha256:${'0'.repeat(64)}` })],
      found: new RegExp(`signature-1: signed by ${PUBLISHER}, but it is for the manifest sha256:0{64}, and the image's is ${DIGEST}`),
    },
    {
      what: 'another tag',
      signatures: [signature(PUBLISHER, { reference: `${REGISTRY}/app/busybox:latest` })],
      found: new RegExp(`but it is for ${REGISTRY}/app/busybox:latest, not ${REGISTRY}/app/busybox:v1`),
    },
    {
      what: 'another repository, pulled by digest',
      signatures: [signature(PUBLISHER, { reference: `${REGISTRY}/app/other:v1` })],
      m: { tag: undefined, reference: `${REGISTRY}/app/busybox@${DIGEST}` },
      found: new RegExp(`but it is for ${REGISTRY}/app/other:v1, not ${REGISTRY}/app/busybox@${DIGEST}`),
    },
    { what: 'not a container signature', signatures: [signature(PUBLISHER, { type: 'cosign container image signature' })], found: /it is not a container signature: its type is "cosign container image signature"/ },
    { what: 'not a signed message', signatures: [Buffer.from('{"critical":{}}')], found: /signature-1 is not an OpenPGP signed message/ },
  ];
  for (const c of cases) {
    const s = await sandbox();
    t.teardown(s.cleanup);
    await lookasideSetup(s, c.signatures);
    const m = image(c.m);
    if (m.tag === undefined) delete m.tag;
    const e = await refusal(checkRegistryImage(policyIn(s), m));
    t.is(e.code, 'EUNTRUSTED', c.what);
    t.is(e.exitCode, 254, c.what);
    t.true(e.message.startsWith(`${m.reference}: refused: `), `${c.what}: ${e.message}`);
    t.regex(e.message, c.found, c.what);
    if (c.signatures.length > 0) t.true(e.message.includes(sig1), `${c.what}: names the signature: ${e.message}`);
    t.true(e.message.includes(`trusted for ${REGISTRY}/app/busybox: prefix ${REGISTRY}/app ${PUBLISHER}`), `${c.what}: ${e.message}`);
  }
});

test('simple signing: with no lookaside configured for the registry, the image has no signature', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await lookasideSetup(s, [signature(PUBLISHER)]);
  const e = await refusal(checkRegistryImage(policyIn(s), image({ registry: '127.0.0.1:5001', reference: '127.0.0.1:5001/app/busybox:v1' })));
  t.regex(e.message, /^127\.0\.0\.1:5001\/app\/busybox:v1: refused: it has no signature \(no lookaside is configured for 127\.0\.0\.1:5001 in .*registries\.d\); no key is trusted for 127\.0\.0\.1:5001\/app\/busybox/);
});

test('registries.d: the most specific scope names the lookaside, then default-docker; an unknown field or a scope defined twice is refused', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  await lookasideSetup(s, [signature(PUBLISHER)]);
  const d = join(s.input('etc'), 'registries.d');
  writeFileSync(join(d, 'sigs.json'), JSON.stringify({ docker: { [REGISTRY]: { lookaside: 'file:///nonexistent' }, [`${REGISTRY}/app`]: { sigstore: pathToFileURL(s.input('sigs')).href } } }));
  t.like(await checkRegistryImage(policyIn(s), image()), { verified: true });
  writeFileSync(join(d, 'sigs.json'), JSON.stringify({ 'default-docker': { lookaside: pathToFileURL(s.input('sigs')).href, 'lookaside-staging': 'file:///elsewhere' } }));
  t.like(await checkRegistryImage(policyIn(s), image()), { verified: true });
  writeFileSync(join(d, 'other.json'), JSON.stringify({ 'default-docker': { lookaside: 'file:///x' } }));
  t.regex((await refusal(checkRegistryImage(policyIn(s), image()))).message, /sigs\.json: default-docker is defined in .*other\.json too/);
  writeFileSync(join(d, 'other.json'), JSON.stringify({ docker: { [REGISTRY]: { 'use-sigstore-attachments': true } } }));
  t.regex((await refusal(checkRegistryImage(policyIn(s), image()))).message, /other\.json: docker "127\.0\.0\.1:5000": podlog does not know "use-sigstore-attachments"/);
});

test('simple signing from an http lookaside: read with GET, plain http only with --insecure-options=http, a signature over 64 KiB refused', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const good = signature(PUBLISHER);
  const { base, asked } = await serve(t, (path) => (!path.endsWith('/signature-1') ? undefined : path.startsWith('/big/') ? Buffer.alloc(65 * 1024) : good));
  await lookasideSetup(s, [], `${base}/sigs/`);
  t.regex((await refusal(checkRegistryImage(policyIn(s), image()))).message, /: plain http, which only --insecure-options=http allows$/);
  t.like(await checkRegistryImage(policyIn(s, { allowHttp: true }), image()), { verified: true, fingerprint: PUBLISHER });
  t.deepEqual(asked, [`/sigs/app/busybox@${DIGEST.replace(':', '=')}/signature-1`, `/sigs/app/busybox@${DIGEST.replace(':', '=')}/signature-2`]);
  writeFileSync(join(s.input('etc'), 'registries.d', 'sigs.json'), JSON.stringify({ docker: { [REGISTRY]: { lookaside: `${base}/big` } } }));
  t.regex((await refusal(checkRegistryImage(policyIn(s, { allowHttp: true }), image()))).message, /signature-1 is larger than the 65536 bytes allowed/);
});

test('a signature GET answered 404, or redirected, with a body that never ends: no signature, and the connection is closed at once', async (t) => {
  const closed: Array<Promise<void>> = [];
  const server = createServer((req, res) => {
    closed.push(new Promise((resolve) => req.socket.once('close', () => resolve())));
    res.writeHead(req.url === '/moved.asc' ? 302 : 404, req.url === '/moved.asc' ? { location: '/gone.asc' } : {});
    const drip = setInterval(() => res.write(Buffer.alloc(1024)), 5);
    res.once('close', () => clearInterval(drip));
  });
  const port = await listen(server);
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const policy = { ...defaultFetchPolicy(), allowHttp: true };
  t.is(await fetchSignature(`http://127.0.0.1:${port}/moved.asc`, policy), undefined);
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still open after 2 s'), 2000));
  t.is(await Promise.race([Promise.all(closed).then(() => 'closed'), timeout]), 'closed', 'both connections (the redirect and the 404) are closed');
  t.is(closed.length, 2);
});

test('what skopeo copy --sign-by writes to a registry and its lookaside vouches for the image pulled, and the log names its signer; an unsigned image, or a signed one under another tag, is refused before any blob is downloaded', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const upstream = await startRegistry();
  t.teardown(upstream.stop);
  // Every request seen: a refused pull must download no blob.
  const registry = await countingProxy(upstream.host);
  t.teardown(registry.stop);
  const layout = (name: string, content: string): string => {
    mkdirSync(s.input(`${name}-root`));
    writeFileSync(join(s.input(`${name}-root`), 'file'), content);
    makeOciLayout(s.input(name), { layers: [{ tar: tarDir(s.input(`${name}-root`), s.input(`${name}.tar`)) }], annotations: { 'org.opencontainers.image.ref.name': 'v1' } });
    return s.input(name);
  };
  const signed = layout('signed', 'signed content');
  const unsigned = layout('unsigned', 'unsigned content');
  const sigs = pathToFileURL(s.input('sigs')).href;
  await skopeoCopy(gpg, `oci:${signed}:v1`, `docker://${registry.host}/app/busybox:v1`, { by: PUBLISHER, lookaside: sigs });
  await skopeoCopy(gpg, `oci:${signed}:v1`, `docker://${registry.host}/app/busybox:retagged`);
  await skopeoCopy(gpg, `oci:${unsigned}:v1`, `docker://${registry.host}/app/busybox:unsigned`);
  // The layout skopeo 1.9.3 writes: <lookaside>/<repository>@sha256=<hex of the manifest it pushed>/signature-1.
  const index = JSON.parse(readFileSync(join(signed, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const digest = index.manifests[0]!.digest;
  t.deepEqual(entries(join(s.input('sigs'), 'app')), [`busybox@${digest.replace(':', '=')}`]);
  t.deepEqual(entries(join(s.input('sigs'), 'app', `busybox@${digest.replace(':', '=')}`)), ['signature-1']);
  const etc = s.input('etc');
  await trust(etc, `${registry.host}/app`, PUBLISHER);
  mkdirSync(join(etc, 'registries.d'));
  writeFileSync(join(etc, 'registries.d', 'sigs.json'), JSON.stringify({ docker: { [registry.host]: { lookaside: sigs } } }));
  const policy = { ...policyIn(s), allowHttp: true };
  const options = { policy, quiet: true };
  const pulled = await pullVerified(s.images, `docker://${registry.host}/app/busybox:v1`, options);
  const recorded = (await s.events.readStream(`image-${pulled.id}`)).map((e) => [e.type, e.data]);
  t.deepEqual(recorded.at(-1), ['ImageVerified', { id: pulled.id, source: `docker://${registry.host}/app/busybox@${digest}`, verified: true, kind: 'simple-signing', fingerprint: PUBLISHER, prefix: `${registry.host}/app` }]);
  const blobGets = () => registry.seen.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
  const downloaded = blobGets();
  const none = await refusal(pullVerified(s.images, `docker://${registry.host}/app/busybox:unsigned`, options));
  t.is(none.code, 'EUNTRUSTED');
  t.regex(none.message, new RegExp(`refused: it has no signature \\(none at ${sigs}/app/busybox@sha256=[0-9a-f]{64}/signature-1\\)`));
  // The signed manifest under another tag: the signature names busybox:v1, not busybox:retagged.
  const retagged = await refusal(pullVerified(s.images, `docker://${registry.host}/app/busybox:retagged`, options));
  t.regex(retagged.message, new RegExp(`signed by ${PUBLISHER}, but it is for ${registry.host}/app/busybox:v1, not ${registry.host}/app/busybox:retagged`));
  t.is((await s.images.index()).images.size, 1, 'only the signed pull stored an image');
  t.is(blobGets(), downloaded, 'the refused pulls downloaded no blob');
});
