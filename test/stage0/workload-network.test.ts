/**
 * Pods on CNI networks, end to end through `podlog`: rkt's default network (ptp, masquerade,
 * 172.16.28.0/24), a named network from net.d, what the log, `list` and `status` say, and that `gc`
 * gives back everything a network held (lease, nat rules, the kept namespace).
 *
 * This process's network namespace plays the host: `npm test` runs ava in namespaces of its own
 * (scripts/isolated.sh); the first test refuses to go on in the machine's real one.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNI_STATE_DIR } from '../../src/stage0/config.js';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, netnsMounts, podlogAsync, podlogBin, waitForFile } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const work = mkdtempSync(join(tmpdir(), 'podlog-network-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
/** scripts/isolated.sh names the namespace it left; running outside it, there is none to compare. */
const isolated = process.env.PODLOG_OUTER_NETNS !== undefined && readlinkSync('/proc/self/ns/net') !== process.env.PODLOG_OUTER_NETNS;

/** What a pod's network holds on the host: host-local leases and nat rules naming it. */
const heldBy = (uuid: string): { leases: string; nat: string[] } => ({
  leases: spawnSync('grep', ['-rl', uuid, CNI_STATE_DIR], { encoding: 'utf8' }).stdout,
  nat: spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(uuid)),
});

/** Collects the data dir's pods (their networks hold a lease and a kept namespace until then), then removes it. */
const collect = (d: ReturnType<typeof dataDir>): void => {
  d.podlog(['gc', '--grace-period=0s', '--expire-prepared=0s']);
  d.cleanup();
};

/** The IPv4 address (with prefix) busybox's `ip -4 -o addr show IF` printed. */
const addressOn = (out: string, ifName: string): string | undefined => new RegExp(`\\d+: ${ifName}\\s+inet (\\S+)`).exec(out)?.[1];

test.serial('the tests play host in a network namespace of their own', (t) => {
  t.true(isolated, 'run through npm test (scripts/isolated.sh): this is the machine\'s own network namespace');
});

test.serial('--net=default: eth0 on 172.16.28.0/24 with a default route; the pod reaches the host side; the log, list and status say its address; gc gives it all back', async (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  // The host side listens on all its addresses: the pod reaches it through its gateway.
  const server = createServer((sock) => sock.end('from the host\n'));
  await new Promise<void>((ok) => server.listen(0, '0.0.0.0', ok));
  const port = (server.address() as { port: number }).port;
  try {
    const script = `ip -4 -o addr show eth0; ip route; gw=$(ip route | awk '/^default/ { print $3 }'); nc "$gw" ${port} </dev/null`;
    const r = await podlogAsync(d, ['run', '--net=default', busybox, '--exec', '/bin/sh', '--', '-c', script]);
    t.is(r.status, 0, r.stderr);
    const address = addressOn(r.stdout, 'eth0');
    t.regex(address ?? '', /^172\.16\.28\.\d+\/24$/, r.stdout);
    t.regex(r.stdout, /^default via 172\.16\.28\.1 dev eth0/m);
    t.regex(r.stdout, /from the host/);
    const [pod] = d.pods();
    const events = d.events(pod!.uuid);
    const attached = events.find((e) => e.type === 'NetworkAttached')!;
    t.is(attached.data.name, 'default');
    t.deepEqual((attached.data.summary as { ips: Array<{ address: string }> }).ips.map((i) => i.address), [address!.split('/')[0]]);
    const types = events.map((e) => e.type);
    t.true(types.indexOf('NetworkAttached') < types.indexOf('Stage1StartRequested'), 'attached before stage1 starts');
    // Until gc, the pod keeps its address (rkt's gc tore networks down) and shows it.
    const ip = address!.split('/')[0]!;
    t.regex(d.podlog(['status', pod!.uuid]).stdout, new RegExp(`^networks=default:ip4=${ip.replaceAll('.', '\\.')}$`, 'm'));
    t.regex(d.podlog(['list', '--no-legend']).stdout, new RegExp(`default:ip4=${ip.replaceAll('.', '\\.')}`));
    t.not(heldBy(pod!.uuid).leases, '', 'the lease is held until gc');
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    t.true(d.events(pod!.uuid).some((e) => e.type === 'NetworkDetached'));
    t.deepEqual(heldBy(pod!.uuid), { leases: '', nat: [] }, 'no lease and no nat rule left');
    t.deepEqual(netnsMounts(d.dir), [], 'the kept namespace is gone');
  } finally {
    server.close();
    collect(d);
  }
});

