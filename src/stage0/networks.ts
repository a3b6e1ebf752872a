/**
 * A pod's CNI networks, from `run`'s flags to the log: which networks (rkt's --net, net.d under
 * --local-config, the built-in default and default-restricted), attached one by one before stage1
 * starts (NetworkAttachRequested → NetworkAttached, each a CNI ADD), and detached (NetworkDetached,
 * each a CNI DEL with the recorded result) by `gc` or `rm` before the pod's directory goes, as rkt's
 * gc tore them down: an exited pod keeps its addresses (and `status` shows them) until it is
 * collected. A `run` whose attach or start fails detaches at once.
 */
import { readFileSync } from 'node:fs';
import { RKT_STATE_NAMES, type PodNetwork } from '../../machines/pod.js';
import { ownsPod } from '../engine/hosts.js';
import { catchUpPodList } from '../engine/pod-list.js';
import { PodlogError } from '../errors.js';
import type { NetworkConfigList } from '../net/config.js';
import { pluginDirs } from '../net/plugins.js';
import { dnsFromNetworks, type NetworkDns } from '../net/result.js';
import { networkPlan, type RunConfig } from './config.js';
import { debug } from './debug.js';
import { podDir, podPaths } from './pod-dir.js';
import { attachedNetworks } from './pod-networks.js';
import type { PodManifest } from './pod-manifest.js';
import type { Stage0 } from './session.js';

/** One published port as the portmap plugin takes it (its `portMappings` capability). */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

/** The pod manifest's ports, each with the app port of its name (--port was checked against them at prepare). */
export const portMappings = (manifest: Pick<PodManifest, 'ports' | 'apps'>): PortMapping[] =>
  manifest.ports.flatMap((exposed) => {
    const declared = manifest.apps.flatMap((a) => a.app.ports ?? []).find((p) => p.name === exposed.name);
    if (declared === undefined) return [];
    return [{ hostPort: exposed.hostPort, containerPort: declared.port, protocol: declared.protocol, ...(exposed.hostIP !== undefined ? { hostIP: exposed.hostIP } : {}) }];
  });

/** The ports the pod's manifest publishes (--port at prepare). */
export const publishedPorts = (s: Stage0, uuid: string): PortMapping[] =>
  portMappings(JSON.parse(readFileSync(podPaths(podDir(s.dataDir, uuid)).manifest, 'utf8')) as PodManifest);

const mappingsOf = (n: PodNetwork): PortMapping[] => ((n.capabilityArgs?.portMappings ?? []) as PortMapping[]);

/** Two publications of one host port clash unless they are on different host addresses. */
const clash = (a: PortMapping, b: PortMapping): boolean =>
  a.hostPort === b.hostPort && a.protocol === b.protocol && (a.hostIP === undefined || b.hostIP === undefined || a.hostIP === b.hostIP);

/**
 * Refuses host ports another pod publishes: one that runs, or one that has exited and keeps its
 * networks until gc.
 */
export const checkPortsFree = async (s: Stage0, uuid: string, wanted: PortMapping[]): Promise<void> => {
  if (wanted.length === 0) return;
  for (const row of (await catchUpPodList(s.store)).values()) {
    // Host ports are this host's: another host's pods publish on theirs.
    if (row.uuid === uuid || !ownsPod(s.hostId, row.context)) continue;
    const held = attachedNetworks(row.context.networks).flatMap(mappingsOf);
    const taken = wanted.find((w) => held.some((h) => clash(w, h)));
    if (taken !== undefined) {
      throw new PodlogError('EPORT_BUSY', `--port: host port ${taken.hostPort}/${taken.protocol} is published by pod ${row.uuid} (${RKT_STATE_NAMES[row.state]}${row.state === 'running' ? '' : '; gc releases it'})`);
    }
  }
};

/** The network the pod's ports are published through (its first), with the portmap plugin at its end. */
const withPortmap = (config: NetworkConfigList): NetworkConfigList =>
  config.plugins.some((p) => p.type === 'portmap')
    ? config
    : { ...config, plugins: [...config.plugins, { type: 'portmap', capabilities: { portMappings: true }, snat: true }] };

/**
 * Attaches the networks `cfg` selects that the pod does not have yet, in order; returns the DNS
 * their results carry (for resolv.conf when --dns says nothing). A failed attach detaches what this
 * pod holds before the error goes on: no pod is left half on its networks.
 */
export const attachNetworks = async (s: Stage0, uuid: string, cfg: RunConfig): Promise<NetworkDns | undefined> => {
  const plan = networkPlan(cfg);
  for (const warning of plan.warnings) process.stderr.write(`podlog: ${warning}\n`);
  const dirs = pluginDirs(cfg.netPluginsDir);
  const ports = publishedPorts(s, uuid);
  await checkPortsFree(s, uuid, ports);
  try {
    for (const [i, n] of plan.networks.entries()) {
      const have = attachedNetworks((await s.engine.load(uuid)).context.networks);
      if (have.some((h) => h.name === n.name)) continue;
      const published = i === 0 && ports.length > 0;
      await s.engine.request(uuid, 'NetworkAttachRequested', {
        name: n.name,
        ifName: n.ifName,
        args: n.args,
        config: published ? withPortmap(n.config) : n.config,
        pluginDirs: dirs,
        ...(published ? { capabilityArgs: { portMappings: ports } } : {}),
      });
      debug(`pod ${uuid}: network ${n.name} attached on ${n.ifName}`);
    }
  } catch (e) {
    await detachNetworks(s, uuid);
    throw e;
  }
  return dnsFromNetworks(attachedNetworks((await s.engine.load(uuid)).context.networks).flatMap((n) => (n.summary ? [n.summary] : [])));
};

/** rkt's NETWORKS column and `networks=` field: `default:ip4=172.16.28.2`, one per attached network and address. */
/** Detaches every network the pod holds, the last attached first. */
export const detachNetworks = async (s: Stage0, uuid: string): Promise<void> => {
  for (const n of attachedNetworks((await s.engine.load(uuid)).context.networks).reverse()) {
    await s.engine.request(uuid, 'NetworkDetachRequested', { name: n.name });
    debug(`pod ${uuid}: network ${n.name} detached`);
  }
};
