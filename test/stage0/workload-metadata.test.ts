/**
 * The metadata service with real pods on the default network, in the test's own network namespace
 * (scripts/isolated.sh), which plays the host: `podlog metadata-service` as a user starts it, pods run
 * with `--mds-register`, and the appc ACE validator (test/ace/build.sh) judges the executor as rkt's
 * functional test did, poststop included.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { unregisterPod } from '../../src/metadata/client.js';
import { aciPath, fixturesDir, repoRoot } from '../helpers/fixtures.js';
import { dataDir, podlogAsync, type DataDir } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const ace = join(fixturesDir, 'ace');
const isolated = process.env.PODLOG_OUTER_NETNS !== undefined && readlinkSync('/proc/self/ns/net') !== process.env.PODLOG_OUTER_NETNS;

/** What ace-validator checks in each of its modes (appc/spec v0.8.11, ace/validator.go): its "OK" is all of them passing. */
const ACE_CHECKS = {
  prestart: ['runs before the app: /prestart created, /main and /poststop absent'],
  main: [
    'after its pre-start handler, in the same root: /prestart there, /main created, /poststop absent',
    'PATH exactly /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'working directory /opt/acvalidator',
    'environment IN_ACE_VALIDATOR=correct and AC_APP_NAME=ace-validator-main',
    '/db a read-write mount point in /proc/self/mountinfo',
    'metadata: GET pod/manifest (a valid PodManifest), pod/uuid (text/plain; charset=us-ascii), pod/annotations (the manifest\'s)',
    'metadata: per app, image/manifest, image/id (the pod manifest\'s), annotations (the image\'s with the app\'s over them)',
    'metadata: POST pod/hmac/sign, then pod/hmac/verify of that signature, each 200 with the right content type, within 100 ms',
    'the volume shared with the sidekick: /db/sidekick appears within 5 s, then /db/main is created',
  ],
  sidekick: ['runs beside main on the same volume: /db/sidekick created, /db/main appears within 5 s'],
  poststop: ['runs after the app exited, in its root: /prestart and /main there, /poststop created'],
};

interface Service {
  socket: string;
  env: Record<string, string>;
  stop: () => Promise<void>;
}