test.serial('two pods on default reach each other', async (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  try {
    const uuidFile = join(d.dir, 'server-uuid');
    const server = d.start(['run', '--net=default', '--uuid-file-save', uuidFile, busybox, '--exec', '/bin/sh', '--', '-c', 'echo from-the-other-pod | nc -l -p 8000']);
    const uuid = await waitForFile(uuidFile);
    let ip = '';
    for (let i = 0; i < 200 && ip === ''; i++) {
      ip = /default:ip4=(\S+)/.exec(d.podlog(['status', uuid]).stdout)?.[1] ?? '';
      if (ip === '') await new Promise((ok) => setTimeout(ok, 50));
    }
    t.not(ip, '', 'the server pod is up with an address');
    let r = d.podlog(['run', '--net=default', busybox, '--exec', '/bin/sh', '--', '-c', `nc ${ip} 8000 </dev/null`]);
    for (let i = 0; i < 20 && !r.stdout.includes('from-the-other-pod'); i++) {
      await new Promise((ok) => setTimeout(ok, 100)); // nc -l may not listen yet
      r = d.podlog(['run', '--net=default', busybox, '--exec', '/bin/sh', '--', '-c', `nc ${ip} 8000 </dev/null`]);
    }
    t.regex(r.stdout, /from-the-other-pod/);
    await new Promise((ok) => server.once('exit', ok));
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    for (const p of [uuid]) t.deepEqual(heldBy(p), { leases: '', nat: [] });
  } finally {
    collect(d);
  }
});

