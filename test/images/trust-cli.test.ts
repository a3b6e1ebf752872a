/**
 * Trust as a user meets it, through bin/podlog (built by npm test's pretest): `podlog trust` adding,
 * listing and removing keys, and `fetch` and `run` refusing what no trusted key signed, with keys and
 * signatures made by the real gpg.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { aciPath, repoRoot } from '../helpers/fixtures.js';
import { makeGpg, skopeoCopy } from '../helpers/gpg.js';
import { startRegistry } from '../helpers/registry.js';
import { assertNothingStored, exitProgram, makeOciLayout, podlogAsync, sandbox, tarDir, type Sandbox } from './helpers.js';

const gpg = makeGpg();
const PUBLISHER = gpg.newKey('Publisher');
const STRANGER = gpg.newKey('Stranger');
test.after.always('the gpg home and its agent go', () => gpg.close());

const key = (s: Sandbox, fpr: string): string => gpg.exportKey(fpr, s.input(`${fpr}.asc`));
const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : []);

test('trust adds a key for a prefix, prints its fingerprint and asks nothing; list shows it; rm removes it', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const etc = s.input('etc');
  const added = await podlogAsync(s.dataDir, ['trust', '--prefix=example.com/app', `--local-config=${etc}`, '--skip-fingerprint-review', key(s, PUBLISHER)]);
  t.is(added.status, 0, added.stderr);
  t.is(added.stdout, `${PUBLISHER}\n`);
  t.regex(added.stderr, new RegExp(`^trusted ${PUBLISHER} \\(Publisher <publisher@podlog\\.invalid>\\) for images named example\\.com/app or example\\.com/app/…: .*/trustedkeys/prefix\\.d/example\\.com/app/${PUBLISHER.toLowerCase()}\\n$`));
  t.is((await podlogAsync(s.dataDir, ['trust', '--root', `--local-config=${etc}`, key(s, STRANGER)])).status, 0);
  const list = await podlogAsync(s.dataDir, ['trust', 'list', `--local-config=${etc}`]);
  t.is(list.stdout, [
    `PREFIX           FINGERPRINT                               USER IDS`,
    `(root)           ${STRANGER}  Stranger <stranger@podlog.invalid>`,
    `example.com/app  ${PUBLISHER}  Publisher <publisher@podlog.invalid>`,
    '',
  ].join('\n'));
  const json = JSON.parse((await podlogAsync(s.dataDir, ['trust', 'list', `--local-config=${etc}`, '--format=json'])).stdout) as Array<Record<string, unknown>>;
  t.like(json[1], { prefix: 'example.com/app', root: false, fingerprint: PUBLISHER, userIds: ['Publisher <publisher@podlog.invalid>'] });
  const rm = await podlogAsync(s.dataDir, ['trust', 'rm', `--local-config=${etc}`, PUBLISHER.toLowerCase()]);
  t.is(rm.status, 0, rm.stderr);
  t.is(rm.stderr, `removed ${PUBLISHER}, trusted for images named example.com/app or example.com/app/…\n`);
  t.deepEqual(files(join(etc, 'trustedkeys')), ['prefix.d', 'root.d', `root.d/${STRANGER.toLowerCase()}`], 'the empty prefix directories went with it');
  const again = await podlogAsync(s.dataDir, ['trust', 'rm', `--local-config=${etc}`, PUBLISHER]);
  t.is(again.status, 254);
  t.is(again.stderr, `podlog: trust rm: no key ${PUBLISHER} is trusted in ${etc}\n`);
});

test('trust refuses a secret key, garbage, a bad prefix and a missing scope with exit 254, and writes nothing', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const etc = s.input('etc');
  const secret = gpg.exportSecretKey(PUBLISHER, s.input('secret.asc'));
  writeFileSync(s.input('junk.asc'), '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----\n');
  const cases: Array<[string, string[], RegExp]> = [
    ['a secret key', ['--root', secret], /secret\.asc: holds a secret key; trust takes the public key only \(gpg --armor --export FINGERPRINT\)/],
    ['garbage after a good key', ['--root', key(s, PUBLISHER), s.input('junk.asc')], /junk\.asc: not an OpenPGP public key/],
    ['a missing file', ['--root', s.input('missing.asc')], /missing\.asc: no such file/],
    ['a prefix that climbs out', ['--prefix=../../etc', key(s, PUBLISHER)], /--prefix: "\.\.\/\.\.\/etc" is not an image name prefix/],
    ['neither --prefix nor --root', [key(s, PUBLISHER)], /trust: give --prefix=NAME \(the images the key vouches for\) or --root \(every image\)/],
    ['both', ['--root', '--prefix=example.com', key(s, PUBLISHER)], /--prefix and --root exclude each other/],
  ];
  for (const [what, args, message] of cases) {
    const r = await podlogAsync(s.dataDir, ['trust', `--local-config=${etc}`, ...args]);
    t.is(r.status, 254, what);
    t.is(r.stdout, '', what);
    t.regex(r.stderr, message, what);
    t.false(existsSync(etc), `${what}: nothing written`);
  }
});

test('OpenPGP is loaded at its first use: list does not load it, trust list does (seen by the node:crypto it requires)', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const etc = s.input('etc');
  t.is((await podlogAsync(s.dataDir, ['trust', '--root', `--local-config=${etc}`, key(s, PUBLISHER)])).status, 0);
  const probe = s.input('probe.cjs');
  writeFileSync(probe, "process.on('exit', () => require('node:fs').writeFileSync(process.env.PROBE_OUT, JSON.stringify(process.moduleLoadList)));");
  const builtins = (args: string[]): string[] => {
    const out = s.input('loaded.json');
    const r = spawnSync(process.execPath, ['--require', probe, join(repoRoot, 'bin', 'podlog'), '--dir', s.dataDir, ...args], { env: { ...process.env, PROBE_OUT: out }, encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(readFileSync(out, 'utf8')) as string[];
  };
  t.false(builtins(['list']).includes('NativeModule crypto'));
  t.true(builtins(['trust', 'list', `--local-config=${etc}`]).includes('NativeModule crypto'));
});

// fetch and run with the check: these need the fetch verb and the run verbs to call the trust module
// (importVerified for a file, checkAci with the .asc of a URL), which the lead wires.

/** A copy of the busybox fixture (named podlog.test/busybox) in the sandbox, signed by `signer` unless undefined. */
const busybox = (s: Sandbox, file: string, signer: string | undefined): string => {
  const path = s.input(file);
  copyFileSync(aciPath('busybox-gzip'), path);
  if (signer !== undefined) gpg.detachSign(signer, path);
  return path;
};

const trusted = async (s: Sandbox): Promise<string> => {
  const etc = s.input('etc');
  const r = await podlogAsync(s.dataDir, ['trust', '--prefix=podlog.test', `--local-config=${etc}`, key(s, PUBLISHER)]);
  if (r.status !== 0) throw new Error(r.stderr);
  return etc;
};

const verified = async (s: Sandbox, id: string): Promise<Record<string, unknown>[]> =>
  (await s.events.readStream(`image-${id}`)).filter((e) => e.type === 'ImageVerified').map((e) => e.data);

test('fetch: a signed ACI is imported and the log names its signer; unsigned and untrusted ones are refused naming the image, the key expected and what was found', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const etc = await trusted(s);
  const unsigned = await podlogAsync(s.dataDir, ['fetch', `--local-config=${etc}`, busybox(s, 'unsigned.aci', undefined)]);
  t.is(unsigned.status, 254);
  t.is(unsigned.stderr, `podlog: ${s.input('unsigned.aci')}: refused: it has no signature (${s.input('unsigned.aci')}.asc); trusted for podlog.test/busybox: prefix podlog.test ${PUBLISHER}; --insecure-options=image skips the signature check\n`);
  const untrusted = await podlogAsync(s.dataDir, ['fetch', `--local-config=${etc}`, busybox(s, 'untrusted.aci', STRANGER)]);
  t.is(untrusted.status, 254);
  t.regex(untrusted.stderr, new RegExp(`refused: signed by ${STRANGER}, which is not a trusted key; trusted for podlog.test/busybox: prefix podlog.test ${PUBLISHER}`));
  await assertNothingStored(t, s, 'after the refusals');
  const signed = await podlogAsync(s.dataDir, ['fetch', `--local-config=${etc}`, busybox(s, 'signed.aci', PUBLISHER)]);
  t.is(signed.status, 0, signed.stderr);
  const id = signed.stdout.trim();
  t.deepEqual(await verified(s, id), [{ id, source: s.input('signed.aci'), verified: true, kind: 'aci-signature', fingerprint: PUBLISHER, prefix: 'podlog.test' }]);
  const listed = await podlogAsync(s.dataDir, ['image', 'list', '--format=json']);
  t.deepEqual((JSON.parse(listed.stdout) as Array<{ verification?: unknown }>).map((i) => i.verification), [{ verified: true, kind: 'aci-signature', fingerprint: PUBLISHER, prefix: 'podlog.test' }]);
});

test('fetch: a tampered ACI with its valid old signature is refused', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const etc = await trusted(s);
  const path = busybox(s, 'app.aci', PUBLISHER);
  copyFileSync(aciPath('busybox-xz'), path);
  const r = await podlogAsync(s.dataDir, ['fetch', `--local-config=${etc}`, path]);
  t.is(r.status, 254);
  t.regex(r.stderr, new RegExp(`refused: the signature by ${PUBLISHER} does not match the image`));
  await assertNothingStored(t, s, 'tampered');
});

test('fetch --insecure-options=image imports an unsigned ACI, and the log says the check was skipped; with no key trusted, the log says nothing was checked (and stderr, not a terminal, stays clean)', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const bare = await podlogAsync(s.dataDir, ['fetch', `--local-config=${s.input('empty')}`, busybox(s, 'first.aci', undefined)]);
  t.is(bare.status, 0, bare.stderr);
  t.is(bare.stderr, '');
  t.like((await verified(s, bare.stdout.trim()))[0], { verified: false, skipped: 'no-trusted-keys' });
  const etc = await trusted(s);
  const insecure = await podlogAsync(s.dataDir, ['fetch', `--local-config=${etc}`, '--insecure-options=image', busybox(s, 'second.aci', undefined)]);
  t.is(insecure.status, 0, insecure.stderr);
  t.like((await verified(s, insecure.stdout.trim())).at(-1), { verified: false, skipped: 'insecure-options' });
});

test('run: a signed ACI runs; an unsigned one is refused with exit 254 before any pod is made; --insecure-options=image runs it', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const etc = await trusted(s);
  const signed = await podlogAsync(s.dataDir, ['run', '--net=none', `--local-config=${etc}`, busybox(s, 'signed.aci', PUBLISHER)]);
  t.is(signed.status, 0, signed.stderr);
  // The same image as the one that ran: that the store holds it vouches for nothing.
  const unsigned = busybox(s, 'unsigned.aci', undefined);
  const refused = await podlogAsync(s.dataDir, ['run', '--net=none', `--local-config=${etc}`, unsigned]);
  t.is(refused.status, 254);
  t.regex(refused.stderr, /unsigned\.aci: refused: it has no signature/);
  t.is((await s.events.readAll({ streamPrefix: 'pod-' })).filter((e) => e.type === 'PrepareRequested').length, 1, 'only the signed run made a pod');
  const insecure = await podlogAsync(s.dataDir, ['run', '--net=none', `--local-config=${etc}`, '--insecure-options=image', unsigned]);
  t.is(insecure.status, 0, insecure.stderr);
  const skipped = (await s.events.readAll({ types: ['ImageVerified'] })).map((e) => e.data);
  t.like(skipped.at(-1), { source: unsigned, verified: false, skipped: 'insecure-options' });
});

test('run and fetch docker://: an image skopeo signed runs, and the log names its signer; an unsigned one is refused with exit 254 before anything is stored', async (t) => {
  const s = await sandbox();
  t.teardown(s.cleanup);
  const registry = await startRegistry();
  t.teardown(registry.stop);
  const layout = (code: number): string => {
    const root = s.input(`exit-${code}`);
    mkdirSync(root);
    writeFileSync(join(root, 'exit'), exitProgram(code), { mode: 0o755 });
    makeOciLayout(s.input(`layout-${code}`), {
      layers: [{ tar: tarDir(root, s.input(`exit-${code}.tar`)) }],
      config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['/exit'] }, rootfs: { type: 'layers', diff_ids: [] } },
      annotations: { 'org.opencontainers.image.ref.name': 'v1' },
    });
    return `oci:${s.input(`layout-${code}`)}:v1`;
  };
  const sigs = pathToFileURL(s.input('sigs')).href;
  await skopeoCopy(gpg, layout(7), `docker://${registry.host}/app/signed:v1`, { by: PUBLISHER, lookaside: sigs });
  await skopeoCopy(gpg, layout(8), `docker://${registry.host}/app/unsigned:v1`);
  const etc = s.input('etc');
  t.is((await podlogAsync(s.dataDir, ['trust', `--prefix=${registry.host}/app`, `--local-config=${etc}`, key(s, PUBLISHER)])).status, 0);
  mkdirSync(join(etc, 'registries.d'));
  writeFileSync(join(etc, 'registries.d', 'sigs.json'), JSON.stringify({ docker: { [registry.host]: { lookaside: sigs } } }));
  const flags = ['--insecure-options=http', `--local-config=${etc}`];
  const refused = await podlogAsync(s.dataDir, ['fetch', ...flags, `docker://${registry.host}/app/unsigned:v1`]);
  t.is(refused.status, 254);
  t.regex(refused.stderr, new RegExp(`refused: it has no signature \\(none at ${sigs}/app/unsigned@sha256=[0-9a-f]{64}/signature-1\\); trusted for ${registry.host}/app/unsigned: prefix ${registry.host}/app ${PUBLISHER}`));
  await assertNothingStored(t, s, 'unsigned');
  t.is((await podlogAsync(s.dataDir, ['run', '--net=none', ...flags, `docker://${registry.host}/app/unsigned:v1`])).status, 254);
  const ran = await podlogAsync(s.dataDir, ['run', '--net=none', ...flags, `docker://${registry.host}/app/signed:v1`]);
  t.is(ran.status, 7, ran.stderr);
  const [verdict] = (await s.events.readAll({ types: ['ImageVerified'] })).map((e) => e.data);
  t.like(verdict, { verified: true, kind: 'simple-signing', fingerprint: PUBLISHER, prefix: `${registry.host}/app` });
});
