/**
 * How podlog runs a CNI configuration list, seen from the plugins' side (fake plugins that record
 * each call): the spec's environment and nothing else, the list's name and cniVersion injected,
 * prevResult chained on ADD and given back on DEL and CHECK, runtimeConfig only for declared
 * capabilities, plugin errors carried whole, a failed ADD undone, and unknown plugins refused before
 * anything runs.
 */
import test, { type ExecutionContext } from 'ava';
import { addNetwork, checkNetwork, delNetwork, type Attachment } from '../../src/net/cni.js';
import type { NetworkConfigList } from '../../src/net/config.js';
import { CniPluginError } from '../../src/net/exec.js';
import { refusal } from '../helpers/refusal.js';
import { fakePlugins, type FakePlugins } from './fake-plugins.js';

const UUID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';

/** A test body given fake plugins of its own (removed after) and an attachment that finds them first. */
const withPlugins = (body: (t: ExecutionContext, fake: FakePlugins, att: Attachment) => Promise<void>) => async (t: ExecutionContext) => {
  const fake = fakePlugins();
  try {
    await body(t, fake, { containerId: UUID, netns: '/proc/4242/ns/net', ifName: 'eth1', args: 'IP=10.0.0.7;X=y', pluginDirs: [fake.dir, '/nonexistent'] });
  } finally {
    fake.remove();
  }
};

const list = (plugins: NetworkConfigList['plugins'], cniVersion = '1.0.0'): NetworkConfigList => ({ name: 'mynet', cniVersion, disableCheck: false, plugins });

const result = (n: number) => JSON.stringify({ cniVersion: '1.0.0', ips: [{ address: `10.0.0.${n}/24` }] });

test('ADD runs the plugins in order with the spec environment, name and cniVersion injected and each previous result as prevResult', withPlugins(async (t, fake, att) => {
  fake.plugin('first', { add: result(1) });
  fake.plugin('second', { add: result(2) });
  const got = await addNetwork(list([{ type: 'first', name: 'ignored', cniVersion: '0.1.0', x: 1 }, { type: 'second' }]), att);
  t.deepEqual(got, JSON.parse(result(2)), "the last plugin's result");
  const calls = fake.calls();
  t.deepEqual(calls.map((c) => `${c.command} ${c.plugin}`), ['ADD first', 'ADD second']);
  t.deepEqual(calls[0]!.env, {
    CNI_COMMAND: 'ADD', CNI_CONTAINERID: UUID, CNI_NETNS: '/proc/4242/ns/net', CNI_IFNAME: 'eth1',
    CNI_ARGS: 'IP=10.0.0.7;X=y', CNI_PATH: `${fake.dir}:/nonexistent`, PATH: process.env.PATH,
  }, 'exactly the spec variables and PATH');
  t.deepEqual(calls[0]!.stdin, { type: 'first', name: 'mynet', cniVersion: '1.0.0', x: 1 }, "the list's name and version win; no prevResult for the first");
  t.deepEqual(calls[1]!.stdin, { type: 'second', name: 'mynet', cniVersion: '1.0.0', prevResult: JSON.parse(result(1)) });
}));

test('runtimeConfig carries only the capabilities a plugin declares, and only those the caller gave', withPlugins(async (t, fake, att) => {
  fake.plugin('main', { add: result(1) });
  fake.plugin('portmap', { add: result(1) });
  const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }];
  await addNetwork(
    list([{ type: 'main' }, { type: 'portmap', capabilities: { portMappings: true, bandwidth: true, ips: false } }]),
    { ...att, capabilityArgs: { portMappings, bandwidth: { ingressRate: 1 }, ips: ['10.0.0.9'], other: 1 } },
  );
  const [main, portmap] = fake.calls();
  t.false('runtimeConfig' in main!.stdin, 'a plugin that declares nothing gets none');
  t.deepEqual(portmap!.stdin.runtimeConfig, { portMappings, bandwidth: { ingressRate: 1 } });
}));

test('DEL runs the plugins in reverse with the ADD result; CHECK runs them in order with it; both are as idempotent as the plugins', withPlugins(async (t, fake, att) => {
  fake.plugin('first', { add: result(1) });
  fake.plugin('second', { add: result(2) });
  const l = list([{ type: 'first' }, { type: 'second' }]);
  const added = await addNetwork(l, att);
  await checkNetwork(l, att, added);
  await delNetwork(l, att, added);
  await delNetwork(l, att);
  const calls = fake.calls().slice(2);
  t.deepEqual(calls.map((c) => `${c.command} ${c.plugin}`), ['CHECK first', 'CHECK second', 'DEL second', 'DEL first', 'DEL second', 'DEL first']);
  t.true(calls.slice(0, 4).every((c) => JSON.stringify(c.stdin.prevResult) === JSON.stringify(added)), 'CHECK and DEL get the ADD result');
  t.true(calls.slice(4).every((c) => !('prevResult' in c.stdin)), 'a DEL without a known ADD result passes none');
  t.true(calls.every((c) => c.env.CNI_IFNAME === 'eth1' && c.env.CNI_ARGS === 'IP=10.0.0.7;X=y'), 'the same parameters as the ADD');
}));

