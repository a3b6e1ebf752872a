/**
 * rkt's flags for run, prepare and run-prepared: pod-level flags anywhere, an image starts an app,
 * per-app flags (--exec, --name, --user, …) apply to the image before them, `--` starts that app's
 * arguments and `---` ends them. Each verb takes the flags rkt's does, and the whole command line is
 * checked (files read, the stage1 image looked at) before anything is created.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { PodlogError } from '../errors.js';
import {
  checkPrepareConfig,
  parseKeyValue,
  stage1RunOptions,
  type AppConfig,
  type DnsMode,
  type HostsEntries,
  type PrepareConfig,
  type RunConfig,
} from '../stage0/config.js';
import { parseSeccompFlag } from '../stage0/seccomp.js';
import { DEFAULT_LOCAL_CONFIG, localConfigOf, type FetchPolicy } from '../images/policy.js';
import { parseInsecureOptions } from './insecure-options.js';
import type { Flag, FlagGroup } from './command.js';
import { booleanValue } from './parse.js';
import { didYouMeanFlag } from './suggest.js';

/** `app-sandbox` and `app-add` are `podlog app sandbox` (a mutable pod, run with no app) and `podlog app add` (one app, after its pod's UUID). */
export type RunVerb = 'run' | 'prepare' | 'run-prepared' | 'app-sandbox' | 'app-add';

export interface FlagSpec {
  /** `bool`: --flag or --flag=true|false; `value`: --flag=V or --flag V. */
  takes: 'bool' | 'value';
  /**
   * `app` flags apply to the image before them; `pod` flags to the pod, wherever they are;
   * `app-or-pod` flags (rkt's --mount) to the image before them, or to the pod before any image.
   */
  scope: 'app' | 'pod' | 'app-or-pod';
  verbs: readonly RunVerb[];
  /** What help says: the value's placeholder (value flags), what the flag does, and a default computed when it runs. */
  value?: string;
  description: string;
  shownDefault?: string;
}

const PREPARING: readonly RunVerb[] = ['run', 'prepare'];
const APPS: readonly RunVerb[] = [...PREPARING, 'app-add'];
const SANDBOX: readonly RunVerb[] = [...PREPARING, 'app-sandbox'];
const RUNNING: readonly RunVerb[] = ['run', 'run-prepared', 'app-sandbox'];
/** Every run verb acquires an image or starts a pod: fetch's checks and the local config (keys, credentials, networks) apply to all. */
const ALL: readonly RunVerb[] = ['run', 'prepare', 'run-prepared', 'app-sandbox', 'app-add'];
const valued = (scope: FlagSpec['scope'], verbs: readonly RunVerb[], value: string, description: string, shownDefault?: string): FlagSpec =>
  ({ takes: 'value', scope, verbs, value, description, ...(shownDefault !== undefined ? { shownDefault } : {}) });
const onOff = (scope: FlagSpec['scope'], verbs: readonly RunVerb[], description: string): FlagSpec => ({ takes: 'bool', scope, verbs, description });

/**
 * Every flag of the run verbs (a Map: a flag named like an Object property is just unknown), with
 * what help says of it. rkt's run has no --mutable: a mutable pod is `app sandbox`'s.
 */
