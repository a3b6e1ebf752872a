/**
 * The seed's configuration (rkt's stage0 CommonConfig, PrepareConfig, RunConfig) and its checks:
 * everything malformed, and every option podlog does not implement yet, is refused by name before
 * anything is created, instead of failing half-way or being silently ignored.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { isPodlogError, PodlogError } from '../errors.js';
import { POD_ID_COUNT } from '../events/catalogue.js';
import { isAcIdentifier, isObject, parseImageManifest, showValue } from '../images/aci-manifest.js';
import { parseNetFlags } from '../net/netlist.js';
import { planNetworks, type NetworkPlan } from '../net/networks.js';
import type { Mount, PodManifest, Volume } from './pod-manifest.js';
import { stage1Image } from './stage1.js';
import { checkIsolatorFlags } from './isolators.js';
import { DEFAULT_LOCAL_CONFIG, type FetchPolicy } from '../images/policy.js';

/** Where one of the apps' files comes from: the host's, podlog's (`stage0`), none, or stage1's default. */
export type DnsMode = 'host' | 'stage0' | 'none' | 'default';
/** How resolv.conf and hosts are provided to the pod (rkt's DNSConfMode). */
export interface DnsConfMode {
  /** Where the apps' /etc/resolv.conf comes from (rkt's --dns=host|none). */
  resolv: DnsMode;
  /** Where the apps' /etc/hosts comes from (rkt's --hosts-entry=host). */
  hosts: DnsMode;
}
/** Neither file asked for: stage1's defaults. */
export const DEFAULT_DNS_CONF_MODE: DnsConfMode = { resolv: 'default', hosts: 'default' };

/** IP → host names, appended to the pod's /etc/hosts (rkt's --hosts-entry). */
export type HostsEntries = Record<string, string[]>;

/** What podlog writes in the apps' /etc/resolv.conf (rkt's --dns, --dns-search, --dns-opt, --dns-domain). */
export interface DnsConfig {
  /** Name servers' IP addresses (--dns IP). */
  servers: string[];
  /** Search domains (--dns-search). */
  searches: string[];
  /** resolv.conf options such as `ndots:2` (--dns-opt). */
  options: string[];
  /** The local domain (--dns-domain). */
  domain?: string;
}

/** One app of a pod as the CLI describes it: an image and the per-app overrides after it. */
export interface AppConfig {
  /** The image: a file path (imported first), a name (`example.com/app:1.0`) or an image id (`sha512-…`). */
  image: string;
  /** The app's name in the pod (--name); default: from the image's name. */
  name?: string;
  /** The program to run instead of the image's (--exec). */
  exec?: string;
  /** Its arguments (after `--`): after `exec`, or after the image's whole exec (as rkt appends them). */
  args: string[];
  /** The user (name or uid) it runs as instead of the image's (--user). */
  user?: string;
  /** The group (name or gid) it runs as instead of the image's (--group). */
  group?: string;
  /** Its working directory, an absolute path (--working-dir). */
  workingDir?: string;
  /** Per-app --environment NAME=VALUE. */
  environment: Record<string, string>;
  /** --mount flags given after this app's image, as given: they win over the pod-wide ones. */
  mounts?: string[];
  /**
   * rkt's per-app isolator flags, each in place of the image's isolator of its kind
   * (src/stage0/isolators.ts): --caps-retain / --caps-remove (capability names), --memory and
   * --cpu (Kubernetes quantities: 512M, 1Gi; 500m, 2), --cpu-shares, --oom-score-adj, --seccomp.
   */
  capsRetain?: string[];
  /** --caps-remove: the capabilities taken from the image's set. */
  capsRemove?: string[];
  /** --memory: the app's memory limit (512M, 1Gi). */
  memory?: string;
  /** --cpu: the app's CPU limit (500m, 2). */
  cpu?: string;
  /** --cpu-shares: its CPU weight relative to other apps. */
  cpuShares?: number;
  /** --oom-score-adj: how the kernel's OOM killer favours it (-1000 to 1000). */
  oomScoreAdj?: number;
  /** --seccomp, in place of the image's seccomp isolator. */
  seccomp?: {
    /** `retain`: only `set` is allowed; `remove`: `set` is forbidden. */
    mode: 'retain' | 'remove';
    /** Syscall names and `@group`s. */
    set: string[];
    /** What a refused call fails with: an errno name such as EPERM. */
    errno?: string;
  };
  /** rkt's --readonly-rootfs: the app's root file system is mounted read-only (its volumes are not). */
  readonlyRootfs?: boolean;
}

/** What rkt's CommonConfig carried besides the data dir, stores, debug flag and context, which are the Stage0 session's. */
export interface CommonConfig {
  /** The stage1 image directory; undefined: podlog's own (build/). */
  stage1Image?: string;
  /** A UUID chosen by the caller (tests); undefined: a new random one. */
  uuid?: string;
  /** An app sandbox (rkt's app sandbox): a pod that starts with no app, whose apps are added, started and removed while it runs. */
  mutable: boolean;
  /** How the pod's images may be fetched and who must vouch for them (default: defaultFetchPolicy()). */
  fetchPolicy?: FetchPolicy;
}

