/**
 * Every input podlog cannot take is refused before anything is created: exit 254, one line on
 * stderr naming the flag, and (through the real binary) no data dir, or at least no pod, after it.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { checkRunFlags } from '../../src/cli/run-flags.js';
import { PodlogError } from '../../src/errors.js';
import { checkPrepareConfig, DEFAULT_DNS_CONF_MODE, stage1InitArgs, stage1RunOptions, type PrepareConfig, type RunConfig } from '../../src/stage0/config.js';
import { generatePodManifest } from '../../src/stage0/pod-manifest.js';
import { stage1Image } from '../../src/stage0/stage1.js';
import { podlogBin } from '../stage0/podlog.js';
import { makeWorld } from './flag-arbitraries.js';

const world = makeWorld();
test.after.always(() => world.cleanup());
const image = world.image;
const file = (name: string, text: string): string => {
  writeFileSync(join(world.dir, name), text);
  return join(world.dir, name);
};
const stage1 = (kind: string) => join(world.dir, `stage1-${kind}`);

/** Runs bin/podlog on a data dir of its own; returns the result and what exists of the data dir after. */
const podlog = (args: string[]) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'podlog-refusal-')), 'data');
  try {
    const r = spawnSync(podlogBin, ['--dir', dir, ...args], { encoding: 'utf8', timeout: 60_000 });
    const pods = existsSync(join(dir, 'pods')) ? readdirSync(join(dir, 'pods')) : [];
    return { ...r, dataDirCreated: existsSync(dir), pods };
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
};

/** The refusal a user sees: 254 and one line, `podlog: ` and a message matching `message`. */
const refused = (t: ExecutionContext, args: string[], message: RegExp) => {
  const r = podlog(args);
  const what = args.join(' ');
  t.is(r.status, 254, `${what}: ${r.stderr}`);
  t.regex(r.stderr, /^podlog: [^\n]+\n$/, what);
  t.regex(r.stderr, message, what);
  t.deepEqual(r.pods, [], `${what}: no pod`);
  return r;
};

/** Refused before podlog even opens its data dir. */
const refusedUpFront = (t: ExecutionContext, args: string[], message: RegExp): void => {
  t.false(refused(t, args, message).dataDirCreated, `${args.join(' ')}: the data dir was created`);
};

test('malformed environment: --set-env, --set-env-file, --environment', (t) => {
  const noEquals = file('env-line2', 'A=1\nNOEQUALS\n');
  refusedUpFront(t, ['run', '--set-env=NOEQUALS', image], /--set-env: "NOEQUALS" is not NAME=VALUE/);
  refusedUpFront(t, ['run', '--set-env=1X=y', image], /--set-env: "1X" is not an environment variable name/);
  refusedUpFront(t, ['run', `--set-env-file=${join(world.dir, 'missing')}`, image], /--set-env-file: cannot read .*missing: ENOENT/);
  refusedUpFront(t, ['run', `--set-env-file=${world.dir}`, image], /--set-env-file: cannot read .*EISDIR/);
  refusedUpFront(t, ['prepare', `--set-env-file=${noEquals}`, image], /--set-env-file .*env-line2, line 2: "NOEQUALS" is not NAME=VALUE/);
  refusedUpFront(t, ['run', image, '--environment=A B=1'], /--environment: "A B" is not an environment variable name/);
});

test('a bad --stage1-path: no manifest, not JSON, an entrypoint missing, its binary missing or not executable', (t) => {
  refusedUpFront(t, ['run', `--stage1-path=${stage1('no-manifest')}`, image], /--stage1-path: cannot read the stage1 image manifest .*ENOENT/);
  refusedUpFront(t, ['run', `--stage1-path=${stage1('not-json')}`, image], /--stage1-path: cannot read the stage1 image manifest .*stage1-not-json\/manifest: .*JSON/);
  refusedUpFront(t, ['run', `--stage1-path=${stage1('no-gc')}`, image], /--stage1-path: the stage1 image manifest has no "coreos.com\/rkt\/stage1\/gc" entrypoint annotation/);
  refusedUpFront(t, ['prepare', `--stage1-path=${stage1('no-binary')}`, image], /--stage1-path: stage1 entrypoint .*rootfs\/stage1 \(coreos.com\/rkt\/stage1\/run\) does not exist$/m);
  refusedUpFront(t, ['run', `--stage1-path=${stage1('not-executable')}`, image], /--stage1-path: stage1 entrypoint .* is not executable/);
  refusedUpFront(t, ['run', '--stage1-path=', image], /--stage1-path cannot be empty/);
});