export const RUN_VERB_FLAGS: ReadonlyMap<string, FlagSpec> = new Map([
  ['exec', valued('app', APPS, 'PATH', "the app's command instead of its image's")],
  ['name', valued('app', APPS, 'NAME', "the app's name in the pod instead of its image's")],
  ['user', valued('app', APPS, 'USER', 'the user the app runs as (a name in the image, or a uid)')],
  ['group', valued('app', APPS, 'GROUP', 'the group the app runs as (a name in the image, or a gid)')],
  ['working-dir', valued('app', APPS, 'DIR', "the app's working directory")],
  ['environment', valued('app', APPS, 'NAME=VALUE', "a variable of the app's environment (repeatable)")],
  ['caps-retain', valued('app', APPS, 'CAP,...', 'the only capabilities the app keeps')],
  ['caps-remove', valued('app', APPS, 'CAP,...', 'capabilities taken from the default set')],
  ['memory', valued('app', APPS, 'SIZE', "the app's memory limit (e.g. 512M)")],
  ['cpu', valued('app', APPS, 'CORES', "the app's CPU limit in cores (e.g. 0.5 or 500m)")],
  ['cpu-shares', valued('app', APPS, 'N', "the app's CPU weight against other apps")],
  ['oom-score-adj', valued('app', APPS, 'N', "the app's OOM score adjustment (-1000 to 1000)")],
  ['seccomp', valued('app', APPS, 'mode=retain|remove,[errno=NAME,]SYSCALL|@GROUP,...', "the app's seccomp filter")],
  ['readonly-rootfs', onOff('app', APPS, "mount the app's root filesystem read-only")],
  ['set-env', valued('pod', PREPARING, 'NAME=VALUE', "a variable in every app's environment (repeatable)")],
  ['set-env-file', valued('pod', PREPARING, 'FILE', "variables in every app's environment, NAME=VALUE a line")],
  ['pod-manifest', valued('pod', PREPARING, 'FILE', 'run the pod this pod manifest describes (no IMAGE arguments)')],
  ['port', valued('pod', PREPARING, 'NAME:[HOSTIP:]HOSTPORT', "forward a host port to an app's named port (repeatable)")],
  ['uuid-file-save', valued('pod', SANDBOX, 'FILE', "write the pod's UUID to FILE once it exists")],
  ['user-annotation', valued('pod', SANDBOX, 'KEY=VALUE', 'an annotation on the pod (repeatable)')],
  ['user-label', valued('pod', SANDBOX, 'KEY=VALUE', 'a label on the pod, for list --filter (repeatable)')],
  ['stage1-path', valued('pod', SANDBOX, 'DIR', 'the stage1 to run the pod with')],
  ['volume', valued('pod', SANDBOX, 'NAME,kind=host|empty,...', 'a volume: kind=host,source=PATH[,readOnly=true][,recursive=true] or kind=empty[,mode=0755][,uid=N][,gid=N] (repeatable)')],
  ['mount', valued('app-or-pod', APPS, 'volume=NAME,target=PATH', 'mount a volume in the app before it (or in every app, before any image)')],
  ['inherit-env', onOff('pod', PREPARING, "pass podlog's own environment to the apps")],
  ['no-overlay', onOff('pod', PREPARING, "copy each app's image instead of mounting an overlay on it")],
  ['private-users', onOff('pod', PREPARING, "run the pod in a user namespace of its own (root in the pod is not the host's)")],
  ['quiet', onOff('pod', ['prepare'], "accepted for rkt's scripts: prepare prints nothing but the pod's UUID anyway")],
  ['insecure-options', valued('pod', ALL, 'none|http|tls|image|all-fetch|ondisk|capabilities|paths|seccomp|all-run|all,...', 'checks to skip when fetching images or running the pod')],
  ['local-config', valued('pod', ALL, 'DIR', 'the local configuration: trusted keys, registry credentials, networks', DEFAULT_LOCAL_CONFIG)],
  ['net', valued('pod', RUNNING, 'default|NAME[:K=V;...],...|none|host', 'the networks the pod joins', '$PODLOG_NET, else default')],
  ['hostname', valued('pod', RUNNING, 'NAME', "the pod's host name", 'podlog-UUID')],
  ['dns', valued('pod', RUNNING, 'default|host|none|IP', "the pod's name servers, or where resolv.conf comes from (repeatable)")],
  ['dns-search', valued('pod', RUNNING, 'DOMAIN', "a search domain in the pod's resolv.conf (repeatable)")],
  ['dns-opt', valued('pod', RUNNING, 'OPT', "an option in the pod's resolv.conf (repeatable)")],
  ['dns-domain', valued('pod', RUNNING, 'DOMAIN', "the domain in the pod's resolv.conf")],
  ['hosts-entry', valued('pod', RUNNING, 'IP=NAME[,NAME...]|host', "an entry of the pod's /etc/hosts, or host for the host's (repeatable)")],
  ['net-plugins-dir', valued('pod', RUNNING, 'DIR', 'a directory searched for CNI plugins before /usr/lib/cni and /opt/cni/bin')],
  ['interactive', onOff('pod', ['run', 'run-prepared'], "connect the terminal to the pod's only app")],
  ['mds-register', onOff('pod', ['run', 'run-prepared'], 'register the pod with the metadata service')],
  ['uuid-file', valued('pod', ['run-prepared'], 'FILE', "read the pod's UUID from FILE")],
]);

