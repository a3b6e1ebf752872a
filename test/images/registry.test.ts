/**
 * Pulls from a real registry (Debian's docker-registry, filled by skopeo): by tag and by digest, a
 * multi-platform index, a Docker schema 2 manifest, Basic and Bearer auth, an interrupted pull
 * continued, layers shared between images, an unchanged tag pulled again for one request; the pulled
 * images run.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { label } from '../../src/images/aci-manifest.js';
import { defaultFetchPolicy, type FetchPolicy } from '../../src/images/policy.js';
import { pull } from '../../src/images/registry/pull.js';
import type { RegistryImage } from '../../src/images/trust/verify.js';
import { countingProxy, PASSWORD, push, rktAuth, startRegistry, USER, type Proxy, type Registry } from '../helpers/registry.js';
import { entries, exitProgram, makeOciLayout, podlogAsync, sandbox, tarDir, type OciSpec, type Sandbox } from './helpers.js';

const podlog = podlogAsync;

/** A sandbox removed at the test's end, whether it passed or not. */
const sandboxFor = async (t: ExecutionContext): Promise<Sandbox> => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  return s;
};

/** A registry with no auth and a counting proxy in front of it, both stopped at the test's end. */
const behindProxy = async (t: ExecutionContext): Promise<{ registry: Registry; proxy: Proxy }> => {
  const registry = await startRegistry();
  t.teardown(registry.stop);
  const proxy = await countingProxy(registry.host);
  t.teardown(proxy.stop);
  return { registry, proxy };
};

const http = (s: Sandbox, extra: Partial<FetchPolicy> = {}): FetchPolicy => ({ ...defaultFetchPolicy(join(s.root, 'in', 'config')), allowHttp: true, ...extra });

/** An image of one small layer whose program exits with `code`, plus `extra` layers given as tars. */
const small = (s: Sandbox, code: number, arch = 'amd64', extra: string[] = []): OciSpec => {
  const root = s.input(`exit-${code}-${arch}`);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'exit'), exitProgram(code), { mode: 0o755 });
  return {
    layers: [...extra.map((tar) => ({ tar, compression: 'gzip' as const })), { tar: tarDir(root, s.input(`exit-${code}-${arch}.tar`)), compression: 'gzip' }],
    config: { architecture: arch, os: 'linux', config: { Cmd: ['/exit'] }, rootfs: { type: 'layers', diff_ids: [] } },
  };
};

/** A layer tar of `mb` MiB of incompressible data (as a file in it). */
const bulk = (s: Sandbox, name: string, mb: number): string => {
  const root = s.input(`bulk-${name}`);
  mkdirSync(root, { recursive: true });
  const data = Buffer.alloc(mb << 20);
  for (let i = 0; i < data.length; i += 32) createHash('sha256').update(`${name}${i}`).digest().copy(data, i);
  writeFileSync(join(root, name), data);
  return tarDir(root, s.input(`bulk-${name}.tar`));
};

const layout = (s: Sandbox, name: string, spec: OciSpec): string => {
  const dir = s.input(name);
  makeOciLayout(dir, spec);
  return dir;
};

/**
 * A layout `name` (tagged `multi`) holding one image index of the images of the one-image `layouts`,
 * each for linux on its architecture; returns the index's entries and the hex of its digest.
 */