test('CHECK is refused below spec 0.4.0 and skipped with disableCheck; DEL below 0.4.0 gets no prevResult', withPlugins(async (t, fake, att) => {
  fake.plugin('old', { add: '{"cniVersion":"0.3.1"}' });
  const old = list([{ type: 'old' }], '0.3.1');
  const added = await addNetwork(old, att);
  const e = await refusal(checkNetwork(old, att, added));
  t.is(e.code, 'ENOTSUP');
  t.regex(e.message, /cniVersion 0\.3\.1: CNI's CHECK needs 0\.4\.0/);
  await delNetwork(old, att, added);
  await checkNetwork({ ...list([{ type: 'old' }]), disableCheck: true }, att, added);
  t.deepEqual(fake.calls().map((c) => c.command), ['ADD', 'DEL'], 'no CHECK ran');
  t.false('prevResult' in fake.calls()[1]!.stdin);
}));

test("a failing plugin's CNI error is the error (msg, details, code); the plugins run so far and the failed one are DELeted in reverse, the rest never run", withPlugins(async (t, fake, att) => {
  fake.plugin('first', { add: result(1) });
  fake.plugin('second', { add: result(2) });
  fake.plugin('broken', { fail: { only: 'ADD', status: 1, stdout: '{"cniVersion":"1.0.0","code":7,"msg":"bad subnet","details":"10.0.0.0/33"}' } });
  fake.plugin('after', { add: result(4) });
  const e = await refusal(addNetwork(list([{ type: 'first' }, { type: 'second' }, { type: 'broken' }, { type: 'after' }]), att));
  t.true(e instanceof CniPluginError);
  t.is(e.code, 'ENET_PLUGIN');
  t.is(e.exitCode, 254);
  t.is(e.message, 'network "mynet": CNI plugin broken (ADD) failed: bad subnet; 10.0.0.0/33 (CNI error code 7)');
  t.like(e as CniPluginError, { cniCode: 7, msg: 'bad subnet', details: '10.0.0.0/33' });
  const calls = fake.calls();
  t.deepEqual(calls.map((c) => `${c.command} ${c.plugin}`), ['ADD first', 'ADD second', 'ADD broken', 'DEL broken', 'DEL second', 'DEL first']);
  t.true(calls.slice(3).every((c) => JSON.stringify(c.stdin.prevResult) === result(2)), 'the undo is given the last result there was');
}));

test('a plugin that exits non-zero without a CNI error, prints a result that is not JSON, is killed or hangs: each is a clear error, and the ADD is undone', withPlugins(async (t, fake, att) => {
  fake.plugin('crash', { fail: { only: 'ADD', status: 2, stdout: 'panic: nil map', stderr: 'goroutine 1 [running]' } });
  fake.plugin('garbage', { add: 'this is not JSON' });
  fake.plugin('hang', { sleep: 30 });
  const crash = await refusal(addNetwork(list([{ type: 'crash' }]), att));
  t.is(crash.message, 'network "mynet": CNI plugin crash (ADD) exited with status 2 without a CNI error (stdout: panic: nil map; stderr: goroutine 1 [running])');
  const garbage = await refusal(addNetwork(list([{ type: 'garbage' }]), att));
  t.is(garbage.code, 'ENET_PLUGIN_OUTPUT');
  t.is(garbage.message, 'network "mynet": CNI plugin garbage (ADD) succeeded but printed a result that is not a JSON object: "this is not JSON"');
  const started = Date.now();
  const hang = await refusal(addNetwork(list([{ type: 'hang' }]), { ...att, timeoutMs: 300 }));
  t.true(Date.now() - started < 5000, 'killed at its timeout, and its DEL too');
  t.regex(hang.message, /^network "mynet": CNI plugin hang \(ADD\) did not finish within 0\.3 s and was killed; undoing the plugins that ran failed too: .*hang \(DEL\) did not finish/);
  t.deepEqual(fake.calls().map((c) => `${c.command} ${c.plugin}`), ['ADD crash', 'DEL crash', 'ADD garbage', 'DEL garbage', 'ADD hang', 'DEL hang']);
}));

test('an unknown plugin type is refused before any plugin runs, naming every directory searched and the Debian package', withPlugins(async (t, fake, att) => {
  fake.plugin('first', { add: result(1) });
  const e = await refusal(addNetwork(list([{ type: 'first' }, { type: 'nosuchplugin' }]), att));
  t.is(e.code, 'ENET_PLUGIN_NOT_FOUND');
  t.is(e.message, `CNI plugin "nosuchplugin" not found in ${fake.dir}, /nonexistent: install the Debian package containernetworking-plugins, or name a directory that has it with --net-plugins-dir`);
  const del = await refusal(delNetwork(list([{ type: 'nosuchplugin' }]), att));
  t.is(del.code, 'ENET_PLUGIN_NOT_FOUND', 'DEL cannot run without its plugins either');
  t.deepEqual(fake.calls(), []);
}));

test('a container id or interface name the spec forbids is refused', withPlugins(async (t, fake, att) => {
  fake.plugin('first', { add: result(1) });
  for (const bad of [{ containerId: '-x' }, { containerId: '' }, { ifName: 'eth0/x' }, { ifName: 'a-very-long-ifname' }, { ifName: '..' }]) {
    const e = await refusal(addNetwork(list([{ type: 'first' }]), { ...att, ...bad }));
    t.is(e.code, 'EUSAGE', JSON.stringify(bad));
  }
  t.deepEqual(fake.calls(), []);
}));
