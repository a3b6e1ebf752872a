/**
 * The seed's configuration (rkt's stage0 CommonConfig, PrepareConfig, RunConfig), with the options
 * podlog does not implement yet refused by name instead of silently ignored.
 */
import { PodlogError } from '../errors.js';

/** How resolv.conf and hosts are provided to the pod (rkt's DNSConfMode). */
export type DnsMode = 'host' | 'stage0' | 'none' | 'default';
export interface DnsConfMode {
  resolv: DnsMode;
  hosts: DnsMode;
}
export const DEFAULT_DNS_CONF_MODE: DnsConfMode = { resolv: 'default', hosts: 'default' };

/** IP → host names, appended to the pod's /etc/hosts (rkt's --hosts-entry). */
export type HostsEntries = Record<string, string[]>;

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
  domain?: string;
}

/** One app of a pod as the CLI describes it: an image and the per-app overrides after it. */
export interface AppConfig {
  image: string;
  name?: string;
  exec?: string;
  args: string[];
  user?: string;
  group?: string;
  workingDir?: string;
  /** Per-app --environment NAME=VALUE. */
  environment: Record<string, string>;
}

/** What rkt's CommonConfig carried besides the data dir, stores, debug flag and context, which are the Stage0 session's. */
export interface CommonConfig {
  /** The stage1 image directory; undefined: podlog's own (build/). */
  stage1Image?: string;
  /** A UUID chosen by the caller (tests); undefined: a new random one. */
  uuid?: string;
  mutable: boolean;
}

export interface PrepareConfig extends CommonConfig {
  apps: AppConfig[];
  inheritEnv: boolean;
  /** --set-env NAME=VALUE, for every app. */
  explicitEnv: string[];
  envFromFile: string[];
  ports: string[];
  /** rkt's --volume and --mount, as given. */
  volumes: string[];
  mounts: string[];
  useOverlay: boolean;
  podManifest?: string;
  privateUsers: boolean;
  userAnnotations: Record<string, string>;
  userLabels: Record<string, string>;
}

export interface InsecureOptions {
  disableCapabilities: boolean;
  disablePaths: boolean;
  disableSeccomp: boolean;
}

export interface RunConfig extends CommonConfig {
  /** rkt's --net list; podlog: host, or none (a network namespace with loopback only). */
  net: string[];
  interactive: boolean;
  mdsRegister: boolean;
  hostname?: string;
  dnsConfMode: DnsConfMode;
  dnsConfig: DnsConfig;
  insecureOptions: InsecureOptions;
  hostsEntries: HostsEntries;
}

const notYet = (what: string, hint = "see the README's list of what does not work yet"): PodlogError =>
  new PodlogError('ENOTSUP', `${what} is not supported yet by podlog; ${hint}`);

/** Refuses what prepare cannot do yet, before anything is created. */
export const checkPrepareSupported = (cfg: PrepareConfig): void => {
  if (cfg.mutable) throw notYet('a mutable pod (app add/rm/start/stop)');
  if (cfg.podManifest !== undefined) throw notYet('--pod-manifest');
  if (cfg.ports.length > 0) throw notYet('--port');
  if (cfg.volumes.length > 0) throw notYet('--volume');
  if (cfg.mounts.length > 0) throw notYet('--mount');
  if (!cfg.useOverlay) throw notYet('--no-overlay');
  if (cfg.privateUsers) throw notYet('--private-users');
};

/** The stage1 flags a RunConfig turns into; refuses what stage1 cannot do yet. */
export const stage1RunOptions = (cfg: RunConfig): { net: 'host' | 'none'; dns: 'default' | 'host' | 'none' } => {
  const nets = cfg.net.length === 0 ? ['none'] : cfg.net;
  if (nets.length !== 1 || !['host', 'none', 'default'].includes(nets[0]!)) {
    throw notYet(`--net=${nets.join(',')} (CNI networks)`, 'use --net=none (loopback only) or --net=host');
  }
  if (nets[0] === 'default') throw notYet('--net=default (a CNI network)', 'use --net=none (loopback only) or --net=host');
  if (cfg.dnsConfMode.resolv === 'stage0' || cfg.dnsConfig.servers.length || cfg.dnsConfig.searches.length || cfg.dnsConfig.options.length || cfg.dnsConfig.domain) {
    throw notYet('--dns with servers, --dns-search, --dns-opt or --dns-domain');
  }
  if (cfg.dnsConfMode.hosts !== 'default' || Object.keys(cfg.hostsEntries).length > 0) throw notYet('--hosts-entry');
  if (cfg.interactive) throw notYet('--interactive');
  const { disableCapabilities, disablePaths, disableSeccomp } = cfg.insecureOptions;
  if (disableCapabilities || disablePaths || disableSeccomp) throw notYet('--insecure-options other than image');
  return { net: nets[0] as 'host' | 'none', dns: cfg.dnsConfMode.resolv as 'default' | 'host' | 'none' };
};
