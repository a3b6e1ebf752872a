/**
 * What attach.test.ts runs inside a network namespace of its own (test/helpers/netns.ts): real pods
 * attached by the reference plugins, and what the world looks like at each step. Each function returns
 * its observations; the test asserts on them.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { addNetwork, checkNetwork, delNetwork, type Attachment, type CniResult } from '../../src/net/cni.js';
import { CniPluginError } from '../../src/net/exec.js';
import { parseNetFlags } from '../../src/net/netlist.js';
import { planNetworks, type PlannedNetwork } from '../../src/net/networks.js';
import { pluginDirs } from '../../src/net/plugins.js';
import { summarizeResult, type NetworkSummary } from '../../src/net/result.js';
import { must, release, run, startPod, type Pod } from '../helpers/netns.js';

export interface Work {
  /** The test's directory: net.d under `etc`, leases under `cni`, extra plugins under `bin`. */
  work: string;
}

/** The non-loopback links of a namespace (the test's "host" when `pod` is absent). */
const links = (pod?: Pod): string[] => {
  const out = pod === undefined ? must('ip', ['-j', 'link']) : pod.exec('ip', ['-j', 'link']).stdout;
  return (JSON.parse(out) as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => n !== 'lo');
};

/** `ip -j addr` of a pod: its IPv4 addresses by interface, as CIDRs. */
const podAddresses = (pod: Pod): Record<string, string[]> => {
  const ifaces = JSON.parse(pod.exec('ip', ['-j', 'addr']).stdout) as Array<{ ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number }> }>;
  return Object.fromEntries(ifaces.filter((i) => i.ifname !== 'lo').map((i) => [i.ifname, i.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)]));
};

const podRoutes = (pod: Pod): string[] =>
  (JSON.parse(pod.exec('ip', ['-j', 'route']).stdout) as Array<{ dst: string; gateway?: string; dev: string }>).map((r) => `${r.dst}${r.gateway === undefined ? '' : ` via ${r.gateway}`} dev ${r.dev}`);

/** Lines of the nat table that mention a container id (the plugins' masquerade chains and rules). */
const natLines = (id: string): number => must('iptables-save', ['-t', 'nat']).split('\n').filter((l) => l.includes(id)).length;

/** host-local's leases of a network: one file named by each address it holds. */
const leases = (work: string, net: string): string[] => {
  const dir = join(work, 'cni', 'networks', net);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^[0-9a-f.:]+$/.test(f)).sort() : [];
};

/** Whether `to` answers one ping, from the host or from inside `from`. */
const pings = (to: string, from?: Pod): boolean => {
  const args = ['ping', '-c', '1', '-W', '2', to];
  return (from === undefined ? run('busybox', args) : from.exec('busybox', args)).status === 0;
};

const attachment = (pod: Pod, net: PlannedNetwork, work: string, containerId = randomUUID()): Attachment => ({
  containerId,
  netns: pod.netns,
  ifName: net.ifName,
  args: net.args,
  pluginDirs: pluginDirs(join(work, 'bin')),
});

const plan = (work: string, flags: string[]) => planNetworks(parseNetFlags(flags), { localConfig: join(work, 'etc'), cniDataDir: join(work, 'cni') });

const addressOf = (s: NetworkSummary): string => s.ips[0]!.address;

/**
 * Pods on `default`: A plain, B with a fixed address (`--net=default:IP=172.16.28.7`) and its
 * namespace kept by a bind mount, as stage1 keeps a pod's. Addresses, routes, reachability from the
 * host and between the pods, CHECK; DEL of A (twice); B's process killed, then its DEL through the
 * kept namespace; C killed with nothing keeping its namespace, then its DEL.
 */