/** What `prepare` (and `run`) need to make a pod (rkt's PrepareConfig); {@link checkPrepareConfig} checks it. */
export interface PrepareConfig extends CommonConfig {
  /** The pod's apps, in order; none for a mutable pod or with `podManifest`. */
  apps: AppConfig[];
  /** --inherit-env: the apps get podlog's own environment (under --set-env's). */
  inheritEnv: boolean;
  /** --set-env NAME=VALUE, for every app; checkPrepareConfig puts the --set-env-file entries first. */
  explicitEnv: string[];
  /** --set-env-file paths; checkPrepareConfig reads them and leaves this empty. */
  envFromFile: string[];
  /** --port NAME:[HOSTIP:]HOSTPORT: an app port published on the host. */
  ports: string[];
  /** rkt's --volume, as given; --mount before the images (pod-wide), as given. */
  volumes: string[];
  /** --mount volume=NAME,target=PATH given before the images (for every app), as given. */
  mounts: string[];
  /** Each app's root as an overlay over its image's tree; false (--no-overlay): a copy of the tree. */
  useOverlay: boolean;
  /** --pod-manifest's path; checkPrepareConfig reads it into podManifestDocument and the apps. */
  podManifest?: string;
  /** The pod manifest --pod-manifest named, checked: what the pod runs, its image ids resolved at prepare. */
  podManifestDocument?: PodManifest;
  /** --private-users: the apps run in a user namespace of their own, root in it an unprivileged id outside. */
  privateUsers: boolean;
  /** --user-annotation NAME=VALUE: kept in the pod manifest and the log, for people and tools. */
  userAnnotations: Record<string, string>;
  /** --user-label NAME=VALUE: kept in the pod manifest and the log; `list` and `events` filter by them. */
  userLabels: Record<string, string>;
}

/** rkt's --insecure-options for a run: what stage1 leaves unconfined. */
export interface InsecureOptions {
  /** `capabilities`: the apps keep every capability of the bounding set. */
  disableCapabilities: boolean;
  /** `paths`: the kernel's sensitive paths (/proc/kcore, /sys/firmware …) are not masked or read-only. */
  disablePaths: boolean;
  /** `seccomp`: no seccomp filter. */
  disableSeccomp: boolean;
}

/** What `run` and `runPrepared` need beyond the pod itself (rkt's RunConfig); {@link stage1RunOptions} checks it. */
export interface RunConfig extends CommonConfig {
  /** rkt's --net list: CNI networks by name (none given: `default`), or host, or none (loopback only). */
  net: string[];
  /** rkt's --local-config: named networks are in its net.d (default /etc/podlog). */
  localConfig?: string;
  /** Where CNI plugins are looked for first (then /usr/lib/cni, /opt/cni/bin). */
  netPluginsDir?: string;
  /** --interactive: the one app's stdin, stdout and stderr on a terminal. */
  interactive: boolean;
  /** --mds-register: register the pod with the metadata service (needs a pod network). */
  mdsRegister: boolean;
  /** The pod's host name (--hostname); default: `podlog-` and its UUID. */
  hostname?: string;
  /** Where the apps' resolv.conf and hosts come from. */
  dnsConfMode: DnsConfMode;
  /** What podlog writes in resolv.conf, when it writes it. */
  dnsConfig: DnsConfig;
  /** What stage1 leaves unconfined. */
  insecureOptions: InsecureOptions;
  /** Entries added to the apps' /etc/hosts (--hosts-entry IP=NAME). */
  hostsEntries: HostsEntries;
}


export const notYet = (what: string, hint = "see the README's list of what does not work yet"): PodlogError =>
  new PodlogError('ENOTSUP', `${what} is not supported yet by podlog; ${hint}`);

const usage = (message: string): PodlogError => new PodlogError('EUSAGE', message);

/** appc's ACName: lower case letters and digits in groups joined by single dashes. */
export const isAcName = (s: string): boolean => /^[a-z0-9]+(-[a-z0-9]+)*$/.test(s);

/** NAME=VALUE (env files, --set-env, --environment, --user-label …); `where` names the source. */
export const parseKeyValue = (line: string, where: string): [string, string] => {
  const eq = line.indexOf('=');
  if (eq <= 0) throw usage(`${where}: ${JSON.stringify(line)} is not NAME=VALUE`);
  return [line.slice(0, eq), line.slice(eq + 1)];
};

/** The environment names stage1 accepts (crates/stage1 manifest.rs: is_env_name). */
export const isEnvName = (s: string): boolean => /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(s);

const checkEnv = (name: string, value: string, where: string): void => {
  if (!isEnvName(name)) throw usage(`${where}: ${JSON.stringify(name)} is not an environment variable name (a letter or _, then letters, digits, _ . -)`);
  if (value.includes('\0')) throw usage(`${where}: the value of ${name} holds a NUL byte`);
};

/** One NAME=VALUE environment entry, checked as stage1 will check it. */
const envEntry = (line: string, where: string): string => {
  checkEnv(...parseKeyValue(line, where), where);
  return line;
};

