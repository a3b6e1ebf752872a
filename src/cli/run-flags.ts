/**
 * rkt's flags for run, prepare and run-prepared: pod-level flags anywhere, an image starts an app,
 * per-app flags (--exec, --name, --user, …) apply to the image before them, `--` starts that app's
 * arguments and `---` ends them.
 */
import { PodlogError } from '../errors.js';
import type { AppConfig, PrepareConfig, RunConfig } from '../stage0/config.js';
import { DEFAULT_DNS_CONF_MODE } from '../stage0/config.js';
import { parseKeyValue } from '../stage0/pod-manifest.js';

const BOOLEAN = new Set(['inherit-env', 'no-overlay', 'interactive', 'mds-register', 'private-users', 'quiet', 'mutable']);
const PER_APP = new Set(['exec', 'name', 'user', 'group', 'working-dir', 'environment']);
const POD = new Set([
  'uuid-file-save', 'set-env', 'set-env-file', 'pod-manifest', 'port', 'user-annotation', 'user-label', 'stage1-path',
  'insecure-options', 'net', 'hostname', 'dns', 'dns-search', 'dns-opt', 'dns-domain', 'hosts-entry', 'volume', 'mount', 'uuid-file',
]);

export interface RunFlags {
  apps: AppConfig[];
  /** Pod-level flags, each with every value it was given. */
  flags: Map<string, string[]>;
}

const truthy = (flag: string, v: string): boolean => {
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  throw new PodlogError('EUSAGE', `--${flag}: ${JSON.stringify(v)} is not true or false`);
};

export const parseRunFlags = (argv: string[]): RunFlags => {
  const apps: AppConfig[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      const app = apps[apps.length - 1];
      if (!app) throw new PodlogError('EUSAGE', '"--" (app arguments) must follow an image');
      for (i++; i < argv.length && argv[i] !== '---'; i++) app.args.push(argv[i]!);
      continue;
    }
    if (!token.startsWith('--')) {
      apps.push({ image: token, args: [], environment: {} });
      continue;
    }
    const eq = token.indexOf('=');
    const name = token.slice(2, eq === -1 ? undefined : eq);
    let value: string;
    if (BOOLEAN.has(name)) value = String(truthy(name, eq === -1 ? '' : token.slice(eq + 1)));
    else if (PER_APP.has(name) || POD.has(name)) {
      if (eq !== -1) value = token.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i]!;
      else throw new PodlogError('EUSAGE', `--${name} needs a value`);
    } else throw new PodlogError('EUSAGE', `unknown flag --${name}`);

    if (PER_APP.has(name)) {
      const app = apps[apps.length - 1];
      if (!app) throw new PodlogError('EUSAGE', `--${name} must follow the image it applies to`);
      if (name === 'environment') {
        const [k, v] = parseKeyValue(value, '--environment');
        app.environment[k] = v;
      } else if (name === 'working-dir') app.workingDir = value;
      else app[name as 'exec' | 'name' | 'user' | 'group'] = value;
    } else flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { apps, flags };
};

const one = (f: RunFlags, name: string): string | undefined => f.flags.get(name)?.at(-1);
const all = (f: RunFlags, name: string): string[] => (f.flags.get(name) ?? []).flatMap((v) => (name === 'net' || name === 'dns' ? v.split(',') : [v]));
const bool = (f: RunFlags, name: string, fallback = false): boolean => (one(f, name) === undefined ? fallback : one(f, name) === 'true');
const pairs = (f: RunFlags, name: string): Record<string, string> => Object.fromEntries(all(f, name).map((kv) => parseKeyValue(kv, `--${name}`)));

/** The stage0 configuration the flags describe (flags podlog cannot honour yet are refused by stage0). */
export const configFrom = (f: RunFlags): PrepareConfig & RunConfig => {
  const insecure = all(f, 'insecure-options').flatMap((v) => v.split(','));
  const dns = all(f, 'dns');
  const resolv = dns.length === 1 && (dns[0] === 'host' || dns[0] === 'none') ? dns[0] : 'default';
  return {
    ...(one(f, 'stage1-path') !== undefined ? { stage1Image: one(f, 'stage1-path') } : {}),
    mutable: bool(f, 'mutable'),
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
    net: all(f, 'net'),
    interactive: bool(f, 'interactive'),
    mdsRegister: bool(f, 'mds-register'),
    ...(one(f, 'hostname') !== undefined ? { hostname: one(f, 'hostname') } : {}),
    dnsConfMode: { ...DEFAULT_DNS_CONF_MODE, resolv, hosts: all(f, 'hosts-entry').includes('host') ? 'host' : 'default' },
    dnsConfig: {
      servers: dns.filter((d) => d !== 'host' && d !== 'none'),
      searches: all(f, 'dns-search'),
      options: all(f, 'dns-opt'),
      ...(one(f, 'dns-domain') !== undefined ? { domain: one(f, 'dns-domain') } : {}),
    },
    insecureOptions: { disableCapabilities: insecure.includes('capabilities'), disablePaths: insecure.includes('paths'), disableSeccomp: insecure.includes('seccomp') },
    hostsEntries: Object.fromEntries(all(f, 'hosts-entry').filter((h) => h !== 'host').map((h) => {
      const [ip, ...names] = h.split('=');
      return [ip!, names.join('=').split(',')];
    })),
  };
};