/** The flags of a run verb as help shows them: the pod's, then each app's (after its image). */
export const runVerbFlags = (verb: RunVerb): FlagGroup[] => {
  const group = (title: string, app: boolean): FlagGroup => ({
    title,
    options: Object.fromEntries(
      [...RUN_VERB_FLAGS]
        // app add has one app and takes only fetch flags for the pod: its --mount is the app's.
        .filter(([, s]) => s.verbs.includes(verb) && (s.scope === 'app' || (s.scope === 'app-or-pod' && verb === 'app-add')) === app)
        .map(([name, s]) => [name, { type: s.takes === 'bool' ? 'boolean' : 'string', description: s.description, ...(s.value !== undefined ? { value: s.value } : {}), ...(s.shownDefault !== undefined ? { shownDefault: s.shownDefault } : {}) } satisfies Flag]),
    ),
  });
  return [group('Flags', false), group('App flags (each applies to the IMAGE before it)', true)].filter((g) => Object.keys(g.options).length > 0);
};

export interface RunFlags {
  verb: RunVerb;
  /** run and prepare: the apps, each an image with its flags and arguments. */
  apps: AppConfig[];
  /** run-prepared: the pod's UUID as given. */
  uuids: string[];
  /** Pod-level flags, each with every value it was given. */
  flags: Map<string, string[]>;
}

const usage = (message: string): PodlogError => new PodlogError('EUSAGE', message);

/** A verb as the user types it. */
const verbName = (verb: RunVerb): string => verb.replace(/^app-/, 'app ');


const integer = (flag: string, v: string): number => {
  if (!/^-?\d{1,16}$/.test(v)) throw usage(`--${flag}: ${JSON.stringify(v)} is not an integer`);
  return Number(v);
};

const setAppFlag = (app: AppConfig, name: string, value: string): void => {
  if (name === 'environment') {
    const [k, v] = parseKeyValue(value, '--environment');
    // A computed key is an own property even when it is "__proto__".
    app.environment = { ...app.environment, [k]: v };
  } else if (name === 'working-dir') app.workingDir = value;
  else if (name === 'caps-retain') app.capsRetain = value.split(',');
  else if (name === 'caps-remove') app.capsRemove = value.split(',');
  else if (name === 'memory' || name === 'cpu') app[name] = value;
  else if (name === 'cpu-shares') app.cpuShares = integer(name, value);
  else if (name === 'oom-score-adj') app.oomScoreAdj = integer(name, value);
  else if (name === 'seccomp') app.seccomp = parseSeccompFlag(value);
  else if (name === 'readonly-rootfs') app.readonlyRootfs = value === 'true';
  else if (name === 'mount') app.mounts = [...(app.mounts ?? []), value];
  else app[name as 'exec' | 'name' | 'user' | 'group'] = value;
};