test('host names, networks and DNS: malformed or conflicting values', (t) => {
  for (const hostname of ['bad_host', '-x', 'a..b', 'x'.repeat(65), '']) {
    refusedUpFront(t, ['run', `--hostname=${hostname}`, image], /--hostname: ".*" is not a valid host name/);
  }
  refusedUpFront(t, ['run', '--dns=host', '--dns=none', image], /--dns=host must be the only --dns \(got --dns=host,none\)/);
  refusedUpFront(t, ['run', '--dns=none', '--dns-search=example.com', image], /--dns=none cannot be combined with DNS servers, --dns-search/);
  refusedUpFront(t, ['run', '--dns=resolver', image], /--dns: "resolver" is not an IP address, host, none or default/);
  refusedUpFront(t, ['run', '--net=host,none', image], /--net: "host" cannot be combined with other networks \(got host,none\)/);
  refusedUpFront(t, ['run', '--net=', image], /--net: a network name must not be empty/);
  refusedUpFront(t, ['run', `--local-config=${world.dir}`, '--net=cni-net', image], /network not found: cni-net \(no configuration in .*net\.d has this name\)/);
  refusedUpFront(t, ['run', '--net=lan:IP', image], /--net: network "lan": CNI arguments must be KEY=VALUE pairs/);
  refusedUpFront(t, ['prepare', '--port=http', image], /--port http: expected NAME:HOSTPORT or NAME:HOSTIP:HOSTPORT/);
  refusedUpFront(t, ['prepare', '--port=http:99999', image], /--port http:99999: "99999" is not a host port/);
  refusedUpFront(t, ['prepare', '--port=http:example:80', image], /--port http:example:80: "example" is not an IP address/);
  refusedUpFront(t, ['prepare', '--port=http:80', '--port=www:80', image], /--port www:80: host port 80 is published twice/);
  refusedUpFront(t, ['run', '--hosts-entry=host', '--hosts-entry=10.0.0.1=db', image], /--hosts-entry=host cannot be combined with IP=NAME entries/);
  refusedUpFront(t, ['run', '--hosts-entry=db=10.0.0.1', image], /--hosts-entry: "db" is not an IP address/);
  refusedUpFront(t, ['run', '--hosts-entry=10.0.0.1=db,bad_name', image], /--hosts-entry: "bad_name" is not a DNS name/);
  refusedUpFront(t, ['run', '--dns-search=a..b', image], /--dns-search: "a..b" is not a DNS name/);
  refusedUpFront(t, ['run-prepared', '--dns-domain=x\nnameserver 6.6.6.6', '0123abcd'], /--dns-domain: "x\\nnameserver 6.6.6.6" is not a DNS name/);
  refusedUpFront(t, ['run', '--dns-opt=ndots 2', image], /--dns-opt: "ndots 2" is not a resolv.conf option/);
  refusedUpFront(t, ['run', '--dns=host', '--dns-opt=rotate', image], /--dns=host cannot be combined with DNS servers, --dns-search, --dns-opt or --dns-domain/);
});