/** An env file's entries (rkt's --set-env-file): NAME=VALUE lines; blank lines and # comments skipped. */
const readEnvFile = (file: string): string[] => {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usage(`--set-env-file: cannot read ${file}: ${(e as Error).message}`);
  }
  return text
    .split('\n')
    .map((line, i) => ({ line, where: `--set-env-file ${file}, line ${i + 1}` }))
    .filter(({ line }) => line.trim() !== '' && !line.startsWith('#'))
    .map(({ line, where }) => envEntry(line, where));
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What each app's flags say, as stage1 will require it (crates/stage1 manifest.rs: check_app). */
const checkApps = (apps: AppConfig[]): void => {
  const names = new Set<string>();
  for (const app of apps) {
    if (app.image === '') throw usage('an image name cannot be empty');
    if (app.name !== undefined) {
      if (!isAcName(app.name)) throw new PodlogError('EBADNAME', `--name: invalid app name format: ${JSON.stringify(app.name)} (lower case letters and digits, joined by single dashes)`);
      if (names.has(app.name)) throw new PodlogError('EBADNAME', `--name: multiple apps with name ${app.name}`);
      names.add(app.name);
    }
    for (const flag of ['exec', 'user', 'group'] as const) if (app[flag] === '') throw usage(`--${flag} cannot be empty`);
    if (app.workingDir !== undefined && !app.workingDir.startsWith('/')) throw usage(`--working-dir: ${JSON.stringify(app.workingDir)} is not an absolute path`);
    if ([app.exec ?? '', ...app.args].some((a) => a.includes('\0'))) throw usage(`app ${app.image}: NUL byte in --exec or its arguments`);
    for (const [name, value] of Object.entries(app.environment)) checkEnv(name, value, '--environment');
    checkIsolatorFlags(app);
  }
};

const checkKeys = (map: Record<string, string>, flag: string): void => {
  if (Object.keys(map).includes('')) throw usage(`${flag}: a name cannot be empty`);
};

/** Go's strconv.ParseBool, which rkt's --volume parses readOnly and recursive with. */
const GO_BOOLS = new Map<string, boolean>([
  ...['1', 't', 'T', 'TRUE', 'true', 'True'].map((v) => [v, true] as const),
  ...['0', 'f', 'F', 'FALSE', 'false', 'False'].map((v) => [v, false] as const),
]);
const VOLUME_FIELDS = ['name', 'kind', 'source', 'readOnly', 'recursive', 'mode', 'uid', 'gid'];
/** An id as stage1 can chown to: not -1 (which chown reads as "unchanged"). */
const isId = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32 - 1;

/**
 * A volume as appc's Volume.assertValid takes it (rkt's words), with podlog's limits: a mode is
 * octal, ids fit in a uid_t. `bad` names where the volume came from.
 */
const checkVolume = (v: Record<string, unknown>, bad: (what: string) => PodlogError): Volume => {
  const extra = Object.keys(v).find((k) => !VOLUME_FIELDS.includes(k));
  if (extra !== undefined) throw bad(`unknown volume parameter ${JSON.stringify(extra)} (${VOLUME_FIELDS.join(', ')})`);
  if (typeof v.name !== 'string' || v.name === '') throw bad('name must be set');
  if (!isAcName(v.name)) throw bad(`invalid volume name ${showValue(v.name)} (lower case letters and digits, joined by single dashes)`);
  for (const flag of ['readOnly', 'recursive']) if (v[flag] !== undefined && typeof v[flag] !== 'boolean') throw bad(`${flag} is not true or false`);
  if (v.kind === 'empty') {
    if (v.source !== undefined) throw bad('source for empty volume must be empty');
    if (typeof v.mode !== 'string' || !/^[0-7]{1,5}$/.test(v.mode) || Number.parseInt(v.mode, 8) > 0o7777) throw bad(`mode ${showValue(v.mode)} is not an octal file mode (such as 0755)`);
    for (const id of ['uid', 'gid']) if (!isId(v[id])) throw bad(`${id} ${showValue(v[id])} is not a user or group id`);
  } else if (v.kind === 'host') {
    if (typeof v.source !== 'string' || v.source === '') throw bad('source for host volume cannot be empty');
    for (const field of ['mode', 'uid', 'gid']) if (v[field] !== undefined) throw bad(`${field} for host volume cannot be set`);
    if (!v.source.startsWith('/')) throw bad('source for host volume must be absolute path');
  } else {
    throw bad('unrecognized volume type: should be one of "empty", "host"');
  }
  return v as unknown as Volume;
};

/**
 * A host volume's source as stage1 will open it: an existing file or directory named by its real
 * path, since stage1 follows no symlink on the way to it (the ACE: symlinked sources are errors).
 */
const checkHostSource = (v: Volume, bad: (what: string) => PodlogError): void => {
  if (v.kind !== 'host') return;
  const source = v.source!.replace(/(.)\/+$/, '$1');
  let real: string;
  try {
    real = realpathSync(source);
  } catch (e) {
    throw bad(`source ${source} cannot be used: ${(e as Error).message}`);
  }
  if (real !== source) throw bad(`source ${source} is a symlink or passes through one (or ..): it resolves to ${real}; name the real path`);
};

/** appc's maybeSetDefaults, for a flag and a pod manifest alike: an empty volume is root's, mode 0755, unless it says otherwise. */
const withDefaults = (v: Record<string, unknown>): Record<string, unknown> => (v.kind === 'empty' ? { mode: '0755', uid: 0, gid: 0, ...v } : v);

/** The fields of a KEY=VALUE,... flag (rkt's --volume and --mount); a key given twice is refused as rkt does. */
const flagFields = (params: string[], bad: (what: string) => PodlogError): Map<string, string> => {
  const fields = new Map<string, string>();
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw bad(`${JSON.stringify(p)} is not KEY=VALUE`);
    const [key, value] = [p.slice(0, eq), p.slice(eq + 1)];
    if (fields.has(key)) throw bad(`label ${key} with multiple values`);
    fields.set(key, value);
  }
  return fields;
};

