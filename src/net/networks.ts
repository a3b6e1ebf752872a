/**
 * rkt's networks: which configurations a pod attaches to, in which order, on which interface.
 *
 * As rkt's stage1 loads them (networking/podenv.go): the user's configurations from
 * `<local-config>/net.d` in file-name order, keeping those the selection names (every one for `all`),
 * the first of a name winning over later files; then, unless a loaded network is already called
 * `default` or `default-restricted`, the built-in `default` when it was asked for (or `all`) and else
 * `default-restricted`, so that a pod always reaches its host. Interfaces are eth0, eth1, ... in that
 * order. A user file named `default` replaces the built-in one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PodlogError } from '../errors.js';
import { parseNetworkConfig, type NetworkConfigList, type PluginConfig } from './config.js';
import type { NetSelection } from './netlist.js';

/** rkt's default network: a veth pair to the host, masqueraded, with a default route. */
export const DEFAULT_NETWORK: NetworkConfigList = {
  name: 'default',
  cniVersion: '0.4.0',
  disableCheck: false,
  plugins: [{ type: 'ptp', ipMasq: true, ipam: { type: 'host-local', subnet: '172.16.28.0/24', routes: [{ dst: '0.0.0.0/0' }] } }],
};

/**
 * rkt's default-restricted network: the host only (no default route, no masquerade), so that a pod
 * not on `default` still reaches services on its host. rkt's last release used 172.17.0.0/16, which
 * is Docker's default bridge; podlog takes 172.31.0.0/16.
 */
export const DEFAULT_RESTRICTED_NETWORK: NetworkConfigList = {
  name: 'default-restricted',
  cniVersion: '0.4.0',
  disableCheck: false,
  plugins: [{ type: 'ptp', ipMasq: false, ipam: { type: 'host-local', subnet: '172.31.0.0/16' } }],
};

/** One network a pod joins. */
export interface PlannedNetwork {
  name: string;
  /** The interface in the pod: eth0, eth1, ... in attach order. */
  ifName: string;
  /** CNI_ARGS from `--net=NAME:K=V;...`, or ''. */
  args: string;
  /** The configuration list as it is to be run (host-local's dataDir already set). */
  config: NetworkConfigList;
  /** Where it came from: a file in net.d, or `built-in`. */
  source: string;
}

export interface NetworkPlan {
  /** `host`: the caller's namespace; `none`: loopback only; `contained`: the networks below. */
  mode: NetSelection['mode'];
  networks: PlannedNetwork[];
  /** What rkt printed on stderr while loading (a file overriding a built-in network, a duplicate name). */
  warnings: string[];
}

export interface PlanOptions {
  /** `--local-config`: net.d is below it. */
  localConfig: string;
  /**
   * Where host-local keeps its leases (`<cniDataDir>/networks/<net>/<ip>`): podlog's data dir, never
   * /var/lib/cni, so that podlog's gc can find what its pods hold.
   */
  cniDataDir: string;
}

export const netDir = (localConfig: string): string => join(localConfig, 'net.d');

interface Loaded {
  config: NetworkConfigList;
  source: string;
}

/** The configuration files of net.d, sorted by name as rkt sorts them (bytewise); none if it is absent. */
const configFiles = (dir: string): string[] => {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new PodlogError('ENET_CONFIG', `cannot read ${dir}: ${(e as Error).message}`);
  }
  return names
    .filter((n) => n.endsWith('.conf') || n.endsWith('.conflist'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n))
    .filter((path) => statSync(path).isFile());
};

const readConfig = (path: string): NetworkConfigList => {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PodlogError('ENET_CONFIG', `cannot read ${path}: ${(e as Error).message}`);
  }
  return parseNetworkConfig(text, path);
};

/** The user's networks the selection names, first file of a name winning (rkt's loadUserNets). */
const userNetworks = (sel: Extract<NetSelection, { mode: 'contained' }>, dir: string, warnings: string[]): Loaded[] => {
  const loaded: Loaded[] = [];
  // Every file is parsed, even one not asked for: its name is inside it, and a broken file is said.
  for (const path of configFiles(dir)) {
    const config = readConfig(path);
    if (!sel.all && !sel.nets.has(config.name)) continue;
    const first = loaded.find((l) => l.config.name === config.name);
    if (first !== undefined) {
      warnings.push(`network "${config.name}" is already defined by ${first.source}; ignoring ${path}`);
      continue;
    }
    if (config.name === DEFAULT_NETWORK.name || config.name === DEFAULT_RESTRICTED_NETWORK.name) warnings.push(`overriding the "${config.name}" network with ${path}`);
    loaded.push({ config, source: path });
  }
  return loaded;
};

const withDataDir = (plugin: PluginConfig, cniDataDir: string): PluginConfig => {
  const { ipam } = plugin;
  if (typeof ipam !== 'object' || ipam === null || (ipam as { type?: unknown }).type !== 'host-local') return plugin;
  return { ...plugin, ipam: { ...ipam, dataDir: join(cniDataDir, 'networks') } };
};

/** Which networks a pod with `selection` attaches to, in order, each with its interface and arguments. */
export const planNetworks = (selection: NetSelection, opts: PlanOptions): NetworkPlan => {
  const warnings: string[] = [];
  if (selection.mode !== 'contained') return { mode: selection.mode, networks: [], warnings };
  const dir = netDir(opts.localConfig);
  const loaded = userNetworks(selection, dir, warnings);
  const has = (name: string): boolean => loaded.some((l) => l.config.name === name);
  if (!has(DEFAULT_NETWORK.name) && !has(DEFAULT_RESTRICTED_NETWORK.name)) {
    const builtIn = selection.all || selection.nets.has(DEFAULT_NETWORK.name) ? DEFAULT_NETWORK : DEFAULT_RESTRICTED_NETWORK;
    loaded.push({ config: builtIn, source: 'built-in' });
  }
  const missing = [...selection.nets.keys()].filter((name) => !has(name));
  if (missing.length > 0) {
    throw new PodlogError('ENET_NOT_FOUND', `network${missing.length > 1 ? 's' : ''} not found: ${missing.join(', ')} (no configuration in ${dir} has ${missing.length > 1 ? 'these names' : 'this name'})`);
  }
  const networks = loaded.map(({ config, source }, i): PlannedNetwork => ({
    name: config.name,
    ifName: `eth${i}`,
    args: selection.nets.get(config.name) ?? '',
    config: { ...config, plugins: config.plugins.map((p) => withDataDir(p, opts.cniDataDir)) },
    source,
  }));
  return { mode: 'contained', networks, warnings };
};