export const parseRunFlags = (argv: string[], verb: RunVerb = 'run'): RunFlags => {
  const f: RunFlags = { verb, apps: [], uuids: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      const app = f.apps.at(-1);
      if (!app) throw usage(verb === 'run-prepared' ? 'run-prepared takes no app arguments ("--")' : '"--" (app arguments) must follow an image');
      for (i++; i < argv.length && argv[i] !== '---'; i++) app.args.push(argv[i]!);
      continue;
    }
    if (token === '---') throw usage('"---" ends the arguments an app was given after "--"; there is no "--" before it');
    if (!token.startsWith('-')) {
      if (verb === 'run-prepared' || (verb === 'app-add' && f.uuids.length === 0 && f.apps.length === 0)) f.uuids.push(token);
      else f.apps.push({ image: token, args: [], environment: {} });
      continue;
    }
    const eq = token.indexOf('=');
    const flag = token.slice(0, eq === -1 ? undefined : eq);
    const name = flag.slice(2);
    const s = flag.startsWith('--') ? RUN_VERB_FLAGS.get(name) : undefined;
    if (!s) throw usage(`unknown flag ${flag}${didYouMeanFlag(flag, [...RUN_VERB_FLAGS].filter(([, f]) => f.verbs.includes(verb)).map(([n]) => n))} (see podlog ${verbName(verb).split(' ')[0]} --help)`);
    if (!s.verbs.includes(verb)) {
      // The app verbs are named to those who use them.
      const owners = s.verbs.filter((v) => !v.startsWith('app-') || verb.startsWith('app-'));
      throw usage(`${verbName(verb)}: ${flag} is a flag of ${owners.map(verbName).join(' and ')}, not of ${verbName(verb)}`);
    }
    let value: string;
    if (s.takes === 'bool') value = String(booleanValue(flag, eq === -1 ? '' : token.slice(eq + 1)));
    else if (eq !== -1) value = token.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i]!;
    else throw usage(`${flag} needs a value`);

    const app = f.apps.at(-1);
    if (s.scope === 'pod' || (s.scope === 'app-or-pod' && !app)) f.flags.set(name, [...(f.flags.get(name) ?? []), value]);
    else if (!app) throw usage(`${flag} must follow the image it applies to`);
    else setAppFlag(app, name, value);
  }
  return f;
};

const one = (f: RunFlags, name: string): string | undefined => f.flags.get(name)?.at(-1);
const all = (f: RunFlags, name: string): string[] => (f.flags.get(name) ?? []).flatMap((v) => (name === 'net' || name === 'dns' || name === 'insecure-options' ? v.split(',') : [v]));
const bool = (f: RunFlags, name: string): boolean => one(f, name) === 'true';
const pairs = (f: RunFlags, name: string): Record<string, string> => Object.fromEntries(all(f, name).map((kv) => parseKeyValue(kv, `--${name}`)));

const DNS_MODES = new Set(['host', 'none', 'default']);

/** rkt's --dns: host, none or default alone, or name servers. */
const dnsFlag = (values: string[]): { mode?: DnsMode; servers: string[] } => {
  const bad = values.find((v) => !DNS_MODES.has(v) && isIP(v) === 0);
  if (bad !== undefined) throw usage(`--dns: ${JSON.stringify(bad)} is not an IP address, host, none or default`);
  const mode = values.find((v) => DNS_MODES.has(v)) as DnsMode | undefined;
  if (mode !== undefined && values.length > 1) throw usage(`--dns=${mode} must be the only --dns (got --dns=${values.join(',')})`);
  return { ...(mode !== undefined ? { mode } : {}), servers: values.filter((v) => !DNS_MODES.has(v)) };
};

/** rkt's --hosts-entry: `host`, or IP=NAME[,NAME…] entries. */
const hostsFlag = (values: string[]): { mode: DnsMode; entries: HostsEntries } => {
  const entries: HostsEntries = {};
  for (const v of values.filter((h) => h !== 'host')) {
    const [ip, names] = parseKeyValue(v, '--hosts-entry');
    if (isIP(ip) === 0) throw usage(`--hosts-entry: ${JSON.stringify(ip)} is not an IP address`);
    if (names.split(',').includes('')) throw usage(`--hosts-entry: ${JSON.stringify(v)} is not IP=NAME[,NAME...]`);
    entries[ip] = [...(entries[ip] ?? []), ...names.split(',')];
  }
  return { mode: values.includes('host') ? 'host' : Object.keys(entries).length > 0 ? 'stage0' : 'default', entries };
};

/** The rules for acquiring the images of a run verb: --insecure-options and --local-config. */
export const fetchPolicyOf = (f: RunFlags): FetchPolicy => ({
  localConfig: localConfigOf(one(f, 'local-config')), ...parseInsecureOptions(all(f, 'insecure-options')).fetch,
});