const multiPlatform = (s: Sandbox, name: string, layouts: Record<string, string>): { manifests: Array<{ digest: string }>; hex: string } => {
  const dir = s.input(name);
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const manifests = Object.entries(layouts).map(([arch, from]) => {
    const entry = (JSON.parse(readFileSync(join(from, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0]!;
    for (const blob of entries(join(from, 'blobs', 'sha256'))) writeFileSync(join(dir, 'blobs', 'sha256', blob), readFileSync(join(from, 'blobs', 'sha256', blob)));
    return { ...entry, platform: { os: 'linux', architecture: arch } };
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  const hex = createHash('sha256').update(index).digest('hex');
  writeFileSync(join(dir, 'blobs', 'sha256', hex), index);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex}`, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] }));
  return { manifests, hex };
};


const listed = async (s: Sandbox): Promise<Array<{ id: string; name: string; version?: string }>> =>
  JSON.parse((await podlog(s.dataDir, ['image', 'list', '--format', 'json'])).stdout) as Array<{ id: string; name: string; version?: string }>;

test('podlog fetch docker://HOST:PORT/NAME:TAG and @DIGEST: named HOST:PORT/NAME and tagged in image list, the same image both ways, and it runs', async (t) => {
  const s = await sandboxFor(t);
  const registry = await startRegistry();
  t.teardown(registry.stop);
  await push(layout(s, 'app', small(s, 5)), registry, 'team/app:v1');
  const ref = `docker://${registry.host}/team/app:v1`;
  const refused = await podlog(s.dataDir, ['fetch', ref]);
  t.is(refused.status, 254, 'https is tried, and this registry speaks plain http');
  t.is(refused.stderr, `podlog: ${ref}: GET https://${registry.host}/v2/team/app/manifests/v1: the server does not speak TLS (a plain-http registry needs --insecure-options=http)\n`);
  const fetched = await podlog(s.dataDir, ['fetch', '--insecure-options=http', ref]);
  t.is(fetched.status, 0, fetched.stderr);
  const id = fetched.stdout.trim();
  const [row, ...others] = await listed(s);
  t.deepEqual(others, []);
  t.like(row, { id, name: `${registry.host}/team/app` });
  t.is(label((await s.images.manifest(id)).labels, 'version'), 'v1');
  const seen: RegistryImage[] = [];
  const byDigest = await pull(s.images, `docker://${registry.host}/team/app@${(await pull(s.images, ref, { policy: http(s) })).digest}`, {
    policy: http(s), verify: async (m) => void seen.push(m),
  });
  t.is(byDigest.image.id, id, 'by digest, the same image');
  t.is(seen[0]?.repository, 'team/app');
  t.is(seen[0]?.digest, `sha256:${createHash('sha256').update(seen[0]!.manifest).digest('hex')}`);
  const run = await podlog(s.dataDir, ['run', id]);
  t.is(run.status, 5, run.stderr);
  t.is((await podlog(s.dataDir, ['run', `${registry.host}/team/app:v1`])).status, 5, 'the name and tag image list shows run it');
  const unknown = await podlog(s.dataDir, ['fetch', '--insecure-options=http', `docker://${registry.host}/team/app:v9`]);
  t.is(unknown.status, 254);
  t.regex(unknown.stderr, new RegExp(`docker://${registry.host}/team/app:v9: manifest v9: GET http://${registry.host}/v2/team/app/manifests/v9 answered 404 Not Found \\(MANIFEST_UNKNOWN: manifest unknown\\)`));
  const short = await podlog(s.dataDir, ['fetch', 'docker://busybox']);
  t.is(short.status, 254);
  t.regex(short.stderr, /name the registry \(docker:\/\/HOST\[:PORT\]\/NAME\[:TAG\]\): podlog has no default registry/);
});

test('a second tag of a stored image (docker://H/x:v1, then :latest of the same manifest): the image is known by both, runs by both and is removed by either', async (t) => {
  const s = await sandboxFor(t);
  const { registry, proxy } = await behindProxy(t);
  const app = layout(s, 'app', small(s, 7));
  await push(app, registry, 'x:v1');
  await push(app, registry, 'x:latest');
  const fetch = (tag: string) => podlog(s.dataDir, ['fetch', '--insecure-options=http', `docker://${proxy.host}/x:${tag}`]);
  const v1 = await fetch('v1');
  t.is(v1.status, 0, v1.stderr);
  proxy.seen.length = 0;
  const latest = await fetch('latest');
  t.is(latest.stdout, v1.stdout, 'the same image');
  t.deepEqual(proxy.seen.map((x) => x.path), ['/v2/x/manifests/latest'], 'stored already: one manifest request');
  const [row, ...others] = JSON.parse((await podlog(s.dataDir, ['image', 'list', '--format', 'json'])).stdout) as Array<{ name: string; names: Array<{ name: string; labels: Array<{ name: string; value: string }> }> }>;
  t.deepEqual(others, []);
  t.deepEqual(row!.names.map((n) => `${n.name}:${label(n.labels, 'version')}`), [`${proxy.host}/x:v1`, `${proxy.host}/x:latest`]);
  t.is((await podlog(s.dataDir, ['run', `${proxy.host}/x:latest`])).status, 7, 'run by the second tag');
  t.is((await podlog(s.dataDir, ['run', `${proxy.host}/x:v1`])).status, 7, 'and by the first');
  const rm = await podlog(s.dataDir, ['image', 'rm', `docker://${proxy.host}/x:latest`]);
  t.is(rm.status, 0, rm.stderr);
  t.deepEqual(await listed(s), [], 'image rm by the second tag removes the image');
});

test('image rm docker://H/x@DIGEST removes the image pulled by that digest, not the newest H/x; a digest no pull stored is refused', async (t) => {
  const s = await sandboxFor(t);
  const registry = await startRegistry();
  t.teardown(registry.stop);
  await push(layout(s, 'one', small(s, 31)), registry, 'x:v1');
  await push(layout(s, 'two', small(s, 32)), registry, 'x:v2');
  const one = await pull(s.images, `docker://${registry.host}/x:v1`, { policy: http(s) });
  const two = await pull(s.images, `docker://${registry.host}/x:v2`, { policy: http(s) });
  const rm = await podlog(s.dataDir, ['image', 'rm', `docker://${registry.host}/x@${one.digest}`]);
  t.is(rm.status, 0, rm.stderr);
  t.deepEqual((await listed(s)).map((i) => i.id), [two.image.id], 'the image of that digest went, the newer one stayed');
  const none = `docker://${registry.host}/x@sha256:${'0'.repeat(64)}`;
  const refused = await podlog(s.dataDir, ['image', 'rm', none]);
  t.is(refused.status, 254);
  t.regex(refused.stderr, new RegExp(`${none}: no image pulled from ${none} in the store`));
  t.deepEqual((await listed(s)).map((i) => i.id), [two.image.id]);
});

test("a tag moved to an index holding the stored image: the pull's ImageVerified records where this pull found it (the index), not the stored image's first source", async (t) => {
  const s = await sandboxFor(t);
  const registry = await startRegistry();
  t.teardown(registry.stop);
  const amd = layout(s, 'amd', small(s, 41));
  await push(amd, registry, 'x:latest');
  const first = await pull(s.images, `docker://${registry.host}/x:latest`, { policy: http(s) });
  t.is(first.image.source, `docker://${registry.host}/x@${first.digest}`);
  // The tag now names an index that gained a platform; its amd64 image is the one stored.
  const { hex } = multiPlatform(s, 'multi', { arm64: layout(s, 'arm', small(s, 42, 'arm64')), amd64: amd });
  await push(s.input('multi'), registry, 'x:latest', { tag: 'multi', all: true });
  const image = await s.images.resolve(`docker://${registry.host}/x:latest`, { policy: http(s) });
  t.is(image.id, first.image.id);
  const verified = (await s.events.readAll({ types: ['ImageVerified'] })).map((e) => e.data.source);
  t.deepEqual(verified, [`docker://${registry.host}/x@sha256:${hex}`]);
});

test('fetch --hash of a pull: a wrong id is refused before any blob is downloaded; a 128-digit id (an ACI hash) is refused for the OCI image, stored or not, as for a layout', async (t) => {
  const s = await sandboxFor(t);
  const { registry, proxy } = await behindProxy(t);
  await push(layout(s, 'app', small(s, 51)), registry, 'x:v1');
  const ref = `docker://${proxy.host}/x:v1`;
  const fetch = (hash: string) => podlog(s.dataDir, ['fetch', '--insecure-options=http', `--hash=${hash}`, ref]);
  const wrong = `sha512-${'0'.repeat(64)}`;
  const refused = await fetch(wrong);
  t.is(refused.status, 254);
  t.regex(refused.stderr, new RegExp(`${ref}: image hash does not match expected \\(sha512-[0-9a-f]{64} != ${wrong}\\)`));
  t.deepEqual(proxy.seen.map((x) => x.path), ['/v2/x/manifests/v1'], 'no blob asked for');
  const id = (await pull(s.images, ref, { policy: http(s) })).image.id;
  const long = `${id}${'f'.repeat(64)}`;
  for (const when of ['stored', 'not stored']) {
    const r = await fetch(long);
    t.is(r.status, 254, `${when}: ${r.stdout}`);
    t.regex(r.stderr, new RegExp(`image hash does not match expected \\(${id} != ${long}\\)`), when);
    await podlog(s.dataDir, ['image', 'rm', id]);
  }
  t.is((await fetch(id)).stdout.trim(), id, 'the right id is fetched');
  t.is((await fetch(wrong)).status, 254, 'and refused by the stored-image shortcut when wrong');
});

test('a multi-platform index: the linux/amd64 image is pulled and runs, and by its own digest costs a manifest request; a Docker schema 2 manifest pulls too', async (t) => {
  const s = await sandboxFor(t);
  const { registry, proxy } = await behindProxy(t);
  const { manifests, hex } = multiPlatform(s, 'multi', { arm64: layout(s, 'arm', small(s, 3, 'arm64')), amd64: layout(s, 'amd', small(s, 4, 'amd64')) });
  await push(s.input('multi'), registry, 'multi:latest', { tag: 'multi', all: true });
  const multi = await pull(s.images, `docker://${registry.host}/multi`, { policy: http(s) });
  t.is(multi.digest, manifests[1]!.digest, 'the amd64 manifest');
  t.is(multi.image.source, `docker://${registry.host}/multi@sha256:${hex}`, 'the source is what the tag resolved to: the index');
  t.is((await podlog(s.dataDir, ['run', multi.image.id])).status, 4);
  // Another reference to the image stored (its manifest's own digest): known by its id, nothing downloaded.
  const own = await pull(s.images, `docker://${proxy.host}/multi@${manifests[1]!.digest}`, { policy: http(s) });
  t.is(own.image.id, multi.image.id);
  t.deepEqual(proxy.seen.map((x) => x.path), [`/v2/multi/manifests/${manifests[1]!.digest}`]);

  await push(layout(s, 'docker', small(s, 6)), registry, 'docker:v2s2', { format: 'v2s2' });
  let mediaType: unknown;
  const docker = await pull(s.images, `docker://${registry.host}/docker:v2s2`, { policy: http(s), verify: async (m) => void (mediaType = (JSON.parse(m.manifest.toString()) as { mediaType: unknown }).mediaType) });
  t.is(mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  t.is((await podlog(s.dataDir, ['run', docker.image.id])).status, 6);
});

test('Basic auth (htpasswd): refused without credentials, pulled with rkt auth.d or ~/.docker/config.json', async (t) => {
  const s = await sandboxFor(t);
  const registry = await startRegistry('basic');
  t.teardown(registry.stop);
  await push(layout(s, 'app', small(s, 9)), registry, 'private/app:v1', { creds: true });
  const ref = `docker://${registry.host}/private/app:v1`;
  const config = join(s.root, 'in', 'config');
  const none = await podlog(s.dataDir, ['fetch', '--insecure-options=http', `--local-config=${config}`, ref], { HOME: s.input('nohome') });
  t.is(none.status, 254);
  t.regex(none.stderr, /asks for a user and password, and none is configured for it/);
  rktAuth(join(s.root, 'in', 'config'), registry.host);
  const rkt = await podlog(s.dataDir, ['fetch', '--insecure-options=http', `--local-config=${config}`, ref], { HOME: s.input('nohome') });
  t.is(rkt.status, 0, rkt.stderr);
  await podlog(s.dataDir, ['image', 'rm', rkt.stdout.trim()]);
  const home = s.input('home');
  mkdirSync(join(home, '.docker'), { recursive: true });
  writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
  const docker = await podlog(s.dataDir, ['fetch', '--insecure-options=http', `--local-config=${s.input('empty')}`, ref], { HOME: home });
  t.is(docker.status, 0, docker.stderr);
  t.is(docker.stdout, rkt.stdout);
  t.is((await podlog(s.dataDir, ['run', docker.stdout.trim()])).status, 9);
  const removed = await podlog(s.dataDir, ['image', 'rm', ref]);
  t.is(removed.status, 0, removed.stderr);
  t.deepEqual(await listed(s), [], 'image rm takes the reference it was pulled by');
});

test('Bearer auth (token realm): the token is asked for repository:NAME:pull with the credentials, once per pull', async (t) => {
  const s = await sandboxFor(t);
  const registry = await startRegistry('bearer');
  t.teardown(registry.stop);
  await push(layout(s, 'app', small(s, 11)), registry, 'sealed/app:v1', { creds: true });
  registry.tokens.length = 0;
  const ref = `docker://${registry.host}/sealed/app:v1`;
  const anonymous = await t.throwsAsync(pull(s.images, ref, { policy: http(s) }));
  t.regex(anonymous.message, /the token realm: GET http:\/\/127\.0\.0\.1:\d+\/token\?.* answered 401.*no credentials are configured/);
  rktAuth(join(s.root, 'in', 'config'), registry.host);
  registry.tokens.length = 0;
  const pulled = await pull(s.images, ref, { policy: http(s) });
  t.deepEqual(registry.tokens, ['repository:sealed/app:pull'], 'one token, for pulling that repository, served every request of the pull');
  t.is((await podlog(s.dataDir, ['run', pulled.image.id])).status, 11);
});

test('an interrupted pull is continued with Range from the bytes kept in cas/partial/, which go once it is whole', async (t) => {
  const s = await sandboxFor(t);
  const { registry, proxy } = await behindProxy(t);
  const big = s.input('big');
  const { layers } = makeOciLayout(big, small(s, 12, 'amd64', [bulk(s, 'big', 4)]));
  await push(big, registry, 'big:v1');
  const ref = `docker://${proxy.host}/big:v1`;
  const digest = `sha256:${basename(layers[0]!)}`;
  proxy.cutNext(new RegExp(`/blobs/${digest}$`), 1 << 20);
  const cut = await t.throwsAsync(pull(s.images, ref, { policy: http(s) }));
  t.regex(cut.message, new RegExp(`layer 1/2 ${digest}: .*(interrupted|ended) after \\d+ of \\d+ bytes`));
  const [partial] = entries(join(s.dataDir, 'cas', 'partial'));
  t.is(partial, digest.replace(':', '-'), 'the interrupted blob is kept by its digest');
  const kept = readFileSync(join(s.dataDir, 'cas', 'partial', partial!)).length;
  t.true(kept > 0, `${kept} bytes kept`);
  proxy.seen.length = 0;
  const pulled = await pull(s.images, ref, { policy: http(s) });
  const resumed = proxy.seen.find((x) => x.path.endsWith(partial!.replace('-', ':')));
  t.is(resumed?.range, `bytes=${kept}-`, 'continued where it stopped');
  t.deepEqual(entries(join(s.dataDir, 'cas', 'partial')), []);
  t.is((await podlog(s.dataDir, ['run', pulled.image.id])).status, 12);
});

test('layers shared by two images are downloaded and stored once; an unchanged tag pulled again is one manifest request', async (t) => {
  const s = await sandboxFor(t);
  const { registry, proxy } = await behindProxy(t);
  const base = bulk(s, 'base', 1);
  await push(layout(s, 'one', small(s, 21, 'amd64', [base])), registry, 'one:v1');
  await push(layout(s, 'two', small(s, 22, 'amd64', [base])), registry, 'two:v1');
  const one = await pull(s.images, `docker://${proxy.host}/one:v1`, { policy: http(s) });
  const baseDigest = one.image.layers![0]!.digest;
  proxy.seen.length = 0;
  const two = await pull(s.images, `docker://${proxy.host}/two:v1`, { policy: http(s) });
  t.is(two.image.layers![0]!.digest, baseDigest);
  t.false(proxy.seen.some((x) => x.path.endsWith(baseDigest)), 'the shared layer was not asked for again');
  t.is(entries(join(s.dataDir, 'cas', 'layer-blob')).length, 3, 'base, and each image its own layer');
  proxy.seen.length = 0;
  const again = await pull(s.images, `docker://${proxy.host}/two:v1`, { policy: http(s) });
  t.is(again.image.id, two.image.id);
  t.deepEqual(proxy.seen, [{ method: 'GET', path: '/v2/two/manifests/v1' }]);
  // The CLI too: one request.
  proxy.seen.length = 0;
  const cli = await podlog(s.dataDir, ['fetch', '--insecure-options=http', `docker://${proxy.host}/two:v1`]);
  t.is(cli.stdout.trim(), two.image.id, cli.stderr);
  t.is(proxy.seen.length, 1);
  // And wherever an image is accepted: run by the reference, for one request again.
  proxy.seen.length = 0;
  const run = await podlog(s.dataDir, ['run', '--insecure-options=http', `docker://${proxy.host}/two:v1`]);
  t.is(run.status, 22, run.stderr);
  t.is(proxy.seen.length, 1);
});