/** rkt's --volume NAME,kind=host,source=PATH[,readOnly=B][,recursive=B] or NAME,kind=empty[,mode=M][,uid=N][,gid=N] (appc's VolumeFromString). */
export const parseVolumeFlag = (flag: string): Volume => {
  const bad = (what: string) => usage(`--volume ${flag}: ${what}`);
  const [name = '', ...params] = flag.split(',');
  const v: Record<string, unknown> = { name };
  for (const [key, value] of flagFields(params, bad)) {
    if (key === 'name' || !VOLUME_FIELDS.includes(key)) throw bad(`unknown volume parameter ${JSON.stringify(key)}`);
    if (key === 'readOnly' || key === 'recursive') {
      if (!GO_BOOLS.has(value)) throw bad(`${key}=${value} is not true or false`);
      v[key] = GO_BOOLS.get(value);
    } else if (key === 'uid' || key === 'gid') {
      if (!/^[0-9]+$/.test(value)) throw bad(`${key}=${value} is not a number`);
      v[key] = Number(value);
    } else v[key] = value;
  }
  return checkVolume(withDefaults(v), bad);
};

/** rkt's --mount volume=NAME,target=PATH. */
export const parseMountFlag = (flag: string): Mount => {
  const bad = (what: string) => usage(`--mount ${flag}: ${what}`);
  const fields = flagFields(flag.split(','), bad);
  const unknown = [...fields.keys()].find((k) => k !== 'volume' && k !== 'target');
  if (unknown !== undefined) throw bad(`unknown mount parameter ${JSON.stringify(unknown)} (volume, target)`);
  const volume = fields.get('volume');
  if (volume === undefined || !isAcName(volume)) throw bad(`invalid volume name ${JSON.stringify(volume ?? '')} in --mount flag`);
  const path = fields.get('target');
  if (path === undefined) throw bad('target must be set');
  return { volume, path: checkMountPath(path, bad) };
};

/** A path as mounts compare them (rkt: path.Clean): `/a//b/./c/` is `/a/b/c`. */
export const cleanPath = (path: string): string => posix.normalize(path).replace(/(.)\/$/, '$1');

/**
 * A mount's target inside the app's root: absolute, not the root itself, no `..` (stage1 resolves
 * it inside the root anyway; a `..` is refused so that no path even looks like it leaves it).
 */
export const checkMountPath = (path: unknown, bad: (what: string) => PodlogError): string => {
  if (typeof path !== 'string' || !path.startsWith('/')) throw bad(`target ${showValue(path)} is not an absolute path`);
  if (path.split('/').includes('..')) throw bad(`target ${path} has a ".." component`);
  if (path.includes('\0')) throw bad('target holds a NUL byte');
  if (cleanPath(path) === '/') throw bad("target cannot be the app's root");
  return path;
};

/**
 * One level of mounts (pod-wide, one app's, one app of a pod manifest) against the pod's volumes:
 * every mount names a volume and no two target the same path. `bad` names where a mount came from.
 */
const checkMounts = (mounts: Mount[], volumes: Volume[], bad: (m: Mount, what: string) => PodlogError): void => {
  const seen = new Set<string>();
  for (const m of mounts) {
    if (!volumes.some((v) => v.name === m.volume)) throw bad(m, `could not find volume ${m.volume}`);
    const path = cleanPath(m.path);
    if (seen.has(path)) throw bad(m, `another mount already targets ${path}`);
    seen.add(path);
  }
};

/** Volume names are unique (rkt's PodManifest.assertValid), and host sources are real paths. */
const checkVolumes = (volumes: Volume[], bad: (v: Volume, what: string) => PodlogError): void => {
  volumes.forEach((v, i) => {
    if (volumes.slice(0, i).some((w) => w.name === v.name)) throw bad(v, `duplicate volume name ${v.name}`);
    checkHostSource(v, (what) => bad(v, what));
  });
};

/** --volume and --mount, pod-wide and per app, as stage1 will need them. */
const checkVolumeFlags = (cfg: PrepareConfig): void => {
  const volumes = cfg.volumes.map(parseVolumeFlag);
  checkVolumes(volumes, (v, what) => usage(`--volume ${cfg.volumes[volumes.indexOf(v)]}: ${what}`));
  // stage1 gives an empty volume to the pod's id; the pod has POD_ID_COUNT of them.
  for (const [i, v] of volumes.entries()) {
    for (const id of ['uid', 'gid'] as const) {
      const value = v[id];
      if (cfg.privateUsers && value !== undefined && value >= POD_ID_COUNT) {
        throw usage(`--volume ${cfg.volumes[i]}: ${id} ${value} is not one of the pod's ${POD_ID_COUNT} ids (--private-users)`);
      }
    }
  }
  for (const flags of [cfg.mounts, ...cfg.apps.map((a) => a.mounts ?? [])]) {
    const mounts = flags.map(parseMountFlag);
    checkMounts(mounts, volumes, (m, what) => usage(`--mount ${flags[mounts.indexOf(m)]}: ${what}`));
  }
};

