/** docker:// references as a user types them, the credentials podlog finds for a registry, and 401 challenges. */
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsFor, parseChallenges } from '../../src/images/registry/auth.js';
import { parseDockerRef } from '../../src/images/registry/reference.js';
import { guessRef } from '../../src/images/resolve.js';

test('references: a registry must be named, its host lowercased; tag latest by default; a digest wins and keeps the tag for the name', (t) => {
  t.like(parseDockerRef('docker://registry.example.com/team/app'), { registry: 'registry.example.com', repository: 'team/app', tag: 'latest', reference: 'docker://registry.example.com/team/app:latest' });
  t.like(parseDockerRef('docker://127.0.0.1:5000/app:v1.2'), { registry: '127.0.0.1:5000', repository: 'app', tag: 'v1.2' });
  t.like(parseDockerRef('docker://localhost/a/b/c'), { registry: 'localhost', repository: 'a/b/c' });
  t.like(parseDockerRef('docker://Registry.Example.com:5000/app'), { registry: 'registry.example.com:5000', reference: 'docker://registry.example.com:5000/app:latest' }, 'the host lowercased');
  t.like(parseDockerRef('docker://LOCALHOST/app'), { registry: 'localhost' });
  const digest = `sha256:${'a'.repeat(64)}`;
  const both = parseDockerRef(`docker://host.example:443/app:v1@${digest}`);
  t.like(both, { tag: 'v1', digest, reference: `docker://host.example:443/app:v1@${digest}` });
  t.is(parseDockerRef(`docker://h.example/app@${digest}`).tag, undefined);
  t.deepEqual(guessRef('docker://h.example/app:v1'), { kind: 'docker', ref: 'docker://h.example/app:v1' });
  const refused: Array<[string, RegExp]> = [
    ['docker://busybox', /name the registry .* "busybox" is not a host name/],
    ['docker://library/busybox:1.36', /name the registry .* "library" is not a host name/],
    ['docker://h.example/App', /"App" is not a repository name/],
    ['docker://h.example/app:-x', /"-x" is not a tag/],
    ['docker://h.example/app@sha256:123', /"sha256:123" is not a digest/],
    ['docker://h_x.example/app', /"h_x\.example" is not a registry host\[:port\]/],
  ];
  for (const [ref, message] of refused) {
    const e = t.throws(() => parseDockerRef(ref));
    t.true(e.message.startsWith(`${ref}: `), e.message);
    t.regex(e.message, message);
  }
});

test("credentials: rkt's auth.d first, then ~/.docker/config.json (any spelling of the host), none for another registry", (t) => {
  const root = mkdtempSync(join(tmpdir(), 'podlog-auth-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const config = join(root, 'config');
  const home = join(root, 'home');
  mkdirSync(join(config, 'auth.d'), { recursive: true });
  mkdirSync(join(home, '.docker'), { recursive: true });
  writeFileSync(join(config, 'auth.d', 'a.json'), JSON.stringify({ rktKind: 'auth', rktVersion: 'v1', domains: ['x'], type: 'basic', credentials: { user: 'u', password: 'p' } }));
  writeFileSync(join(config, 'auth.d', 'b.json'), JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: ['one.example:5000'], credentials: { user: 'rkt', password: 'r' } }));
  const auth = (s: string): string => Buffer.from(s).toString('base64');
  writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'one.example:5000': { auth: auth('docker:d') }, 'https://two.example/v1/': { auth: auth('two:pass:with:colons') } } }));
  const env = process.env.DOCKER_CONFIG;
  delete process.env.DOCKER_CONFIG;
  t.teardown(() => (env === undefined ? undefined : (process.env.DOCKER_CONFIG = env)));
  t.like(credentialsFor(config, 'one.example:5000', home), { user: 'rkt', password: 'r', from: join(config, 'auth.d', 'b.json') });
  t.like(credentialsFor(config, 'two.example', home), { user: 'two', password: 'pass:with:colons' });
  t.is(credentialsFor(config, 'three.example', home), undefined);
  writeFileSync(join(config, 'auth.d', 'c.json'), '{not json');
  t.throws(() => credentialsFor(config, 'three.example', home), { message: /c\.json: not a JSON file podlog can read/ });
});

test('401 challenges: Bearer with quoted parameters (commas inside quotes, spaces around =), Basic, several in one header', (t) => {
  t.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
  ]);
  t.deepEqual(parseChallenges(['Basic realm="Registry Realm"']), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  t.deepEqual(parseChallenges('Basic realm="r", Bearer realm="https://t",service=s').map((c) => c.scheme), ['basic', 'bearer']);
  t.deepEqual(parseChallenges('Bearer realm = "https://t" , service= "s",scope ="repository:a:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://t', service: 's', scope: 'repository:a:pull' } },
  ], 'spaces around = and ,');
  t.deepEqual(parseChallenges(undefined), []);
});
