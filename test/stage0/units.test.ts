/** The pure parts of stage0: mounts merging, app naming, the pod manifest, rkt's run flags. */
import test from 'ava';
import { parseRunFlags } from '../../src/cli/run-flags.js';
import { PodlogError } from '../../src/errors.js';
import type { ImageManifest } from '../../src/images/aci-manifest.js';
import { generatePodManifest, imageNameToAppName, mergeMounts, nameApps, sanitizeAcName } from '../../src/stage0/pod-manifest.js';
import type { PrepareConfig } from '../../src/stage0/config.js';

test('mergeMounts: per-app mounts win, deduplicated by cleaned path', (t) => {
  const merged = mergeMounts(
    [{ volume: 'pod-data', path: '/data' }, { volume: 'pod-logs', path: '/var/log/' }, { volume: 'pod-tmp', path: '/tmp' }],
    [{ volume: 'app-data', path: '/data/.' }, { volume: 'app-logs', path: '/var//log' }],
  );
  t.deepEqual(merged.map((m) => m.volume), ['app-data', 'app-logs', 'pod-tmp']);
});

test('app names come from the image name as rkt makes them', (t) => {
  t.is(imageNameToAppName('example.com/Some_App'), 'some-app');
  t.is(imageNameToAppName('podlog.test/busybox'), 'busybox');
  t.is(sanitizeAcName('--A..b--'), 'a-b');
  t.throws(() => sanitizeAcName('___'), { instanceOf: PodlogError });
});

const image = (name: string, app?: ImageManifest['app']): ImageManifest => ({
  acKind: 'ImageManifest', acVersion: '0.8.11', name, ...(app ? { app } : {}),
});
const cfg = (over: Partial<PrepareConfig> = {}) =>
  ({ inheritEnv: false, explicitEnv: [], envFromFile: [], userAnnotations: {}, userLabels: {}, mutable: false, volumes: [], mounts: [], ports: [], ...over }) as PrepareConfig;

test('nameApps refuses duplicate names and images with nothing to run', (t) => {
  const a = { config: { image: 'x', args: [], environment: {} }, imageId: 'sha512-1', manifest: image('x.io/busybox', { exec: ['/bin/sh'], user: '0', group: '0' }) };
  t.throws(() => nameApps([a, a]), { message: 'multiple apps with name busybox' });
  t.throws(() => nameApps([{ ...a, manifest: image('x.io/empty') }]), { message: /has no app section and --exec argument is not provided/ });
  t.throws(() => nameApps([{ ...a, config: { ...a.config, name: 'Bad Name' } }]), { message: /invalid app name format/ });
});

test('the pod manifest: --exec replaces, args append, the app\'s --environment over --set-env', (t) => {
  const [app] = nameApps([{
    config: { image: 'x', exec: '/bin/echo', args: ['hi'], environment: { PER_APP: '1', SHARED: 'app' }, user: '1000' },
    imageId: 'sha512-1',
    manifest: image('x.io/busybox', { exec: ['/bin/sh', '-c', 'true'], user: '0', group: '0', environment: [{ name: 'IMAGE', value: 'i' }, { name: 'SHARED', value: 'image' }] }),
  }]);
  const pm = generatePodManifest([app!], cfg({ explicitEnv: ['SHARED=set-env'], userLabels: { team: 'infra' } }));
  const ra = pm.apps[0]!;
  t.deepEqual(ra.app.exec, ['/bin/echo', 'hi']);
  t.is(ra.app.user, '1000');
  t.deepEqual(ra.app.environment, [{ name: 'IMAGE', value: 'i' }, { name: 'SHARED', value: 'app' }, { name: 'PER_APP', value: '1' }]);
  t.deepEqual(pm.annotations, [{ name: 'coreos.com/rkt/stage1/mutable', value: 'false' }]);
  t.deepEqual(pm.userLabels, { team: 'infra' });
});

test("rkt's run flags: per-app flags follow their image, -- starts its args, --- ends them", (t) => {
  const f = parseRunFlags(['--net=host', 'img1', '--exec', '/bin/x', '--', 'a', '--b', '---', 'img2', '--name=two', '--set-env=A=1', '--set-env', 'B=2']);
  t.deepEqual(f.apps, [
    { image: 'img1', exec: '/bin/x', args: ['a', '--b'], environment: {} },
    { image: 'img2', name: 'two', args: [], environment: {} },
  ]);
  t.deepEqual(f.flags.get('set-env'), ['A=1', 'B=2']);
  t.deepEqual(f.flags.get('net'), ['host']);
  t.throws(() => parseRunFlags(['--exec=/bin/x', 'img']), { message: '--exec must follow the image it applies to' });
  t.throws(() => parseRunFlags(['img', '--frobnicate']), { message: 'unknown flag --frobnicate (see podlog run --help)' });
  t.throws(() => parseRunFlags(['--', 'x']), { message: '"--" (app arguments) must follow an image' });
});
