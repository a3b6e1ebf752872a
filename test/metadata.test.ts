/**
 * The metadata service in process (src/metadata): its registration socket and the appc metadata API
 * on 127.0.0.1, where 127.0.0.1 and 127.0.0.2 play two pods' addresses (both are loopback's, so a
 * client picks its source address with `localAddress`). Real pods reaching it over their network
 * are in test/ace.test.ts.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podStream } from '../src/engine/streams.js';
import { commandContext, newMetadata } from '../src/events/metadata.js';
import { checkMetadataService, registerPod, unregisterPod } from '../src/metadata/client.js';
import type { PodRegistration } from '../src/metadata/registry.js';
import { startMetadataService, type MetadataService } from '../src/metadata/service.js';
import { openMemorySqliteStore } from '../src/store/sqlite.js';

const POD_A = '11111111-2222-4333-8444-555555555555';
const POD_B = '66666666-7777-4888-9999-aaaaaaaaaaaa';
const ID = `sha512-${'ab'.repeat(64)}`;

const registration = (uuid: string, address: string): PodRegistration => ({
  manifest: {
    acVersion: '0.8.11',
    acKind: 'PodManifest',
    apps: [{ name: 'web', image: { id: ID }, annotations: [{ name: 'b', value: 'pod' }, { name: 'c', value: 'new' }] }],
    annotations: [{ name: 'owner', value: uuid }],
  } as PodRegistration['manifest'],
  apps: { web: { imageManifest: { acKind: 'ImageManifest', name: 'example.com/web', annotations: [{ name: 'a', value: '1' }, { name: 'b', value: 'image' }] } } },
  addresses: [address],
});

interface Reply {
  status: number;
  type: string | undefined;
  body: string;
}

const get = (port: number, path: string, o: { from?: string; flavor?: string | null; method?: string; form?: Record<string, string> } = {}): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const form = o.form === undefined ? undefined : new URLSearchParams(o.form).toString();
    const headers: Record<string, string> = {};
    if (o.flavor !== null) headers['Metadata-Flavor'] = o.flavor ?? 'AppContainer';
    if (form !== undefined) headers['Content-Type'] = 'application/x-www-form-urlencoded';
    const req = request({ host: '127.0.0.1', port, path: `/acMetadata/v1${path}`, method: o.method ?? (form ? 'POST' : 'GET'), localAddress: o.from ?? '127.0.0.1', agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end(form);
  });

const service = async (): Promise<{ s: MetadataService; socket: string; dir: string; done: () => Promise<void> }> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-mds-'));
  const socket = join(dir, 'mds.sock');
  const s = await startMetadataService({ socket, port: 0, host: '127.0.0.1' });
  return { s, socket, dir, done: async () => { await s.close(); rmSync(dir, { recursive: true, force: true }); } };
};

const TEXT = 'text/plain; charset=us-ascii';

test('the registration socket: 0600, checked bodies, one service per socket, a stale socket taken over', async (t) => {
  const { s, socket, dir, done } = await service();
  try {
    t.is(statSync(socket).mode & 0o777, 0o600);
    await checkMetadataService(socket);
    const bad = await registerPod(socket, POD_A, { ...registration(POD_A, '127.0.0.1'), addresses: [] }).catch((e: Error) => e);
    t.regex((bad as Error).message, /refused pod .*addresses: not a non-empty list of IP addresses/);
    const noImage = await registerPod(socket, POD_A, { ...registration(POD_A, '127.0.0.1'), apps: {} }).catch((e: Error) => e);
    t.regex((noImage as Error).message, /no image manifest for app "web"/);
    t.is(await registerPod(socket, POD_A, registration(POD_A, '127.0.0.1')), s.port);
    await t.throwsAsync(startMetadataService({ socket, port: 0, host: '127.0.0.1' }), { message: /already listens on/ });
    t.is(await unregisterPod(socket, POD_A), 'unregistered');
    t.is(await unregisterPod(socket, POD_A), 'not registered');
  } finally {
    await done();
  }
  // Nobody answers on a socket file left behind: a new service takes it.
  const stale = join(dir, 'stale.sock');
  const first = await startMetadataService({ socket: stale, port: 0, host: '127.0.0.1' }).catch(() => undefined);
  t.truthy(first, 'a service on a fresh socket');
  await first?.close();
  // A service killed with SIGKILL leaves its socket file, with nobody answering on it.
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  t.true(lstatSync(stale).isSocket());
  const second = await startMetadataService({ socket: stale, port: 0, host: '127.0.0.1' });
  await second.close();
  rmSync(dir, { recursive: true, force: true });
  t.is(await unregisterPod(stale, POD_A), 'service not running');
  await t.throwsAsync(checkMetadataService(stale), { message: /metadata service is unreachable at .*stale\.sock \(ENOENT\): start it with 'podlog metadata-service'/ });
});

test("the metadata API: the spec's content types, the header required (400), a stranger refused (403), each pod its own", async (t) => {
  const { s, socket, done } = await service();
  try {
    await registerPod(socket, POD_A, registration(POD_A, '127.0.0.1'));
    await registerPod(socket, POD_B, registration(POD_B, '127.0.0.2'));
    const uuid = await get(s.port, '/pod/uuid');
    t.deepEqual(uuid, { status: 200, type: TEXT, body: POD_A });
    t.is((await get(s.port, '/pod/uuid', { from: '127.0.0.2' })).body, POD_B);
    const manifest = await get(s.port, '/pod/manifest', { from: '127.0.0.2' });
    t.is(manifest.type, 'application/json');
    t.deepEqual(JSON.parse(manifest.body), registration(POD_B, '127.0.0.2').manifest, "B gets B's manifest");
    t.deepEqual(JSON.parse((await get(s.port, '/pod/annotations')).body), [{ name: 'owner', value: POD_A }]);
    t.deepEqual(await get(s.port, '/pod/annotations/owner'), { status: 200, type: TEXT, body: POD_A });
    t.deepEqual(await get(s.port, '/apps/web/image/id'), { status: 200, type: TEXT, body: ID });
    t.is(JSON.parse((await get(s.port, '/apps/web/image/manifest')).body).name, 'example.com/web');
    // The image's annotations in their order, the pod's app annotations over them, new ones last.
    t.deepEqual(JSON.parse((await get(s.port, '/apps/web/annotations')).body), [
      { name: 'a', value: '1' }, { name: 'b', value: 'pod' }, { name: 'c', value: 'new' },
    ]);
    t.is((await get(s.port, '/apps/db/image/id')).status, 404);
    t.is((await get(s.port, '/pod/nothing')).status, 404);
    t.is((await get(s.port, '/pod/uuid', { method: 'POST' })).status, 405);
    const noHeader = await get(s.port, '/pod/uuid', { flavor: null });
    t.is(noHeader.status, 400);
    t.regex(noHeader.body, /Metadata-Flavor: AppContainer/);
    t.is((await get(s.port, '/pod/uuid', { flavor: 'Google' })).status, 400);
    const stranger = await get(s.port, '/pod/manifest', { from: '127.0.0.3' });
    t.is(stranger.status, 403);
    t.notRegex(stranger.body, /PodManifest/);
    t.is(await unregisterPod(socket, POD_B), 'unregistered');
    t.is((await get(s.port, '/pod/uuid', { from: '127.0.0.2' })).status, 403, 'an unregistered pod is a stranger');
  } finally {
    await done();
  }
});

test('HMAC: a pod signs, any pod verifies; a tampered signature, content or uuid is 403; a new registration is a new key', async (t) => {
  const { s, socket, done } = await service();
  try {
    await registerPod(socket, POD_A, registration(POD_A, '127.0.0.1'));
    await registerPod(socket, POD_B, registration(POD_B, '127.0.0.2'));
    const content = 'Old MacDonald Had A Farm';
    const signed = await get(s.port, '/pod/hmac/sign', { form: { content } });
    t.is(signed.status, 200);
    t.is(signed.type, TEXT);
    t.is(Buffer.from(signed.body, 'base64').length, 64, 'an HMAC-SHA512');
    const verify = (form: Record<string, string>, from = '127.0.0.2') => get(s.port, '/pod/hmac/verify', { form, from });
    const good = await verify({ content, uuid: POD_A, signature: signed.body });
    t.deepEqual([good.status, good.type], [200, TEXT], "B verifies A's signature");
    const tampered = Buffer.from(signed.body, 'base64');
    tampered[0] = tampered[0]! ^ 1;
    t.is((await verify({ content, uuid: POD_A, signature: tampered.toString('base64') })).status, 403);
    t.is((await verify({ content: `${content}!`, uuid: POD_A, signature: signed.body })).status, 403);
    t.is((await verify({ content, uuid: POD_B, signature: signed.body })).status, 403, "A's signature is not B's");
    t.is((await verify({ content, uuid: POD_A })).status, 400);
    t.is((await get(s.port, '/pod/hmac/sign', { method: 'GET' })).status, 405);
    t.is((await verify({ content, uuid: POD_A, signature: signed.body }, '127.0.0.3')).status, 403, 'a stranger cannot verify');
    await registerPod(socket, POD_A, registration(POD_A, '127.0.0.1'));
    t.is((await verify({ content, uuid: POD_A, signature: signed.body })).status, 403, 'registered again: a new key');
  } finally {
    await done();
  }
});

test('an address IPAM gave to a new pod is taken from the pod that missed its unregistration', async (t) => {
  const { s, socket, done } = await service();
  try {
    await registerPod(socket, POD_A, registration(POD_A, '127.0.0.1'));
    await registerPod(socket, POD_B, registration(POD_B, '127.0.0.1'));
    t.is((await get(s.port, '/pod/uuid')).body, POD_B);
    t.deepEqual(s.registry.uuids(), [POD_B]);
  } finally {
    await done();
  }
});

test("the sweep drops pods whose log says they are unregistered or deleted, and keeps the others", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-mds-'));
  const store = openMemorySqliteStore('sweep');
  const lines: string[] = [];
  // Each sweep closes the log it opened: this one stays open for the test.
  const kept = new Proxy(store, { get: (target, key) => (key === 'close' ? async () => {} : Reflect.get(target, key, target) as unknown) });
  const s = await startMetadataService({ socket: join(dir, 's.sock'), port: 0, host: '127.0.0.1', sweepMs: 50, log: (l) => lines.push(l), openLog: async () => kept });
  try {
    const ctx = commandContext(['test']);
    const event = (type: string, data: Record<string, unknown>) => ({ type, schema: 1, data, meta: newMetadata(ctx) });
    s.registry.register(POD_A, registration(POD_A, '127.0.0.1'));
    s.registry.register(POD_B, registration(POD_B, '127.0.0.2'));
    await store.append(podStream(POD_A), [event('MetadataRegistered', { socket: 's', url: 'u' }), event('MetadataUnregistered', { answer: 'unregistered' })], 'any');
    await store.append(podStream(POD_B), [event('MetadataRegistered', { socket: 's', url: 'u' })], 'any');
    const until = Date.now() + 5000;
    while (s.registry.has(POD_A) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    t.false(s.registry.has(POD_A));
    t.true(s.registry.has(POD_B));
    t.true(lines.some((l) => l.includes(`pod ${POD_A} unregistered: its log says MetadataUnregistered`)));
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