const IMAGE_ID = /^sha512-[0-9a-f]{2,128}$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
/** The fields of appc's PodManifest, RuntimeApp and its image: any other is a mistake, refused. */
const FIELDS = {
  pod: ['acKind', 'acVersion', 'apps', 'volumes', 'isolators', 'annotations', 'ports', 'userAnnotations', 'userLabels'],
  app: ['name', 'image', 'app', 'readOnlyRootFS', 'mounts', 'annotations'],
  image: ['id', 'name', 'labels'],
  mount: ['volume', 'path', 'appVolume'],
};

/**
 * The pod manifest file --pod-manifest names, checked whole (appc's schema, podlog's limits):
 * rkt's words where rkt has them. An app section is checked as an image's is, since it replaces one.
 */
const readPodManifest = (file: string): PodManifest => {
  const bad = (what: string): PodlogError => new PodlogError('EBADMANIFEST', `--pod-manifest ${file}: ${what}`);
  const fields = (o: Record<string, unknown>, known: string[], where: string): void => {
    const extra = Object.keys(o).find((k) => !known.includes(k));
    if (extra !== undefined) throw bad(`${where}has no field ${JSON.stringify(extra)} (${known.join(', ')})`);
  };
  const pairs = (list: unknown, where: string): void => {
    if (list === undefined) return;
    const ok = (p: unknown) => isObject(p) && typeof p.name === 'string' && isAcIdentifier(p.name) && typeof p.value === 'string';
    if (!Array.isArray(list) || !list.every(ok)) throw bad(`${where} is not a list of {name, value} strings named by AC identifiers`);
  };
  const stringMap = (map: unknown, where: string): void => {
    if (map !== undefined && !(isObject(map) && Object.values(map).every((v) => typeof v === 'string'))) throw bad(`${where} is not an object of strings`);
  };
  const none = (list: unknown, where: string, what: string): void => {
    if (list !== undefined && !Array.isArray(list)) throw bad(`${where} is not a list`);
    if (Array.isArray(list) && list.length > 0) throw notYet(`${what} (${where} in --pod-manifest)`);
  };
  let m: unknown;
  try {
    m = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw isPodlogError(e) ? e : usage(`--pod-manifest: cannot read ${file}: ${(e as Error).message}`);
  }
  if (!isObject(m)) throw bad('not a JSON object');
  fields(m, FIELDS.pod, 'the pod manifest ');
  if (m.acKind !== 'PodManifest') throw bad(`acKind is ${showValue(m.acKind)}, expected "PodManifest"`);
  if (typeof m.acVersion !== 'string' || !SEMVER.test(m.acVersion)) throw bad(`acVersion ${showValue(m.acVersion)} is not a semantic version`);
  if (!Array.isArray(m.apps) || m.apps.length === 0) throw bad('pod must contain at least one application');
  if (m.volumes !== undefined && !Array.isArray(m.volumes)) throw bad('volumes is not a list');
  const volumes = ((m.volumes ?? []) as unknown[]).map((v, i) => {
    if (!isObject(v)) throw bad(`volumes[${i}] is not an object`);
    return checkVolume(withDefaults(v), (what) => bad(`volumes[${i}]: ${what}`));
  });
  checkVolumes(volumes, (v, what) => bad(`volume ${v.name}: ${what}`));
  const names = new Set<string>();
  m.apps.forEach((a: unknown, i: number) => {
    if (!isObject(a)) throw bad(`apps[${i}] is not an object`);
    fields(a, FIELDS.app, `apps[${i}] `);
    if (typeof a.name !== 'string' || !isAcName(a.name)) throw bad(`invalid app name format: ${showValue(a.name)} (apps[${i}].name)`);
    if (names.has(a.name)) throw bad(`multiple apps with same name ${a.name}`);
    names.add(a.name);
    const where = `app ${JSON.stringify(a.name)}`;
    if (!isObject(a.image) || typeof a.image.id !== 'string' || a.image.id === '') throw bad(`no image ID for app ${JSON.stringify(a.name)}`);
    // An id, never a name or a path: a pod manifest is reified (rkt does not resolve templates).
    if (!IMAGE_ID.test(a.image.id)) throw bad(`${where}: image id ${showValue(a.image.id)} is not an image id (sha512-HEX)`);
    fields(a.image, FIELDS.image, `${where} image `);
    if (a.image.name !== undefined && (typeof a.image.name !== 'string' || !isAcIdentifier(a.image.name))) throw bad(`${where}: image name ${showValue(a.image.name)} is not an AC identifier`);
    pairs(a.image.labels, `${where} image labels`);
    if (a.app !== undefined) {
      try {
        parseImageManifest(JSON.stringify({ acKind: 'ImageManifest', acVersion: '0.0.0', name: 'pod-manifest', app: a.app }), where);
      } catch (e) {
        throw bad((e as Error).message.replace(`${where}: invalid image manifest: `, `${where}: `));
      }
      if (((a.app as { exec?: string[] }).exec ?? []).length === 0) throw bad(`${where}: app.exec is empty`);
      if (JSON.stringify(a.app).includes('\\u0000')) throw bad(`${where}: NUL byte in the app section`);
    }
    if (a.readOnlyRootFS !== undefined && typeof a.readOnlyRootFS !== 'boolean') throw bad(`${where}: readOnlyRootFS is not true or false`);
    if (a.mounts !== undefined && !Array.isArray(a.mounts)) throw bad(`${where}: mounts is not a list`);
    const mounts = ((a.mounts ?? []) as unknown[]).map((mount, j) => {
      const at = (what: string) => bad(`${where}: mounts[${j}]: ${what}`);
      if (!isObject(mount)) throw at('not an object');
      fields(mount, FIELDS.mount, `${where} mounts[${j}] `);
      if (mount.appVolume !== undefined) throw notYet(`a mount's own volume (${where}: mounts[${j}].appVolume in --pod-manifest)`);
      if (typeof mount.volume !== 'string' || !isAcName(mount.volume)) throw at(`invalid volume name ${showValue(mount.volume)}`);
      return { volume: mount.volume, path: checkMountPath(mount.path, at) };
    });
    checkMounts(mounts, volumes, (mount, what) => bad(`${where}: the mount on ${mount.path}: ${what}`));
    pairs(a.annotations, `${where}: annotations`);
  });
  none(m.ports, 'ports', 'ports');
  none(m.isolators, 'isolators', 'pod isolators');
  pairs(m.annotations, 'annotations');
  if ((m.annotations as Array<{ name: string; value: string }> | undefined)?.some((a) => a.name === 'coreos.com/rkt/stage1/mutable' && a.value === 'true')) {
    throw notYet('a mutable pod (app add/rm/start/stop)');
  }
  stringMap(m.userAnnotations, 'userAnnotations');
  stringMap(m.userLabels, 'userLabels');
  return m as unknown as PodManifest;
};