/** `podlog metadata-service` on a socket of the test's own and a port the kernel picks (pods learn it at registration). */
const startService = async (d: DataDir): Promise<Service> => {
  const socket = join(d.dir, 'mds.sock');
  const child = d.start(['metadata-service', `--socket=${socket}`, '--listen-port=0']);
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((ok) => setTimeout(ok, 25));
  if (!existsSync(socket)) throw new Error(`metadata-service did not start: ${log}`);
  return {
    socket,
    env: { PODLOG_MDS_SOCKET: socket },
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
};

const collect = (d: DataDir): void => {
  d.podlog(['gc', '--grace-period=0s', '--expire-prepared=0s']);
  d.cleanup();
};

const typesOf = (d: DataDir, uuid: string): string[] => d.events(uuid).map((e) => e.type);

test.before(() => {
  // Built by the pretest already (fixtures/build.sh): this only checks they are current.
  const built = spawnSync('bash', [join(repoRoot, 'test', 'ace', 'build.sh'), ace], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`test/ace/build.sh failed: ${built.stderr}`);
});

test.serial('the tests play host in a network namespace of their own', (t) => {
  t.true(isolated, "run through npm test (scripts/isolated.sh): this is the machine's own network namespace");
});

test.serial('the appc ACE validator passes: prestart, main, sidekick and poststop OK; the registration is in the log and gc takes it back', async (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  const mds = await startService(d);
  try {
    const r = await podlogAsync(d, [
      'run', '--mds-register', '--net=default', '--volume=database,kind=empty', `--uuid-file-save=${join(d.dir, 'uuid')}`,
      // The sidekick busy-waits for main; capped, it cannot starve the service main asks (its
      // client gives up after 100 ms) on a machine of two cores that runs other tests beside it.
      join(ace, 'ace-validator-main.aci'), join(ace, 'ace-validator-sidekick.aci'), '--cpu=200m',
    ], mds.env);
    for (const [mode, checks] of Object.entries(ACE_CHECKS)) t.log(`${mode}:\n  - ${checks.join('\n  - ')}`);
    t.is(r.status, 0, r.stderr);
    for (const mode of Object.keys(ACE_CHECKS)) t.regex(r.stdout, new RegExp(`^${mode} OK$`, 'm'), `${mode} OK`);
    t.notRegex(r.stdout + r.stderr, /FAIL|==>/);
    const [pod] = d.pods();
    const events = d.events(pod!.uuid);
    const registered = events.find((e) => e.type === 'MetadataRegistered');
    t.regex(String(registered?.data.url), /^http:\/\/172\.16\.28\.1:\d+$/);
    t.deepEqual(
      events.filter((e) => e.type === 'AppHookRan').map((e) => [e.data.app, e.data.hook, e.data.code]),
      [['ace-validator-main', 'pre-start', 0], ['ace-validator-main', 'post-stop', 0]],
    );
    t.deepEqual(pod!.apps.map((a) => [a.name, a.exit_code]), [['ace-validator-main', 0], ['ace-validator-sidekick', 0]]);
    // The HMAC key is the service's alone: nothing in the log looks like one.
    t.notRegex(JSON.stringify(events), /"key"|hmac/i);
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    t.deepEqual(typesOf(d, pod!.uuid).filter((x) => x.startsWith('Metadata') || x.startsWith('NetworkDetach') || x === 'PodDeleted'), [
      'MetadataRegisterRequested', 'MetadataRegistered', 'MetadataUnregisterRequested', 'MetadataUnregistered',
      'NetworkDetachRequested', 'NetworkDetached', 'PodDeleted',
    ]);
    t.is(await unregisterPod(mds.socket, pod!.uuid), 'not registered', 'gc unregistered it');
  } finally {
    await mds.stop();
    collect(d);
  }
});

test.serial("a pod reaches the service through its gateway and gets its own UUID, never another pod's; no header, 400", async (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  const mds = await startService(d);
  try {
    const script = [
      'echo "url=$AC_METADATA_URL"',
      'for i in 1 2 3 4 5 6 7 8 9 10; do echo "uuid=$(wget -q -O - --header "Metadata-Flavor: AppContainer" "$AC_METADATA_URL/acMetadata/v1/pod/uuid")"; sleep 0.1; done',
      'wget -q -O - "$AC_METADATA_URL/acMetadata/v1/pod/uuid" 2>&1; echo "bare=$?"',
    ].join('; ');
    const run = (n: number) => podlogAsync(d, ['run', '--mds-register', '--net=default', `--uuid-file-save=${join(d.dir, `uuid${n}`)}`, busybox, '--exec', '/bin/sh', '--', '-c', script], mds.env);
    // Two at once: each asks while the other is registered too.
    const results = await Promise.all([run(1), run(2)]);
    for (const [i, r] of results.entries()) {
      t.is(r.status, 0, r.stderr);
      const own = readFileSync(join(d.dir, `uuid${i + 1}`), 'utf8').trim();
      t.regex(r.stdout, /^url=http:\/\/172\.16\.28\.1:\d+$/m);
      const seen = [...r.stdout.matchAll(/^uuid=(.*)$/gm)].map((m) => m[1]);
      t.deepEqual(seen, Array(10).fill(own), `pod ${i + 1} sees only its own UUID`);
      t.regex(r.stdout, /400 Bad Request[\s\S]*bare=1/);
    }
  } finally {
    await mds.stop();
    collect(d);
  }
});

test.serial('--mds-register without a service: refused before any pod exists; with --net=host: refused by name', async (t) => {
  const d = dataDir();
  try {
    const r = await podlogAsync(d, ['run', '--mds-register', '--net=default', busybox], { PODLOG_MDS_SOCKET: join(d.dir, 'nobody.sock') });
    t.is(r.status, 254);
    t.regex(r.stderr, /the metadata service is unreachable at .*nobody\.sock \(ENOENT\): start it with 'podlog metadata-service', or run the pod without --mds-register/);
    t.deepEqual(d.pods(), []);
    const host = await podlogAsync(d, ['run', '--mds-register', '--net=host', busybox]);
    t.is(host.status, 254);
    t.regex(host.stderr, /--mds-register needs a pod network: not --net=host/);
  } finally {
    d.cleanup();
  }
});

test.serial('a failed or abandoned registration leaves the pod prepared and unregistered, one left by a run killed before its start is made anew, and the pod runs; a gc killed while unregistering is finished by the next', async (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  const mds = await startService(d);
  try {
    const args = ['--mds-register', '--net=default'];
    const failed = await podlogAsync(d, ['run', ...args, busybox, '--exec', '/bin/true'], { ...mds.env, PODLOG_FAIL_AT: 'effect:registerMetadata' });
    t.is(failed.status, 254);
    t.regex(failed.stderr, /effect registerMetadata failed: injected by PODLOG_FAIL_AT/);
    const [pod] = d.pods();
    t.is(pod!.state, 'prepared');
    t.deepEqual(typesOf(d, pod!.uuid).slice(-4), ['MetadataRegisterRequested', 'EffectFailed', 'NetworkDetachRequested', 'NetworkDetached'], 'its networks given back');
    t.is(await unregisterPod(mds.socket, pod!.uuid), 'not registered');

    // Killed after the service registered it, before the log says so: the next verb undoes it.
    const killed = await podlogAsync(d, ['run-prepared', ...args, pod!.uuid], { ...mds.env, PODLOG_CRASH_AT: 'before-outcome:MetadataRegistered' });
    t.is(killed.status, null);
    t.is(d.podlog(['status', pod!.uuid]).status, 0);
    const events = d.events(pod!.uuid);
    t.like(events.at(-1), { type: 'EffectFailed', data: { effect: 'registerMetadata', code: 'EABANDONED' } });
    t.is(await unregisterPod(mds.socket, pod!.uuid), 'not registered', 'the reconciler unregistered what the dead run registered');

    // Killed after it registered, before stage1 started: the next run registers it anew.
    const beforeStart = await podlogAsync(d, ['run-prepared', ...args, pod!.uuid], { ...mds.env, PODLOG_CRASH_AT: 'after-intent:Stage1StartRequested' });
    t.is(beforeStart.status, null);
    t.is(d.podlog(['status', pod!.uuid]).status, 0);
    t.is(d.pods()[0]!.state, 'prepared');

    const again = await podlogAsync(d, ['run-prepared', ...args, pod!.uuid], mds.env);
    t.is(again.status, 0, again.stderr);
    t.is(d.pods()[0]!.state, 'exited');
    const metadataTypes = typesOf(d, pod!.uuid).filter((x) => x.startsWith('Metadata'));
    t.deepEqual(metadataTypes.slice(-4), ['MetadataUnregisterRequested', 'MetadataUnregistered', 'MetadataRegisterRequested', 'MetadataRegistered'], 'the registration the dead run left is made anew');

    const gcKilled = d.podlog(['gc', '--grace-period=0s'], { PODLOG_CRASH_AT: 'after-intent:MetadataUnregisterRequested' });
    t.is(gcKilled.signal, 'SIGKILL');
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    t.deepEqual(d.pods(), []);
    t.is(typesOf(d, pod!.uuid).at(-1), 'PodDeleted');
    t.is(await unregisterPod(mds.socket, pod!.uuid), 'not registered');
  } finally {
    await mds.stop();
    collect(d);
  }
});