/** The stage0 configuration the flags describe; what the flags alone show to be malformed is refused here. */
export const configFrom = (f: RunFlags): PrepareConfig & RunConfig => {
  const dns = dnsFlag(all(f, 'dns'));
  const searches = all(f, 'dns-search');
  const options = all(f, 'dns-opt');
  const domain = one(f, 'dns-domain');
  const custom = dns.servers.length > 0 || searches.length > 0 || options.length > 0 || domain !== undefined;
  const hosts = hostsFlag(all(f, 'hosts-entry'));
  return {
    ...(one(f, 'stage1-path') !== undefined ? { stage1Image: one(f, 'stage1-path') } : {}),
    mutable: f.verb === 'app-sandbox',
    apps: f.apps,
    inheritEnv: bool(f, 'inherit-env'),
    explicitEnv: all(f, 'set-env'),
    envFromFile: all(f, 'set-env-file'),
    ports: all(f, 'port'),
    volumes: all(f, 'volume'),
    mounts: all(f, 'mount'),
    useOverlay: !bool(f, 'no-overlay'),
    ...(one(f, 'pod-manifest') !== undefined ? { podManifest: one(f, 'pod-manifest') } : {}),
    privateUsers: bool(f, 'private-users'),
    userAnnotations: pairs(f, 'user-annotation'),
    userLabels: pairs(f, 'user-label'),
    // rkt's default is the `default` network; $PODLOG_NET, like $PODLOG_DIR, names another.
    net: f.flags.has('net') ? all(f, 'net') : (process.env.PODLOG_NET?.split(',').filter((n) => n !== '') ?? []),
    ...(one(f, 'local-config') !== undefined ? { localConfig: one(f, 'local-config') } : {}),
    ...(one(f, 'net-plugins-dir') !== undefined ? { netPluginsDir: one(f, 'net-plugins-dir') } : {}),
    interactive: bool(f, 'interactive'),
    mdsRegister: bool(f, 'mds-register'),
    ...(one(f, 'hostname') !== undefined ? { hostname: one(f, 'hostname') } : {}),
    // rkt: name servers, searches, options or a domain make resolv.conf stage0's to write.
    dnsConfMode: { resolv: dns.mode ?? (custom ? 'stage0' : 'default'), hosts: hosts.mode },
    dnsConfig: { servers: dns.servers, searches, options, ...(domain !== undefined ? { domain } : {}) },
    insecureOptions: parseInsecureOptions(all(f, 'insecure-options')).run,
    fetchPolicy: fetchPolicyOf(f),
    hostsEntries: hosts.entries,
  };
};

/** Why --uuid-file-save could not be written once the pod exists, if it could not. */
const unwritable = (file: string): string | undefined => {
  if (file === '' || file.endsWith('/')) return 'not a file name';
  const dir = dirname(resolve(file));
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    accessSync(dir, constants.W_OK);
    return statSync(file, { throwIfNoEntry: false })?.isDirectory() ? 'it is a directory' : undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

export interface RunInput {
  /** The checked configuration: for run and prepare, as checkPrepareConfig returns it. */
  cfg: PrepareConfig & RunConfig;
  /** --uuid-file-save, whose directory exists and is writable. */
  uuidFileSave?: string;
  /** run-prepared: the pod, as its arguments or --uuid-file give it. */
  uuids: string[];
  uuidFile?: string;
}

/** A run verb's command line, checked whole: a refusal here has created nothing. */
export const checkRunFlags = (argv: string[], verb: RunVerb): RunInput => {
  const f = parseRunFlags(argv, verb);
  const parsed = configFrom(f);
  stage1RunOptions(parsed);
  const uuidFileSave = one(f, 'uuid-file-save');
  const problem = uuidFileSave === undefined ? undefined : unwritable(uuidFileSave);
  if (problem !== undefined) throw usage(`--uuid-file-save: cannot write ${JSON.stringify(uuidFileSave)}: ${problem}`);
  const uuidFile = one(f, 'uuid-file');
  return {
    cfg: verb === 'run-prepared' ? parsed : checkPrepareConfig(parsed),
    ...(uuidFileSave !== undefined ? { uuidFileSave } : {}),
    uuids: f.uuids,
    ...(uuidFile !== undefined ? { uuidFile } : {}),
  };
};
