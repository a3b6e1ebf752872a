/**
 * Real pods attached by the reference CNI plugins (containernetworking-plugins, /usr/lib/cni), each
 * test in a network namespace of its own that plays the host (test/helpers/netns.ts): rkt's default
 * network gives addresses, routes and reachability, and DEL takes back the veth, the lease and the nat
 * rules, also twice and after the pod died; a plugin that fails leaves nothing attached; a named
 * bridge network takes a static address from CNI_ARGS; portmap publishes a pod's port from the
 * mapping podlog passes it as runtimeConfig.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inNetns } from '../helpers/netns.js';
import type * as Scenarios from './scenarios.js';

const scenarios = join(fileURLToPath(new URL('.', import.meta.url)), 'scenarios.ts');
type Result<K extends keyof typeof Scenarios> = Awaited<ReturnType<(typeof Scenarios)[K]>>;

const hostForwarding = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');

/** Runs a scenario in its own namespace with a work dir of its own, removed after. */
const scenario = async <K extends keyof typeof Scenarios>(name: K): Promise<Result<K>> => {
  const work = mkdtempSync(join(tmpdir(), 'podlog-net-'));
  try {
    return await inNetns<Result<K>>(scenarios, name, { work });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
};

test.after.always('the host namespace is untouched: its ip_forward is as it was', (t) => {
  t.is(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostForwarding);
});

test('default: each pod gets eth0 with a 172.16.28.x/24 address (IP= from CNI_ARGS honoured) and a default route; the host and the other pod reach it; DEL takes back veth, lease and nat rules, twice, and after the pod died while its namespace was kept', async (t) => {
  const { attached, afterDelA, bDied, afterDelB, afterDelC } = await scenario('defaultNetwork');
  const a = attached.summaryA.ips[0]!;
  t.regex(a.address, /^172\.16\.28\.\d+$/);
  t.like(a, { prefixLength: 24, gateway: '172.16.28.1', interface: 'eth0' });
  t.deepEqual(attached.addressesA, { eth0: [`${a.address}/24`] }, 'what ip -j addr shows in the pod');
  t.true(attached.routesA.includes('default via 172.16.28.1 dev eth0'), attached.routesA.join('; '));
  t.deepEqual(attached.addressesB, { eth0: ['172.16.28.7/24'] }, '--net=default:IP=172.16.28.7');
  t.is(attached.hostLinks, 2, 'a host-side veth per pod');
  t.true(attached.hostPingsA && attached.hostPingsB, 'the host reaches both pods');
  t.true(attached.aPingsB && attached.bPingsA, 'the pods reach each other');
  t.true(attached.natA > 0 && attached.natB > 0, `masquerade rules for each pod (${attached.natA}, ${attached.natB})`);
  t.deepEqual(attached.leases, [a.address, '172.16.28.7'].sort());

  t.deepEqual(afterDelA.podLinks, [], "the pod's eth0 is gone");
  t.is(afterDelA.hostLinks, 1, "its host-side veth is gone, the other pod's stays");
  t.false(afterDelA.hostPingsA);
  t.is(afterDelA.natA, 0, 'no nat line mentions the pod');
  t.is(afterDelA.natB, attached.natB, "the other pod's rules stay");
  t.deepEqual(afterDelA.leases, ['172.16.28.7'], 'its lease is released');

  t.deepEqual(bDied, { hostLinks: 1, hostPingsB: true }, "a kept namespace outlives the pod's processes, attached");
  t.deepEqual(afterDelB, { hostLinks: 0, natB: 0, leases: [] }, 'DEL through the kept namespace releases everything');

  // Without a kept namespace, DEL succeeds and host-local releases the lease, but ptp finds no
  // interface to learn its addresses from and leaves its masquerade rules: the runtime must keep a
  // pod's namespace until its DEL has run.
  t.true(afterDelC.natBefore > 0);
  t.like(afterDelC, { hostLinks: 0, leases: [], natC: afterDelC.natBefore });
});

test("a plugin that fails after ptp attached the pod: its CNI error, and nothing left of the attach (no veth, lease or nat rule); DEL afterwards succeeds", async (t) => {
  const { error, after } = await scenario('failingPlugin');
  t.deepEqual(error, {
    code: 'ENET_PLUGIN',
    message: 'network "flaky": CNI plugin refuser (ADD) failed: refuser says no; on purpose (CNI error code 11)',
    cniCode: 11,
    msg: 'refuser says no',
    details: 'on purpose',
  });
  t.deepEqual(after, { hostLinks: [], podLinks: [], leases: [], nat: 0 });
});

test('a bridge network from net.d with a static address from CNI_ARGS, and default-restricted beside it on eth1: no default route, the host reaches both', async (t) => {
  const { attached, detached } = await scenario('bridgeWithStaticIp');
  t.deepEqual(attached.summaries.map((s) => [s.name, s.ifName, s.summary.ips.map((ip) => `${ip.address}/${ip.prefixLength}`)]), [
    ['lan', 'eth0', ['10.77.0.9/24']],
    ['default-restricted', 'eth1', [attached.summaries[1]!.summary.ips[0]!.address + '/16']],
  ]);
  t.like(attached.summaries[0]!.summary.ips[0], { gateway: '10.77.0.1', interface: 'eth0' });
  t.regex(attached.summaries[1]!.summary.ips[0]!.address, /^172\.31\.\d+\.\d+$/);
  t.deepEqual(Object.keys(attached.addresses).sort(), ['eth0', 'eth1']);
  t.deepEqual(attached.addresses.eth0, ['10.77.0.9/24']);
  t.false(attached.routes.some((r) => r.startsWith('default')), attached.routes.join('; '));
  t.deepEqual(attached.hostPings, [true, true]);
  t.deepEqual(attached.leases.lan, ['10.77.0.9']);
  t.is(attached.leases.restricted.length, 1);
  t.deepEqual(detached, { podLinks: [], leases: { lan: [], restricted: [] } });
});

test("portmap after ptp, given the pod's port mapping as runtimeConfig: the host's 127.0.0.1:8080 and the gateway's reach the pod's httpd; after DEL nothing answers and no rule is left", async (t) => {
  const { attached, detached } = await scenario('portMapping');
  t.is(attached.localhost, 'hello from the pod\n', 'localhost, through portmap');
  t.is(attached.gateway, 'hello from the pod\n', "the host's address on the pod's link");
  t.true(attached.nat > 0);
  t.deepEqual(detached, { localhost: null, nat: 0, leases: [] });
});