test('flags that do nothing yet, or cannot work together, are refused by name', (t) => {
  // rkt's prepare takes --quiet (prepare prints only the UUID anyway); its run has no such flag.
  refusedUpFront(t, ['run', '--quiet', image], /run: --quiet is a flag of prepare, not of run/);
  refusedUpFront(t, ['run', '--insecure-options=ondisk', image], /--insecure-options=ondisk is not supported yet by podlog/);
  refusedUpFront(t, ['prepare', '--insecure-options=none,pubkey', image], /--insecure-options=pubkey is not supported yet by podlog/);
  refusedUpFront(t, ['run', '--insecure-options=bogus', image], /--insecure-options: unknown option "bogus"/);
  refusedUpFront(t, ['run', '--mds-register', '--net=host', image], /--mds-register needs a pod network: not --net=host/);
  refusedUpFront(t, ['run', '--mds-register', '--net=none', image], /--mds-register needs a pod network: not --net=none/);
});

test('volumes and mounts: malformed, unknown or duplicate, refused naming the flag before the data dir exists', (t) => {
  refusedUpFront(t, ['run', '--volume=data,kind=host', image], /^podlog: --volume data,kind=host: source for host volume cannot be empty$/m);
  refusedUpFront(t, ['prepare', `--volume=data,kind=host,source=${join(world.dir, 'missing')}`, image], /--volume data,kind=host,source=.*missing: source .*missing cannot be used: ENOENT/);
  refusedUpFront(t, ['run', '--volume=data,kind=empty', '--volume=data,kind=empty,mode=0700', image], /--volume data,kind=empty,mode=0700: duplicate volume name data/);
  refusedUpFront(t, ['run', '--mount=volume=nope,target=/x', image], /^podlog: --mount volume=nope,target=\/x: could not find volume nope$/m);
  refusedUpFront(t, ['run', '--volume=d,kind=empty', image, '--mount=volume=d,target=/x', '--mount', 'volume=d,target=/x/'], /--mount volume=d,target=\/x\/: another mount already targets \/x/);
  refusedUpFront(t, ['run', '--volume=d,kind=empty', '--mount=volume=d,target=/a/../etc', image], /--mount volume=d,target=\/a\/\.\.\/etc: target \/a\/\.\.\/etc has a "\.\." component/);
});