/** appc's ExposedPort: an app port's name, published on the host's port (on one host address, or all). */
export interface ExposedPort {
  /** The app port's name, as the image's manifest names it. */
  name: string;
  /** The host's port it is published on (1 to 65535). */
  hostPort: number;
  /** The one host address it is published on; absent: all of them. */
  hostIP?: string;
}

/** rkt's --port NAME:HOSTPORT or NAME:HOSTIP:HOSTPORT (the address may be IPv6: the port is after the last colon). */
export const parsePortFlag = (flag: string): ExposedPort => {
  const bad = (what: string) => usage(`--port ${flag}: ${what}`);
  const first = flag.indexOf(':');
  const last = flag.lastIndexOf(':');
  if (first <= 0) throw bad('expected NAME:HOSTPORT or NAME:HOSTIP:HOSTPORT');
  const name = flag.slice(0, first);
  if (!isAcName(name)) throw bad(`${JSON.stringify(name)} is not a port name (lower case letters and digits, joined by single dashes)`);
  const portText = flag.slice(last + 1);
  const hostPort = Number(portText);
  if (!/^[0-9]+$/.test(portText) || hostPort < 1 || hostPort > 65535) throw bad(`${JSON.stringify(portText)} is not a host port (1 to 65535)`);
  if (first === last) return { name, hostPort };
  const hostIP = flag.slice(first + 1, last).replace(/^\[(.*)\]$/, '$1');
  if (isIP(hostIP) === 0) throw bad(`${JSON.stringify(hostIP)} is not an IP address`);
  return { name, hostPort, hostIP };
};

/** Each flag well formed; one host port (on one address) published once, one app port once. */
const checkPortFlags = (flags: string[]): void => {
  const ports = flags.map(parsePortFlag);
  ports.forEach((p, i) => {
    const earlier = ports.slice(0, i);
    if (earlier.some((q) => q.name === p.name)) throw usage(`--port ${flags[i]}: port ${p.name} is published twice`);
    if (earlier.some((q) => q.hostPort === p.hostPort && (q.hostIP ?? '') === (p.hostIP ?? ''))) throw usage(`--port ${flags[i]}: host port ${p.hostPort} is published twice`);
  });
};

/** rkt: the apps, their environment, volumes and ports come from the pod manifest alone. */
const podManifestConflicts = (cfg: PrepareConfig): string[] =>
  Object.entries({
    'an image': cfg.apps.length > 0,
    '--set-env': cfg.explicitEnv.length > 0,
    '--set-env-file': cfg.envFromFile.length > 0,
    '--inherit-env': cfg.inheritEnv,
    '--volume': cfg.volumes.length > 0,
    '--mount': cfg.mounts.length > 0,
    '--port': cfg.ports.length > 0,
    '--user-annotation': Object.keys(cfg.userAnnotations).length > 0,
    '--user-label': Object.keys(cfg.userLabels).length > 0,
  })
    .filter(([, given]) => given)
    .map(([flag]) => flag);

/** The apps a pod manifest describes, as prepare resolves and names them: each by its image id. */
const appsOf = (manifest: PodManifest): AppConfig[] =>
  manifest.apps.map((a) => {
    const [exec, ...args] = (a.app as { exec?: string[] } | undefined)?.exec ?? [];
    return { image: a.image.id, name: a.name, ...(exec !== undefined ? { exec } : {}), args, environment: {} };
  });

/**
 * Refuses what prepare cannot do yet and what is malformed, before anything is created, and returns
 * the config with every file it names read: the --set-env-file entries, checked, come first in
 * explicitEnv (rkt applies the files, then --set-env) and envFromFile is empty; --pod-manifest's
 * file becomes podManifestDocument and the apps. Writing the pod manifest then reads nothing and
 * cannot fail on the user's input. A checked config checks again unchanged.
 *
 * @throws `PodlogError` EUSAGE (a malformed or conflicting setting, a file that cannot be read),
 * EBADNAME (an app name), EBADMANIFEST (the --pod-manifest file or an isolator), ENOTSUP (what
 * podlog does not do yet).
 */
