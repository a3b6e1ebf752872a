/**
 * rkt's network selection: `--net` values as common.NetList reads them, and the networks a pod then
 * joins as rkt's stage1 loads them (net.d in file-name order, the first of a name winning, the
 * built-in default or default-restricted last, eth0, eth1, ... in that order), with host-local's
 * leases kept under the caller's directory.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNetworkConfig } from '../../src/net/config.js';
import { parseNetFlags } from '../../src/net/netlist.js';
import { DEFAULT_NETWORK, DEFAULT_RESTRICTED_NETWORK, planNetworks, type NetworkPlan } from '../../src/net/networks.js';
import { isPluginType } from '../../src/net/plugins.js';

const work = mkdtempSync(join(tmpdir(), 'podlog-net-plan-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

let configs = 0;
/** A local-config dir whose net.d holds `files`. */
const localConfig = (files: Record<string, unknown>): string => {
  const dir = join(work, `etc-${configs++}`);
  mkdirSync(join(dir, 'net.d'), { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, 'net.d', name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
};

const cniDataDir = '/var/lib/podlog/cni';
const plan = (flags: string[], files: Record<string, unknown> = {}): NetworkPlan => planNetworks(parseNetFlags(flags), { localConfig: localConfig(files), cniDataDir });
const brief = (p: NetworkPlan) => p.networks.map((n) => `${n.ifName}=${n.name}${n.args === '' ? '' : `:${n.args}`}`);

const bridge = (name: string, subnet: string) => ({ cniVersion: '1.0.0', name, type: 'bridge', ipam: { type: 'host-local', subnet } });

test('--net values: lists, arguments, the special names, and the mistakes rkt refuses', (t) => {
  t.deepEqual(parseNetFlags([]), { mode: 'contained', all: false, nets: new Map([['default', '']]) }, 'no flag: default');
  t.deepEqual(parseNetFlags(['host']), { mode: 'host' });
  t.deepEqual(parseNetFlags(['none']), { mode: 'none' });
  t.deepEqual(parseNetFlags(['a,b:IP=10.1.0.7;IgnoreUnknown=1', 'default']), {
    mode: 'contained', all: false, nets: new Map([['a', ''], ['b', 'IP=10.1.0.7;IgnoreUnknown=1'], ['default', '']]),
  }, 'every flag adds to one list');
  t.deepEqual(parseNetFlags(['all,a:K=v']), { mode: 'contained', all: true, nets: new Map([['a', 'K=v']]) });
  const refused: Array<[string[], RegExp]> = [
    [[''], /^--net: a network name must not be empty$/],
    [['a,,b'], /must not be empty/],
    [['a', 'a:IP=1.2.3.4'], /^--net: network "a" is named twice$/],
    [['a:IP=1:2'], /more than one ':'/],
    [['host:x=y'], /"host" takes no arguments/],
    [['all:x=y'], /"all" takes no arguments/],
    [['a:novalue'], /KEY=VALUE pairs joined by ';'/],
    [['a:K=v;'], /KEY=VALUE/],
    [['host,default'], /^--net: "host" cannot be combined with other networks \(got host,default\)$/],
    [['none', 'a'], /"none" cannot be combined/],
  ];
  for (const [flags, message] of refused) {
    const e = t.throws(() => parseNetFlags(flags), undefined, flags.join(' '));
    t.like(e, { code: 'EUSAGE' });
    t.regex(e!.message, message);
  }
});

test("default: rkt's ptp network, masqueraded, 172.16.28.0/24 with a default route; host-local leases under the caller's directory", (t) => {
  const p = plan([]);
  t.is(p.mode, 'contained');
  t.deepEqual(brief(p), ['eth0=default']);
  t.deepEqual(p.networks[0]!.config, {
    name: 'default', cniVersion: '0.4.0', disableCheck: false,
    plugins: [{ type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '172.16.28.0/24', routes: [{ dst: '0.0.0.0/0' }], dataDir: '/var/lib/podlog/cni/networks' } }],
  });
  t.is(p.networks[0]!.source, 'built-in');
  t.false('dataDir' in (DEFAULT_NETWORK.plugins[0]!.ipam as object), 'the built-in itself is not changed');
  t.deepEqual(plan(['host']), { mode: 'host', networks: [], warnings: [] });
  t.deepEqual(plan(['none'], { '10-a.conf': bridge('a', '10.1.0.0/24') }), { mode: 'none', networks: [], warnings: [] });
});

test('named networks: net.d in file-name order, default-restricted added last when default is not asked for, CNI_ARGS per network', (t) => {
  const files = {
    '20-b.conflist': { cniVersion: '1.0.0', name: 'b', plugins: [{ type: 'bridge', ipam: { type: 'host-local', subnet: '10.2.0.0/24' } }, { type: 'portmap', capabilities: { portMappings: true } }] },
    '10-a.conf': bridge('a', '10.1.0.0/24'),
    '30-c.conf': bridge('c', '10.3.0.0/24'),
    'README': 'not a configuration',
    'x.json': 'not one either',
  };
  const p = plan(['b,a:IP=10.1.0.9'], files);
  t.deepEqual(brief(p), ['eth0=a:IP=10.1.0.9', 'eth1=b', 'eth2=default-restricted'], "the files' order, not the flag's, as in rkt");
  t.like(p.networks[2]!.config.plugins[0], { type: 'ptp', ipMasq: false, ipam: { subnet: '172.31.0.0/16' } });
  t.false('routes' in (DEFAULT_RESTRICTED_NETWORK.plugins[0]!.ipam as object), 'default-restricted has no default route');
  t.deepEqual(p.networks[1]!.config.plugins[1], { type: 'portmap', capabilities: { portMappings: true } }, 'a plugin without IPAM is as written');
  t.deepEqual(brief(plan(['default,c,a'], files)), ['eth0=a', 'eth1=c', 'eth2=default']);
  t.deepEqual(brief(plan(['all'], files)), ['eth0=a', 'eth1=b', 'eth2=c', 'eth3=default'], 'all: every network and default');
  t.deepEqual(brief(plan(['default-restricted'])), ['eth0=default-restricted']);
  const e = t.throws(() => plan(['a,nope,zilch'], files));
  t.like(e, { code: 'ENET_NOT_FOUND' });
  t.regex(e!.message, /^networks not found: nope, zilch \(no configuration in .*\/net\.d has these names\)$/);
});

test('a file named like a built-in replaces it; of two files with one name the first wins; both are said', (t) => {
  const files = {
    '50-mydefault.conf': { ...bridge('default', '10.9.0.0/24'), ipam: { type: 'host-local', subnet: '10.9.0.0/24', dataDir: '/var/lib/cni/networks' } },
    '10-x.conf': bridge('x', '10.1.0.0/24'),
    '20-x.conf': bridge('x', '10.2.0.0/24'),
  };
  const p = plan(['default,x'], files);
  t.deepEqual(brief(p), ['eth0=x', 'eth1=default'], 'no built-in added');
  t.deepEqual(p.networks.map((n) => (n.config.plugins[0]!.ipam as { subnet: string; dataDir: string })), [
    { type: 'host-local', subnet: '10.1.0.0/24', dataDir: '/var/lib/podlog/cni/networks' },
    { type: 'host-local', subnet: '10.9.0.0/24', dataDir: '/var/lib/podlog/cni/networks' },
  ], "the first x; host-local's dataDir is podlog's even when a file names another");
  const dir = join(work, `etc-${configs - 1}`, 'net.d');
  t.deepEqual(p.warnings, [`network "x" is already defined by ${dir}/10-x.conf; ignoring ${dir}/20-x.conf`, `overriding the "default" network with ${dir}/50-mydefault.conf`]);
  t.deepEqual(brief(plan(['x'], { '10-x.conf': bridge('x', '10.1.0.0/24'), '90-r.conf': bridge('default-restricted', '10.8.0.0/24') })), ['eth0=x', 'eth1=default-restricted']);
});

test('a net.d file with bad JSON, no name, no type or a type that is a path is refused by its path, even when not asked for', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['{"name": "a", "type": "bridge",', /: not valid JSON \(/],
    ['[1, 2]', /: not a JSON object$/],
    [{ type: 'bridge' }, /: the network has no "name"$/],
    [{ name: 'a b', type: 'bridge' }, /network name "a b" must start with a letter or digit/],
    [{ name: 'a' }, /: the network has no "type"/],
    [{ name: 'a', type: '../../bin/sh' }, /: the network has type "\.\.\/\.\.\/bin\/sh", which is not a plugin name$/],
    [{ name: 'a', cniVersion: 1, type: 'bridge' }, /"cniVersion" must be a version such as "1\.0\.0", not 1$/],
    [{ name: 'a', plugins: [] }, /"plugins" must be a non-empty list/],
    [{ name: 'a', plugins: [{ type: 'bridge' }, 'x'] }, /: plugin 2 is not a JSON object$/],
    [{ name: 'a', disableCheck: 'yes', plugins: [{ type: 'bridge' }] }, /"disableCheck" must be true or false/],
  ];
  for (const [content, message] of cases) {
    const e = t.throws(() => plan(['other'], { '10-other.conf': bridge('other', '10.1.0.0/24'), '50-bad.conflist': content }));
    t.like(e, { code: 'ENET_CONFIG' });
    t.regex(e!.message, /\/net\.d\/50-bad\.conflist: /);
    t.regex(e!.message, message);
  }
});

test('a .conf is a list of one; a configuration without cniVersion is 0.1.0, as plugins read it', (t) => {
  t.deepEqual(parseNetworkConfig('{"name":"n","type":"ptp","ipMasq":true}', 'x'), { name: 'n', cniVersion: '0.1.0', disableCheck: false, plugins: [{ name: 'n', type: 'ptp', ipMasq: true }] });
  t.deepEqual(parseNetworkConfig('{"name":"n","cniVersion":"0.4.0","disableCheck":true,"plugins":[{"type":"a"},{"type":"b"}]}', 'x'), {
    name: 'n', cniVersion: '0.4.0', disableCheck: true, plugins: [{ type: 'a' }, { type: 'b' }],
  });
  t.true(isPluginType('host-local'));
  for (const bad of ['', '.', '..', 'a/b', '/bin/sh', '-x']) t.false(isPluginType(bad), bad);
});
