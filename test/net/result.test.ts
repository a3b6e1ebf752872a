/**
 * A CNI result in the form the log records: the same summary from a 1.0.0, a 0.4.0 and a 0.2.0
 * result; shapes that are not a result refused by field; DNS for resolv.conf taken from the first
 * network that has any, as rkt takes it.
 */
import test from 'ava';
import { dnsFromNetworks, summarizeResult, type NetworkSummary } from '../../src/net/result.js';

const pod = { name: 'eth0', mac: '82:89:d1:d5:8b:1b', sandbox: '/proc/20639/ns/net' };
const host = { name: 'veth7a67b21f', mac: 'b6:09:22:63:9f:05' };

/** What ptp with host-local returned on this machine (containernetworking-plugins 1.1.1), at 1.0.0. */
const ptp100 = {
  cniVersion: '1.0.0',
  interfaces: [host, pod],
  ips: [{ interface: 1, address: '172.16.28.2/24', gateway: '172.16.28.1' }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: {},
};

const expected: NetworkSummary = {
  interfaces: [host, pod],
  ips: [{ address: '172.16.28.2', prefixLength: 24, gateway: '172.16.28.1', interface: 'eth0' }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: [], search: [], options: [] },
};

test('1.0.0 and 0.4.0 results: interfaces, addresses with prefix, gateway and interface, routes, DNS', (t) => {
  t.deepEqual(summarizeResult('default', ptp100), expected);
  const ptp040 = { ...ptp100, cniVersion: '0.4.0', ips: [{ version: '4', ...ptp100.ips[0] }] };
  t.deepEqual(summarizeResult('default', ptp040), expected, '0.4.0 adds only a version per address');
  const v6 = summarizeResult('n', {
    cniVersion: '1.0.0',
    ips: [{ address: '2001:db8::5/64' }, { address: '10.1.0.5/16', gateway: '10.1.0.1' }],
    routes: [{ dst: '::/0', gw: '2001:db8::1' }],
    dns: { nameservers: ['10.1.0.1', '2001:db8::53'], domain: 'example.org', search: ['a.example'], options: ['ndots:2'] },
  });
  t.deepEqual(v6, {
    interfaces: [],
    ips: [{ address: '2001:db8::5', prefixLength: 64 }, { address: '10.1.0.5', prefixLength: 16, gateway: '10.1.0.1' }],
    routes: [{ dst: '::/0', gw: '2001:db8::1' }],
    dns: { nameservers: ['10.1.0.1', '2001:db8::53'], domain: 'example.org', search: ['a.example'], options: ['ndots:2'] },
  });
});

test('0.2.0 and unversioned (0.1.0) results: ip4 and ip6 with their routes', (t) => {
  const old = { ip4: { ip: '172.16.28.5/24', gateway: '172.16.28.1', routes: [{ dst: '0.0.0.0/0' }] }, ip6: { ip: 'fd00::5/64' }, dns: { nameservers: ['172.16.28.1'] } };
  const want = {
    interfaces: [],
    ips: [{ address: '172.16.28.5', prefixLength: 24, gateway: '172.16.28.1' }, { address: 'fd00::5', prefixLength: 64 }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: ['172.16.28.1'], search: [], options: [] },
  };
  t.deepEqual(summarizeResult('n', { cniVersion: '0.2.0', ...old }), want);
  t.deepEqual(summarizeResult('n', old), want);
});

test('a result that is not one is refused, naming the network and the field', (t) => {
  const cases: Array<[unknown, string]> = [
    [[], 'is not a JSON object'],
    [{ cniVersion: 'one' }, 'has cniVersion "one", which is not a version'],
    [{ cniVersion: '1.0.0', ips: {} }, 'has ips that is not a list'],
    [{ cniVersion: '1.0.0', ips: [{ address: '172.16.28.2' }] }, 'has ips[0].address "172.16.28.2", which is not an address with a prefix length'],
    [{ cniVersion: '1.0.0', ips: [{ address: '172.16.28.2/33' }] }, 'has ips[0].address "172.16.28.2/33", which is not an address with a prefix length'],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/8', gateway: 'router' }] }, 'has ips[0].gateway "router", which is not an IP address'],
    [{ cniVersion: '1.0.0', interfaces: [host], ips: [{ address: '10.0.0.2/8', interface: 3 }] }, 'has ips[0].interface 3, which is not an index into its interfaces'],
    [{ cniVersion: '1.0.0', routes: [{ gw: '10.0.0.1' }] }, 'has routes[0].dst that is not a string'],
    [{ cniVersion: '1.0.0', dns: { nameservers: ['dns.example'] } }, 'has dns.nameservers[0] "dns.example", which is not an IP address'],
    [{ cniVersion: '0.2.0', ip4: { gateway: '10.0.0.1' } }, 'has ip4.ip that is not a string'],
  ];
  for (const [result, message] of cases) {
    const e = t.throws(() => summarizeResult('lan', result));
    t.like(e, { code: 'ENET_RESULT', message: `network "lan": the CNI result ${message}` });
  }
});

test("DNS for the pod: the first network's whose result has any, as rkt takes it", (t) => {
  const none = { ...expected };
  const a = { ...expected, dns: { nameservers: [], search: ['a.example'], options: [] } };
  const b = { ...expected, dns: { nameservers: ['10.0.0.53'], search: [], options: [] } };
  t.is(dnsFromNetworks([]), undefined);
  t.is(dnsFromNetworks([none]), undefined);
  t.deepEqual(dnsFromNetworks([none, a, b]), a.dns);
  t.deepEqual(dnsFromNetworks([b, a]), b.dns);
});