/** GET http://HOST:PORT/ from this namespace (the host): the body, or the error's code. */
const get = (port: number, host = '127.0.0.1'): Promise<string> =>
  new Promise((resolve) => {
    const req = httpGet({ host, port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

test.serial('--port=http:8080 publishes the app port on the host (localhost too); another pod cannot take it; after stop it is closed, after gc no rule is left', async (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  try {
    const uuidFile = join(d.dir, 'uuid');
    const web = d.start(['run', '--net=default', '--port=http:8080', '--uuid-file-save', uuidFile, aciPath('web')]);
    const uuid = await waitForFile(uuidFile);
    let body = await get(8080);
    for (let i = 0; i < 100 && body !== 'hello from the pod'; i++) {
      await new Promise((ok) => setTimeout(ok, 50)); // httpd may not listen yet
      body = await get(8080);
    }
    t.is(body, 'hello from the pod');
    const ip = /default:ip4=(\S+)/.exec(d.podlog(['status', uuid]).stdout)?.[1];
    t.is(await get(80, ip), 'hello from the pod', "the host reaches the pod's own address too");
    const taken = d.podlog(['prepare', '--port=http:8080', aciPath('web')]);
    t.is(taken.status, 254);
    t.regex(taken.stderr, new RegExp(`host port 8080/tcp is published by pod ${uuid} \\(running\\)`));
    const unknown = d.podlog(['prepare', '--port=https:8443', aciPath('web')]);
    t.is(unknown.status, 254);
    t.regex(unknown.stderr, /unknown port "https": no app declares it \(the apps' ports: http\)/);
    t.is(d.podlog(['stop', uuid]).status, 0);
    await new Promise((ok) => web.once('exit', ok));
    t.is(await get(8080), 'ECONNREFUSED', 'closed after stop');
    t.true(heldBy(uuid).nat.length > 0, 'its rules stay until gc, as its address does');
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    t.deepEqual(heldBy(uuid), { leases: '', nat: [] });
    const rules = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout;
    t.notRegex(rules, /--dport 8080/, 'no rule for the port is left');
  } finally {
    collect(d);
  }
});

test.serial('a named network from net.d (bridge, a static address from CNI_ARGS), with default-restricted beside it', (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  try {
    const config = join(work, 'local-config');
    mkdirSync(join(config, 'net.d'), { recursive: true });
    writeFileSync(join(config, 'net.d', '10-lan.conflist'), JSON.stringify({
      cniVersion: '0.4.0', name: 'lan',
      plugins: [{ type: 'bridge', bridge: 'podlog-lan0', isGateway: true, ipam: { type: 'host-local', subnet: '10.77.0.0/24' } }],
    }));
    const r = d.podlog(['run', `--local-config=${config}`, '--net=lan:IP=10.77.0.9;IgnoreUnknown=1', busybox, '--exec', '/bin/sh', '--', '-c', 'ip -4 -o addr; ip route']);
    t.is(r.status, 0, r.stderr);
    t.is(addressOn(r.stdout, 'eth0'), '10.77.0.9/24', r.stdout);
    t.regex(addressOn(r.stdout, 'eth1') ?? '', /^172\.31\.\d+\.\d+\/16$/, 'default-restricted on eth1');
    t.notRegex(r.stdout, /^default /m, 'no default route: neither network gives one');
    const [pod] = d.pods();
    t.deepEqual(d.events(pod!.uuid).filter((e) => e.type === 'NetworkAttached').map((e) => e.data.name), ['lan', 'default-restricted']);
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    t.deepEqual(heldBy(pod!.uuid), { leases: '', nat: [] });
  } finally {
    collect(d);
  }
});

test.serial("a network's DNS servers are the pod's resolv.conf when --dns says nothing", (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  try {
    const config = join(work, 'dns-config');
    mkdirSync(join(config, 'net.d'), { recursive: true });
    // ptp hands its configuration's dns to the result, as a plugin that knows the network's resolver would.
    writeFileSync(join(config, 'net.d', '10-named.conf'), JSON.stringify({
      cniVersion: '0.4.0', name: 'named', type: 'ptp',
      ipam: { type: 'host-local', subnet: '10.78.0.0/24' },
      dns: { nameservers: ['192.0.2.53'], search: ['pods.example'] },
    }));
    const r = d.podlog(['run', `--local-config=${config}`, '--net=named', busybox, '--exec', '/bin/cat', '--', '/etc/resolv.conf']);
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /^nameserver 192\.0\.2\.53$/m);
    t.regex(r.stdout, /^search pods\.example$/m);
    const withFlag = d.podlog(['run', `--local-config=${config}`, '--net=named', '--dns=192.0.2.99', busybox, '--exec', '/bin/cat', '--', '/etc/resolv.conf']);
    t.regex(withFlag.stdout, /^nameserver 192\.0\.2\.99$/m, '--dns wins');
    t.notRegex(withFlag.stdout, /192\.0\.2\.53/);
  } finally {
    collect(d);
  }
});

test.serial('a pod whose kept namespace is gone (as after a reboot) is still collected, its lease released', (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  try {
    // Run in a mount namespace that ends with the run: the bind mount keeping the pod's network
    // namespace goes with it, and <pod>/netns is left an empty file, as after a reboot.
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', podlogBin, '--dir', d.dir, 'run', '--net=default', busybox, '--exec', '/bin/true'], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    const [pod] = d.pods();
    t.deepEqual(netnsMounts(d.dir), []);
    t.not(heldBy(pod!.uuid).leases, '');
    const gc = d.podlog(['gc', '--grace-period=0s']);
    t.is(gc.status, 0, gc.stderr);
    t.deepEqual(d.pods(), [], 'collected');
    t.is(heldBy(pod!.uuid).leases, '', 'the lease released');
  } finally {
    collect(d);
  }
});

test.serial('broken network configurations and failing plugins: 254 with the reason, nothing attached, nothing kept', (t) => {
  if (!isolated) return t.fail('not isolated');
  const d = dataDir();
  try {
    const config = join(work, 'broken-config');
    mkdirSync(join(config, 'net.d'), { recursive: true });
    writeFileSync(join(config, 'net.d', '10-bad.conf'), '{ "name": "bad", ');
    let r = d.podlog(['run', `--local-config=${config}`, '--net=default', busybox, '--exec', '/bin/true']);
    t.is(r.status, 254);
    t.regex(r.stderr, /10-bad\.conf/);
    rmSync(join(config, 'net.d', '10-bad.conf'));

    writeFileSync(join(config, 'net.d', '20-odd.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'odd', type: 'no-such-plugin' }));
    r = d.podlog(['run', `--local-config=${config}`, '--net=odd', busybox, '--exec', '/bin/true']);
    t.is(r.status, 254);
    t.regex(r.stderr, /no-such-plugin/);
    t.regex(r.stderr, /containernetworking-plugins/);

    // A plugin that fails as CNI says (an error JSON on stdout, a non-zero exit).
    const plugins = join(work, 'plugins');
    mkdirSync(plugins, { recursive: true });
    writeFileSync(join(plugins, 'refuser'), '#!/bin/sh\ncat >/dev/null\nif [ "$CNI_COMMAND" = ADD ]; then echo \'{"cniVersion":"0.4.0","code":11,"msg":"the refuser refuses","details":"always"}\'; exit 1; fi\n');
    chmodSync(join(plugins, 'refuser'), 0o755);
    writeFileSync(join(config, 'net.d', '30-refused.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'refused', type: 'refuser' }));
    r = d.podlog(['run', `--local-config=${config}`, `--net-plugins-dir=${plugins}`, '--net=default,refused', busybox, '--exec', '/bin/true']);
    t.is(r.status, 254);
    t.regex(r.stderr, /the refuser refuses/);
    const pods = d.pods();
    t.true(pods.every((p) => p.state === 'prepared'), 'the pods stay prepared');
    for (const p of pods) {
      const events = d.events(p.uuid);
      const attachedNow = events.filter((e) => e.type === 'NetworkAttached').length - events.filter((e) => e.type === 'NetworkDetached').length;
      t.is(attachedNow, 0, 'what was attached before the failure is detached');
      t.deepEqual(heldBy(p.uuid), { leases: '', nat: [] });
    }
    t.deepEqual(netnsMounts(d.dir), [], 'no namespace kept');
  } finally {
    collect(d);
  }
});