export const checkPrepareConfig = <C extends PrepareConfig>(cfg: C): C => {
  // A mutable pod (app sandbox) starts with no app: its apps are added while it runs.
  if (cfg.mutable && (cfg.apps.length > 0 || cfg.podManifest !== undefined)) throw usage('a mutable pod starts with no app: add apps with podlog app add');
  if (cfg.podManifest !== undefined) {
    const conflicts = podManifestConflicts(cfg);
    if (conflicts.length > 0) throw usage(`conflicting flags set with --pod-manifest: ${conflicts.join(', ')} (the pod manifest describes the apps)`);
    const { podManifest, ...rest } = cfg;
    const document = readPodManifest(podManifest);
    return checkPrepareConfig({ ...rest, podManifestDocument: document, apps: appsOf(document) } as C);
  }
  checkPortFlags(cfg.ports);
  if (cfg.apps.length === 0 && !cfg.mutable) throw usage('pod must contain at least one application');
  if (cfg.uuid !== undefined && !UUID.test(cfg.uuid)) throw usage(`${JSON.stringify(cfg.uuid)} is not a UUID`);
  checkApps(cfg.apps);
  checkVolumeFlags(cfg);
  checkKeys(cfg.userAnnotations, '--user-annotation');
  checkKeys(cfg.userLabels, '--user-label');
  stage1Image(cfg.stage1Image);
  const explicitEnv = [...cfg.envFromFile.flatMap(readEnvFile), ...cfg.explicitEnv.map((line) => envEntry(line, '--set-env'))];
  return { ...cfg, explicitEnv, envFromFile: [] };
};


/**
 * Where host-local keeps its leases: the host's addresses are one pool, whatever the data dir, and
 * on a tmpfs they go at a reboot with the network namespaces that held them (rkt #2265 kept them).
 */
export const CNI_STATE_DIR = '/run/podlog/cni';

/** The networks a pod run with `cfg` joins: net.d read and every name found, or an error saying what is wrong. */
export const networkPlan = (cfg: Pick<RunConfig, 'net' | 'localConfig'>): NetworkPlan =>
  planNetworks(parseNetFlags(cfg.net), { localConfig: cfg.localConfig ?? DEFAULT_LOCAL_CONFIG, cniDataDir: CNI_STATE_DIR });

/** How stage1 gets the pod's network: the host's, a namespace of its own with loopback only, or the one its CNI networks are attached to. */
const networkOf = (cfg: RunConfig): Stage1RunOptions['net'] => {
  const { mode } = networkPlan(cfg);
  return mode === 'contained' ? 'netns' : mode;
};

/** An RFC 1123 label: letters, digits and inner dashes, 1 to 63 of them. */
const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** A DNS name: RFC 1123 labels joined by single dots, at most 253 bytes (what stage1 takes for names in its files). */
export const isDnsName = (s: string): boolean => s.length <= 253 && s.split('.').every((label) => DNS_LABEL.test(label));

/** A host name the kernel takes (at most 64 bytes) made of DNS labels. */
const checkHostname = (hostname: string): void => {
  if (hostname.length > 64 || !isDnsName(hostname)) {
    throw usage(`--hostname: ${JSON.stringify(hostname)} is not a valid host name (DNS labels of letters, digits and inner dashes, joined by dots; at most 64 characters)`);
  }
};

/** A resolv.conf(5) option: a lower-case word, with a number after a colon for some (ndots:2). */
const RESOLV_OPTION = /^[a-z][a-z0-9-]*(:[0-9]+)?$/;

const checkDnsValues = (dns: DnsConfig, hostsEntries: HostsEntries): void => {
  const names: Array<[string, string[]]> = [
    ['--dns-search', dns.searches],
    ['--dns-domain', dns.domain === undefined ? [] : [dns.domain]],
    ['--hosts-entry', Object.values(hostsEntries).flat()],
  ];
  for (const [flag, values] of names) {
    const bad = values.find((v) => !isDnsName(v));
    if (bad !== undefined) throw usage(`${flag}: ${JSON.stringify(bad)} is not a DNS name (labels of letters, digits and inner dashes, joined by dots)`);
  }
  const option = dns.options.find((o) => !RESOLV_OPTION.test(o));
  if (option !== undefined) throw usage(`--dns-opt: ${JSON.stringify(option)} is not a resolv.conf option (such as ndots:2 or rotate)`);
  const server = dns.servers.find((ip) => isIP(ip) === 0);
  if (server !== undefined) throw usage(`--dns: ${JSON.stringify(server)} is not an IP address`);
  const address = Object.keys(hostsEntries).find((ip) => isIP(ip) === 0);
  if (address !== undefined) throw usage(`--hosts-entry: ${JSON.stringify(address)} is not an IP address`);
};

/** rkt's parseDNSFlags: host or none stand alone; servers, searches, options or a domain are written by podlog (stage0). */
const resolvMode = (mode: DnsConfMode, dns: DnsConfig): DnsMode => {
  const custom = dns.servers.length > 0 || dns.searches.length > 0 || dns.options.length > 0 || dns.domain !== undefined;
  if ((mode.resolv === 'host' || mode.resolv === 'none') && custom) {
    throw usage(`--dns=${mode.resolv} cannot be combined with DNS servers, --dns-search, --dns-opt or --dns-domain`);
  }
  // Nothing to write is the default, whatever mode a library caller named.
  return custom ? 'stage0' : mode.resolv === 'stage0' ? 'default' : mode.resolv;
};