test('--volume and --mount in process: appc\'s checks and rkt\'s words', (t) => {
  const refusals: Array<[string[], RegExp]> = [
    [['--volume=data'], /--volume data: unrecognized volume type: should be one of "empty", "host"/],
    [['--volume=data,kind=tmpfs'], /unrecognized volume type/],
    [['--volume=data,kind=host,source=rel'], /--volume data,kind=host,source=rel: source for host volume must be absolute path/],
    [['--volume=data,kind=empty,source=/tmp'], /source for empty volume must be empty/],
    [['--volume=data,kind=host,source=/tmp,mode=0755'], /mode for host volume cannot be set/],
    [['--volume=data,kind=host,source=/tmp,uid=0'], /uid for host volume cannot be set/],
    [['--volume=data,kind=empty,mode=999'], /mode "999" is not an octal file mode/],
    [['--volume=data,kind=empty,mode=17777'], /mode "17777" is not an octal file mode/],
    [['--volume=data,kind=empty,uid=-1'], /uid=-1 is not a number/],
    [['--volume=data,kind=empty,gid=4294967295'], /gid 4294967295 is not a user or group id/],
    [['--volume=Data,kind=empty'], /invalid volume name "Data"/],
    [['--volume=,kind=empty'], /--volume ,kind=empty: name must be set/],
    [['--volume=data,kind=host,source=/tmp,readOnly=maybe'], /readOnly=maybe is not true or false/],
    [['--volume=data,kind=empty,size=1'], /unknown volume parameter "size"/],
    [['--volume=data,kind=empty,name=x'], /unknown volume parameter "name"/],
    [['--volume=data,kind=empty,kind=host'], /label kind with multiple values/],
    [['--volume=data,kind'], /"kind" is not KEY=VALUE/],
    [['--volume=d,kind=empty', '--mount=volume=d'], /--mount volume=d: target must be set/],
    [['--mount=target=/x'], /invalid volume name "" in --mount flag/],
    [['--volume=d,kind=empty', '--mount=volume=d,target=x'], /target "x" is not an absolute path/],
    [['--volume=d,kind=empty', '--mount=volume=d,target=/./'], /target cannot be the app's root/],
    [['--volume=d,kind=empty', '--mount=volume=d,target=/x,readOnly=true'], /unknown mount parameter "readOnly" \(volume, target\)/],
    [['--volume=d,kind=empty', '--mount=volume=d,target=/x', '--mount=volume=d,target=//x/.'], /another mount already targets \/x/],
  ];
  for (const [flags, message] of refusals) t.throws(() => checkRunFlags([...flags, image], 'prepare'), { instanceOf: PodlogError, message }, flags.join(' '));
  // Go's ParseBool spellings, and a pod-wide and a per-app mount on one path (the app's wins).
  const ok = checkRunFlags(['--volume=d,kind=host,source=/tmp,readOnly=T,recursive=0', '--mount=volume=d,target=/x', image, '--mount=volume=d,target=/x/'], 'run');
  t.deepEqual(ok.cfg.apps[0]!.mounts, ['volume=d,target=/x/']);
  t.deepEqual(ok.cfg.mounts, ['volume=d,target=/x']);
});

test('apps, labels and the UUID file: malformed values', (t) => {
  refusedUpFront(t, ['run', ''], /an image name cannot be empty/);
  refusedUpFront(t, ['run', image, '--name', 'a', image, '--name', 'a'], /--name: multiple apps with name a/);
  refusedUpFront(t, ['run', image, '--name=Bad_Name'], /--name: invalid app name format: "Bad_Name"/);
  refusedUpFront(t, ['run', image, '--exec='], /--exec cannot be empty/);
  refusedUpFront(t, ['run', image, '--working-dir=tmp'], /--working-dir: "tmp" is not an absolute path/);
  refusedUpFront(t, ['run', '--user-label=team', image], /--user-label: "team" is not NAME=VALUE/);
  refusedUpFront(t, ['run', '--user-annotation==v', image], /--user-annotation: "=v" is not NAME=VALUE/);
  refusedUpFront(t, ['run', `--uuid-file-save=${join(world.dir, 'no-such-dir', 'uuid')}`, image], /--uuid-file-save: cannot write ".*no-such-dir\/uuid": ENOENT/);
  refusedUpFront(t, ['prepare', `--uuid-file-save=${world.dir}`, image], /--uuid-file-save: cannot write ".*": it is a directory/);
});

test('the grammar: a flag of another verb, a lone ---, a short flag, --dir without a value', (t) => {
  refusedUpFront(t, ['prepare', '--net=host', image], /prepare: --net is a flag of run and run-prepared, not of prepare/);
  refusedUpFront(t, ['run-prepared', '--set-env=A=1', '0123abcd'], /run-prepared: --set-env is a flag of run and prepare, not of run-prepared/);
  refusedUpFront(t, ['run-prepared', '0123abcd', '--', 'x'], /run-prepared takes no app arguments/);
  refusedUpFront(t, ['run', image, '---'], /"---" ends the arguments an app was given after "--"/);
  refusedUpFront(t, ['run', image, '-x'], /unknown flag -x/);
  refusedUpFront(t, ['run', image, '--dir'], /--dir needs a value/);
  refusedUpFront(t, ['gc', 'junk'], /gc takes no arguments \(got junk\)/);
  refusedUpFront(t, ['gc', '--grace-period=1e5'], /--grace-period: invalid duration "1e5"/);
  refusedUpFront(t, ['stop', '--bogus', '0123'], /stop: unknown flag --bogus \(see podlog stop --help\)/);
});

test('an empty UUID is refused by run-prepared, enter, stop, rm and status, and no pod exists after', (t) => {
  for (const verb of ['run-prepared', 'enter', 'stop', 'rm', 'status']) refused(t, [verb, ''], /UUID cannot be empty/);
});

test('-h and the global flags among an app\'s arguments are the app\'s; before them they are podlog\'s', (t) => {
  const r = podlog(['run', image, '--exec', '/bin/sh', '--', '-c', 'echo "$0 $*"; exit 3', '-h', '--dir', 'x', '--debug']);
  t.is(r.status, 3, r.stderr);
  t.is(r.stdout, '-h --dir x --debug\n');
  const help = podlog(['run', image, '-h', '--', '-c', 'exit 3']);
  t.is(help.status, 0, help.stderr);
  t.regex(help.stdout, /^Usage: podlog run /);
  t.false(help.dataDirCreated);
});

// In process: the checks themselves.

const runConfig = (over: Partial<RunConfig> = {}): RunConfig => ({
  mutable: false,
  net: ['none'],
  interactive: false,
  mdsRegister: false,
  dnsConfMode: DEFAULT_DNS_CONF_MODE,
  dnsConfig: { servers: [], searches: [], options: [] },
  insecureOptions: { disableCapabilities: false, disablePaths: false, disableSeccomp: false },
  hostsEntries: {},
  ...over,
});

test('host names: DNS labels of letters, digits and inner dashes, at most 64 bytes in all', (t) => {
  for (const hostname of ['a', 'pod-1', 'a.b.c', 'X9', 'x'.repeat(63), `${'x'.repeat(31)}.${'y'.repeat(32)}`]) {
    t.notThrows(() => stage1RunOptions(runConfig({ hostname })), hostname);
  }
  for (const hostname of ['', '.', 'a.', '.a', '-a', 'a-', 'a_b', 'a b', 'é', 'x'.repeat(64) + 'y', `${'x'.repeat(32)}.${'y'.repeat(32)}`]) {
    t.throws(() => stage1RunOptions(runConfig({ hostname })), { instanceOf: PodlogError, message: /^--hostname: / }, hostname);
  }
  t.deepEqual(stage1RunOptions(runConfig({ net: ['host'], dnsConfMode: { resolv: 'none', hosts: 'default' } })), { net: 'host', dns: 'none', hosts: 'default' });
});

test('stage1 flags from a recorded start: the values only in the modes that use them, old records as the default', (t) => {
  const options = stage1RunOptions(runConfig({
    dnsConfMode: { resolv: 'stage0', hosts: 'stage0' },
    dnsConfig: { servers: ['192.0.2.1'], searches: ['a.example'], options: ['ndots:2'], domain: 'example.org' },
    hostsEntries: { '192.0.2.9': ['db', 'db.lan'] },
  }));
  t.deepEqual(stage1InitArgs({ ...options, hostname: 'h' }), [
    '--hostname', 'h', '--net', 'none', '--dns-server', '192.0.2.1', '--dns-search', 'a.example', '--dns-opt', 'ndots:2',
    '--dns-domain', 'example.org', '--hosts-entry', '192.0.2.9=db,db.lan',
  ]);
  t.deepEqual(stage1RunOptions(runConfig({ dnsConfMode: { resolv: 'stage0', hosts: 'stage0' } })), { net: 'none', dns: 'default', hosts: 'default' }, 'nothing to write is the default');
  t.is(stage1RunOptions(runConfig({ net: ['default'] })).net, 'netns', 'a CNI network: stage1 joins the namespace its networks are attached to');
  t.deepEqual(stage1InitArgs({ hostname: 'h', net: 'host', dns: 'host' }), ['--hostname', 'h', '--net', 'host', '--dns', 'host']);
  t.deepEqual(stage1InitArgs({ ...stage1RunOptions(runConfig({ dnsConfMode: { resolv: 'default', hosts: 'host' } })), hostname: 'h' }), ['--hostname', 'h', '--net', 'none', '--dns', 'default', '--hosts', 'host']);
});

const prepareConfig = (over: Partial<PrepareConfig> = {}): PrepareConfig => ({
  mutable: false,
  apps: [{ image: 'img', args: [], environment: {} }],
  inheritEnv: false,
  explicitEnv: [],
  envFromFile: [],
  ports: [],
  volumes: [],
  mounts: [],
  useOverlay: true,
  privateUsers: false,
  userAnnotations: {},
  userLabels: {},
  ...over,
});

test('checkPrepareConfig reads the env files: their entries come before --set-env, and the manifest reads no file', (t) => {
  const env = file('env-order', '# comment\nA=from-file\n\nB=from-file\n');
  const checked = checkPrepareConfig(prepareConfig({ envFromFile: [env], explicitEnv: ['B=set-env'] }));
  t.deepEqual(checked.explicitEnv, ['A=from-file', 'B=from-file', 'B=set-env']);
  t.deepEqual(checked.envFromFile, []);
  t.deepEqual(checkPrepareConfig(checked), checked, 'a checked config checks again unchanged');
  const manifest = { acKind: 'ImageManifest', acVersion: '0.8.11', name: 'img', app: { exec: ['/bin/true'], user: '0', group: '0' } };
  const apps = [{ config: checked.apps[0]!, name: 'img', imageId: 'sha512-0', manifest } as Parameters<typeof generatePodManifest>[0][number]];
  t.deepEqual(generatePodManifest(apps, checked).apps[0]!.app.environment, [{ name: 'A', value: 'from-file' }, { name: 'B', value: 'set-env' }]);
  t.throws(() => generatePodManifest(apps, prepareConfig({ envFromFile: [env] })), { message: /takes a checked config/ });
});

test("the pod manifest's mounts: MergeMounts (an app's over the pod's over the image's), implicit volumes, image mount points checked", (t) => {
  const cfg = checkPrepareConfig(prepareConfig({
    volumes: ['a,kind=host,source=/tmp', 'b,kind=empty,mode=0700,uid=7'],
    mounts: ['volume=a,target=/x', 'volume=a,target=/y'],
    apps: [{ image: 'img', args: [], environment: {}, mounts: ['volume=b,target=/x/'] }],
  }));
  const manifest = (mountPoints: unknown[]) => ({ acKind: 'ImageManifest', acVersion: '0.8.11', name: 'img', app: { exec: ['/bin/true'], user: '0', group: '0', mountPoints } });
  const apps = (mountPoints: unknown[]) => [{ config: cfg.apps[0]!, name: 'web', imageId: 'sha512-0', manifest: manifest(mountPoints) } as Parameters<typeof generatePodManifest>[0][number]];
  const pm = generatePodManifest(apps([{ name: 'a', path: '/y' }, { name: 'logs', path: '/var/log', readOnly: true }, { name: 'b', path: '/b' }]), cfg);
  t.deepEqual(pm.apps[0]!.mounts, [
    { volume: 'b', path: '/x/' },
    { volume: 'a', path: '/y' },
    { volume: 'web-logs', path: '/var/log' },
    { volume: 'b', path: '/b' },
  ]);
  t.deepEqual(pm.volumes, [
    { name: 'a', kind: 'host', source: '/tmp' },
    { name: 'b', kind: 'empty', mode: '0700', uid: 7, gid: 0 },
    { name: 'web-logs', kind: 'empty', mode: '0755', uid: 0, gid: 0, readOnly: true },
  ]);
  t.throws(() => generatePodManifest(apps([{ name: 'up', path: '/a/../../etc' }]), cfg), { instanceOf: PodlogError, message: /image img: mount point up: target \/a\/\.\.\/\.\.\/etc has a "\.\." component/ });
});

test('stage1Image keeps an absolute path, whatever directory the verb ran from', (t) => {
  const before = process.cwd();
  process.chdir(world.dir);
  try {
    t.is(stage1Image('stage1-good').rootfs, join(world.dir, 'stage1-good', 'rootfs'));
  } finally {
    process.chdir(before);
  }
});

test('main: -h and --help count before "--" only', async (t) => {
  const writes: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => writes.push(s) > 0) as typeof process.stdout.write;
  try {
    t.is(await main(['--dir', join(world.dir, 'data'), 'run', image, '--help']), 0);
  } finally {
    process.stdout.write = write;
  }
  t.regex(writes.join(''), /^Usage: podlog run /);
  t.false(existsSync(join(world.dir, 'data')));
  const e = await t.throwsAsync(main(['--dir', join(world.dir, 'data'), 'enter', '--', 'pod', '-h']), { instanceOf: PodlogError });
  t.regex(e.message, /no matches found for "pod"/);
});