export const defaultNetwork = async ({ work }: Work) => {
  const [net] = plan(work, []).networks;
  const [fixed] = plan(work, ['default:IP=172.16.28.7']).networks;
  const [a, b, c] = [await startPod(), await startPod(), await startPod()];
  const attA = attachment(a, net!, work);
  const attB = { ...attachment(b, fixed!, work), netns: b.keep(join(work, 'netns-b')) };
  const attC = attachment(c, net!, work);
  const hostLinksBefore = links();
  const [resA, resB] = [await addNetwork(net!.config, attA), await addNetwork(fixed!.config, attB)];
  const [sumA, sumB] = [summarizeResult(net!.name, resA), summarizeResult(net!.name, resB)];
  const attached = {
    summaryA: sumA,
    addressesA: podAddresses(a),
    routesA: podRoutes(a),
    addressesB: podAddresses(b),
    hostLinks: links().length - hostLinksBefore.length,
    hostPingsA: pings(addressOf(sumA)),
    hostPingsB: pings(addressOf(sumB)),
    aPingsB: pings(addressOf(sumB), a),
    bPingsA: pings(addressOf(sumA), b),
    natA: natLines(attA.containerId),
    natB: natLines(attB.containerId),
    leases: leases(work, 'default'),
  };
  await checkNetwork(net!.config, attA, resA);
  await delNetwork(net!.config, attA, resA);
  const afterDelA = {
    podLinks: links(a),
    hostLinks: links().length - hostLinksBefore.length,
    hostPingsA: pings(addressOf(sumA)),
    natA: natLines(attA.containerId),
    natB: natLines(attB.containerId),
    leases: leases(work, 'default'),
  };
  await delNetwork(net!.config, attA, resA);
  await a.kill();
  await b.kill();
  const bDied = { hostLinks: links().length - hostLinksBefore.length, hostPingsB: pings(addressOf(sumB)) };
  await delNetwork(fixed!.config, attB, resB);
  release(attB.netns);
  const afterDelB = { hostLinks: links().length - hostLinksBefore.length, natB: natLines(attB.containerId), leases: leases(work, 'default') };
  const resC = await addNetwork(net!.config, attC);
  const natC = natLines(attC.containerId);
  await c.kill();
  await delNetwork(net!.config, attC, resC);
  const afterDelC = { address: addressOf(summarizeResult(net!.name, resC)), natBefore: natC, hostLinks: links().length - hostLinksBefore.length, natC: natLines(attC.containerId), leases: leases(work, 'default') };
  return { attached, afterDelA, bDied, afterDelB, afterDelC };
};

/** A plugin that fails ADD with a CNI error (code 11, "try again later") and succeeds at DEL. */
const writeFailingPlugin = (work: string): void => {
  mkdirSync(join(work, 'bin'), { recursive: true });
  const path = join(work, 'bin', 'refuser');
  writeFileSync(path, [
    '#!/bin/sh',
    'cat > /dev/null',
    '[ "$CNI_COMMAND" = ADD ] || exit 0',
    `printf '%s' '{"cniVersion":"0.4.0","code":11,"msg":"refuser says no","details":"on purpose"}'`,
    'exit 1',
    '',
  ].join('\n'));
  chmodSync(path, 0o755);
};

/**
 * A network whose second plugin fails after ptp attached the pod: the error is the plugin's, and
 * the veth, the lease and the nat rules ptp made are gone; a DEL afterwards succeeds.
 */
export const failingPlugin = async ({ work }: Work) => {
  writeFailingPlugin(work);
  mkdirSync(join(work, 'etc', 'net.d'), { recursive: true });
  writeFileSync(join(work, 'etc', 'net.d', '10-flaky.conflist'), JSON.stringify({
    cniVersion: '0.4.0',
    name: 'flaky',
    plugins: [{ type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '10.99.0.0/24' } }, { type: 'refuser' }],
  }));
  const net = plan(work, ['flaky']).networks.find((n) => n.name === 'flaky')!;
  const pod = await startPod();
  const att = attachment(pod, net, work);
  const error = await addNetwork(net.config, att).then(
    () => undefined,
    (e: unknown) => (e instanceof CniPluginError ? { code: e.code, message: e.message, cniCode: e.cniCode, msg: e.msg, details: e.details } : { other: String(e) }),
  );
  const after = { hostLinks: links(), podLinks: links(pod), leases: leases(work, 'flaky'), nat: natLines(att.containerId) };
  await delNetwork(net.config, att);
  await pod.kill();
  return { error, after };
};

/**
 * A named bridge network from net.d (cniVersion 1.0.0) with a static address through CNI_ARGS, and
 * default-restricted beside it, as rkt adds it: one interface each, no default route.
 */