/** rkt's --hosts-entry modes: `host` alone, or IP=NAME entries (stage0). */
const hostsMode = (mode: DnsConfMode, entries: HostsEntries): DnsMode => {
  const custom = Object.keys(entries).length > 0;
  if (mode.hosts === 'host' && custom) throw usage('--hosts-entry=host cannot be combined with IP=NAME entries');
  if (mode.hosts === 'none') throw usage('--hosts-entry: none is not a hosts mode (host, or IP=NAME entries)');
  return custom ? 'stage0' : mode.hosts === 'stage0' ? 'default' : mode.hosts;
};

/**
 * How stage1 is to run the pod, as Stage1StartRequested records it: the network, and where the
 * apps' /etc/resolv.conf and /etc/hosts come from, with what podlog writes in them (the values are
 * recorded only when they are used).
 */
export interface Stage1RunOptions {
  /** The host's network, a namespace with loopback only, or one the pod's CNI networks are attached to. */
  net: 'host' | 'none' | 'netns';
  /** Where resolv.conf comes from; `stage0`: podlog writes `dnsConfig`. */
  dns: DnsMode;
  /** Where /etc/hosts comes from; `stage0`: podlog writes `hostsEntries`. */
  hosts: DnsMode;
  /** What podlog writes in resolv.conf, with `dns` `stage0` only. */
  dnsConfig?: DnsConfig;
  /** What podlog adds to /etc/hosts, with `hosts` `stage0` only. */
  hostsEntries?: HostsEntries;
  /** The one app's stdin, stdout and stderr on a terminal stage1 allocates (rkt's --interactive). */
  interactive?: true;
  /** rkt's --insecure-options for the run: what stage1 leaves unconfined. */
  insecure?: Array<'capabilities' | 'paths' | 'seccomp'>;
}

/**
 * The stage1 flags a RunConfig turns into; refuses what is malformed and what stage1 cannot do yet.
 *
 * @throws `PodlogError` EUSAGE (a malformed or conflicting setting), ENET_NOT_FOUND or ENET_CONFIG
 * (a network --net names that net.d does not have, or has wrong).
 */
export const stage1RunOptions = (cfg: RunConfig): Stage1RunOptions => {
  for (const [flag, dir] of [['--local-config', cfg.localConfig], ['--net-plugins-dir', cfg.netPluginsDir]] as const) {
    if (dir === '') throw usage(`${flag} cannot be empty`);
  }
  const net = networkOf(cfg);
  if (cfg.hostname !== undefined) checkHostname(cfg.hostname);
  checkDnsValues(cfg.dnsConfig, cfg.hostsEntries);
  const dns = resolvMode(cfg.dnsConfMode, cfg.dnsConfig);
  const hosts = hostsMode(cfg.dnsConfMode, cfg.hostsEntries);
  // The service knows a pod by its address on a pod network (rkt refused --net=none too).
  if (cfg.mdsRegister && net !== 'netns') throw usage(`--mds-register needs a pod network: not --net=${net}`);
  const insecure = (['capabilities', 'paths', 'seccomp'] as const).filter(
    (o) => cfg.insecureOptions[({ capabilities: 'disableCapabilities', paths: 'disablePaths', seccomp: 'disableSeccomp' } as const)[o]],
  );
  return {
    net,
    dns,
    hosts,
    ...(dns === 'stage0' ? { dnsConfig: cfg.dnsConfig } : {}),
    ...(hosts === 'stage0' ? { hostsEntries: cfg.hostsEntries } : {}),
    ...(cfg.interactive ? { interactive: true as const } : {}),
    ...(insecure.length > 0 ? { insecure } : {}),
  };
};

/** A Stage1StartRequested as recorded: older podlogs recorded no hosts mode and no values. */
export type RecordedStage1Options = { hostname: string; net: string; dns: string } & Partial<Pick<Stage1RunOptions, 'hosts' | 'dnsConfig' | 'hostsEntries' | 'interactive' | 'insecure'>>;

/** stage1 init's flags for a recorded Stage1StartRequested (docs/stage1.md). */
export const stage1InitArgs = (o: RecordedStage1Options): string[] => [
  '--hostname', o.hostname,
  '--net', o.net,
  ...(o.dns === 'stage0' ? [] : ['--dns', o.dns]),
  ...(o.dnsConfig?.servers ?? []).flatMap((ip) => ['--dns-server', ip]),
  ...(o.dnsConfig?.searches ?? []).flatMap((d) => ['--dns-search', d]),
  ...(o.dnsConfig?.options ?? []).flatMap((opt) => ['--dns-opt', opt]),
  ...(o.dnsConfig?.domain !== undefined ? ['--dns-domain', o.dnsConfig.domain] : []),
  ...(o.hosts === 'host' ? ['--hosts', 'host'] : []),
  ...Object.entries(o.hostsEntries ?? {}).flatMap(([ip, names]) => ['--hosts-entry', `${ip}=${names.join(',')}`]),
  ...(o.interactive ? ['--interactive'] : []),
  ...insecureFlags(o.insecure ?? []),
];

/** stage1's flags for rkt's --insecure-options (init takes all three, enter those about its process). */
export const insecureFlags = (insecure: readonly string[]): string[] =>
  insecure.flatMap((i) => ({ capabilities: ['--disable-capabilities-restriction'], paths: ['--disable-paths'], seccomp: ['--disable-seccomp'] })[i] ?? []);
