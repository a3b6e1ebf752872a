/**
 * A pod's CNI networks, from `run`'s flags to the log: which networks (rkt's --net, net.d under
 * --local-config, the built-in default and default-restricted), attached one by one before stage1
 * starts (NetworkAttachRequested → NetworkAttached, each a CNI ADD), and detached (NetworkDetached,
 * each a CNI DEL with the recorded result) by `gc` or `rm` before the pod's directory goes, as rkt's
 * gc tore them down: an exited pod keeps its addresses (and `status` shows them) until it is
 * collected. A `run` whose attach or start fails detaches at once.
 */
import type { PodNetwork } from '../../machines/pod.js';
import { parseNetFlags } from '../net/netlist.js';
import { planNetworks } from '../net/networks.js';
import { pluginDirs } from '../net/plugins.js';
import { dnsFromNetworks, type NetworkDns } from '../net/result.js';
import type { RunConfig } from './config.js';
import { debug } from './debug.js';
import type { Stage0 } from './session.js';

/** rkt's --local-config default, podlog's name: net.d is below it. */
export const DEFAULT_LOCAL_CONFIG = '/etc/podlog';

/**
 * Where host-local keeps its leases: the host's addresses are one pool, whatever the data dir, and
 * on a tmpfs they go at a reboot with the network namespaces that held them (rkt #2265 kept them).
 */
export const CNI_STATE_DIR = '/run/podlog/cni';

const attachedOf = (networks: PodNetwork[] | undefined): PodNetwork[] => (networks ?? []).filter((n) => n.attached);

/**
 * Attaches the networks `cfg` selects that the pod does not have yet, in order; returns the DNS
 * their results carry (for resolv.conf when --dns says nothing). A failed attach detaches what this
 * pod holds before the error goes on: no pod is left half on its networks.
 */
export const attachNetworks = async (s: Stage0, uuid: string, cfg: RunConfig): Promise<NetworkDns | undefined> => {
  const plan = planNetworks(parseNetFlags(cfg.net), { localConfig: cfg.localConfig ?? DEFAULT_LOCAL_CONFIG, cniDataDir: CNI_STATE_DIR });
  for (const warning of plan.warnings) process.stderr.write(`podlog: ${warning}\n`);
  const dirs = pluginDirs(cfg.netPluginsDir);
  try {
    for (const n of plan.networks) {
      const have = attachedOf((await s.engine.load(uuid)).context.networks);
      if (have.some((h) => h.name === n.name)) continue;
      await s.engine.request(uuid, 'NetworkAttachRequested', { name: n.name, ifName: n.ifName, args: n.args, config: n.config, pluginDirs: dirs });
      debug(`pod ${uuid}: network ${n.name} attached on ${n.ifName}`);
    }
  } catch (e) {
    await detachNetworks(s, uuid);
    throw e;
  }
  return dnsFromNetworks(attachedOf((await s.engine.load(uuid)).context.networks).flatMap((n) => (n.summary ? [n.summary] : [])));
};

/** rkt's NETWORKS column and `networks=` field: `default:ip4=172.16.28.2`, one per attached network and address. */
export const networksText = (networks: PodNetwork[] | undefined): string =>
  attachedOf(networks)
    .flatMap((n) => (n.summary?.ips ?? []).map((ip) => `${n.name}:ip${ip.address.includes(':') ? 6 : 4}=${ip.address}`))
    .join(',');

/** Detaches every network the pod holds, the last attached first; returns how many it detached. */
export const detachNetworks = async (s: Stage0, uuid: string): Promise<number> => {
  const attached = attachedOf((await s.engine.load(uuid)).context.networks).reverse();
  for (const n of attached) {
    await s.engine.request(uuid, 'NetworkDetachRequested', { name: n.name });
    debug(`pod ${uuid}: network ${n.name} detached`);
  }
  return attached.length;
};