export const bridgeWithStaticIp = async ({ work }: Work) => {
  mkdirSync(join(work, 'etc', 'net.d'), { recursive: true });
  writeFileSync(join(work, 'etc', 'net.d', '10-lan.conflist'), JSON.stringify({
    cniVersion: '1.0.0',
    name: 'lan',
    plugins: [{ type: 'bridge', bridge: 'podlogbr0', isGateway: true, ipam: { type: 'host-local', subnet: '10.77.0.0/24' } }],
  }));
  // bridge, unlike ptp, refuses CNI_ARGS it does not know unless told to ignore them.
  const { networks } = plan(work, ['lan:IP=10.77.0.9;IgnoreUnknown=1']);
  const pod = await startPod();
  const id = randomUUID();
  const results: Array<{ net: PlannedNetwork; result: CniResult }> = [];
  for (const net of networks) results.push({ net, result: await addNetwork(net.config, attachment(pod, net, work, id)) });
  const summaries = results.map(({ net, result }) => ({ name: net.name, ifName: net.ifName, summary: summarizeResult(net.name, result) }));
  const attached = {
    summaries,
    addresses: podAddresses(pod),
    routes: podRoutes(pod),
    hostPings: summaries.map((s) => pings(addressOf(s.summary))),
    leases: { lan: leases(work, 'lan'), restricted: leases(work, 'default-restricted') },
  };
  for (const { net, result } of results.reverse()) await delNetwork(net.config, attachment(pod, net, work, id), result);
  const detached = { podLinks: links(pod), leases: { lan: leases(work, 'lan'), restricted: leases(work, 'default-restricted') } };
  await pod.kill();
  return { attached, detached };
};

/**
 * An HTTP server in the pod (busybox httpd on port 80) serving `text` as /index.html; stopped by its
 * pid, and by the runner's death if that comes first.
 */
const serve = async (pod: Pod, address: string, work: string, text: string): Promise<() => void> => {
  const root = join(work, 'www');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'index.html'), text);
  const httpd = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'nsenter', `--net=${pod.netns}`, '--', 'busybox', 'httpd', '-f', '-p', '80', '-h', root], { stdio: 'ignore' });
  for (let i = 0; (await httpGet(`${address}:80`)) === null; i++) {
    if (i > 100) throw new Error('httpd in the pod did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return () => process.kill(httpd.pid!, 'SIGKILL');
};

/** The body of http://HOST:PORT/ fetched from the test's host namespace, or null when nothing answers. */
const httpGet = (hostPort: string): Promise<string | null> =>
  new Promise((resolve) => {
    const req = get(`http://${hostPort}/`, { timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve(res.statusCode === 200 ? body : null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });

/**
 * portmap after ptp, its port mapping given as a capability argument (runtimeConfig.portMappings):
 * the host's 127.0.0.1:8080 and its own address reach the pod's port 80 while attached; after DEL
 * neither does and no nat line names the pod.
 */
export const portMapping = async ({ work }: Work) => {
  mkdirSync(join(work, 'etc', 'net.d'), { recursive: true });
  writeFileSync(join(work, 'etc', 'net.d', '10-web.conflist'), JSON.stringify({
    cniVersion: '1.0.0',
    name: 'web',
    plugins: [
      { type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '10.88.0.0/24', routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }));
  const net = plan(work, ['web']).networks.find((n) => n.name === 'web')!;
  const pod = await startPod();
  const att = { ...attachment(pod, net, work), capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } };
  const result = await addNetwork(net.config, att);
  const { ips } = summarizeResult(net.name, result);
  const stop = await serve(pod, ips[0]!.address, work, 'hello from the pod\n');
  const attached = { localhost: await httpGet('127.0.0.1:8080'), gateway: await httpGet(`${ips[0]!.gateway}:8080`), nat: natLines(att.containerId) };
  await delNetwork(net.config, att, result);
  const detached = { localhost: await httpGet('127.0.0.1:8080'), nat: natLines(att.containerId), leases: leases(work, 'web') };
  stop();
  await pod.kill();
  return { attached, detached };
};
