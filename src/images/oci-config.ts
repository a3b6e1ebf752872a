/**
 * An OCI image config as an appc image manifest, so an OCI image runs as a pod exactly as an ACI
 * does. The mapping follows docker2aci (the appc project's converter): entrypoint + cmd → exec, env,
 * working dir (default /), user[:group] (default 0:0; a user alone keeps no group, so that stage1 takes
 * the primary and supplementary groups from the image's /etc/passwd and /etc/group as runc does, where
 * docker2aci assumed group 0), exposed ports, and os/arch as appc labels.
 */
import { PodlogError } from '../errors.js';
import type { ImageLabel } from '../events/images.js';
import { isAcIdentifier, isObject, showValue, type ImageApp, type ImageManifest } from './aci-manifest.js';

export interface OciConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  author?: string;
  config?: {
    User?: string;
    Env?: string[] | null;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    ExposedPorts?: Record<string, unknown> | null;
  };
}

const isStrings = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** The fields the mapping reads, each with the type image-spec config.md gives it (null where Go writes null). */
const FIELDS: Array<[string, (v: unknown) => boolean, string]> = [
  ['architecture', (v) => typeof v === 'string', 'a string'],
  ['os', (v) => typeof v === 'string', 'a string'],
  ['variant', (v) => typeof v === 'string', 'a string'],
  ['created', (v) => typeof v === 'string', 'a string'],
  ['author', (v) => typeof v === 'string', 'a string'],
];
const CONFIG_FIELDS: Array<[string, (v: unknown) => boolean, string]> = [
  ['User', (v) => typeof v === 'string', 'a string'],
  ['Env', (v) => v === null || isStrings(v), 'a list of strings'],
  ['Entrypoint', (v) => v === null || isStrings(v), 'a list of strings'],
  ['Cmd', (v) => v === null || isStrings(v), 'a list of strings'],
  ['WorkingDir', (v) => typeof v === 'string', 'a string'],
  ['ExposedPorts', (v) => v === null || isObject(v), 'an object'],
];

/**
 * Checks that a parsed config blob has the types the mapping relies on, so that a hostile or broken
 * config is refused naming its field; `where` names the config in the message.
 */
export const parseOciConfig = (value: unknown, where: string): OciConfig => {
  const bad = (field: string, v: unknown, type: string): PodlogError =>
    new PodlogError('EBADMANIFEST', `${where}: invalid image config: ${field} is ${showValue(v)}, not ${type}`);
  if (!isObject(value)) throw bad('the config', value, 'an object');
  const check = (o: Record<string, unknown>, fields: typeof FIELDS, prefix: string): void => {
    for (const [field, ok, type] of fields) {
      if (o[field] !== undefined && !ok(o[field])) throw bad(`${prefix}${field}`, o[field], type);
    }
  };
  check(value, FIELDS, '');
  const config = value.config;
  // Go writes null for a config without one, which the mapping reads as empty.
  if (config !== undefined && config !== null) {
    if (!isObject(config)) throw bad('config', config, 'an object');
    check(config, CONFIG_FIELDS, 'config.');
  }
  return value as OciConfig;
};

/** OCI (Go) architecture names → appc's. */
const ARCH: Record<string, string> = { amd64: 'amd64', '386': 'i386', arm64: 'aarch64', ppc64le: 'ppc64le', s390x: 's390x' };

export const appcArch = (arch: string, variant?: string): string => {
  if (arch === 'arm') return variant === 'v6' ? 'armv6l' : 'armv7l';
  return ARCH[arch] ?? arch;
};

const ENV_NAME = /^[A-Za-z_][A-Za-z_0-9.-]*$/;

/** rkt's SanitizeACIdentifier, roughly: lower case, anything else becomes `-`, edges trimmed. */
export const sanitizeIdentifier = (s: string): string => {
  const cleaned = s
    .toLowerCase()
    .replace(/[^a-z0-9._~/-]+/g, '-')
    .replace(/[-._~/]{2,}/g, (run) => run[0]!)
    .replace(/^[-._~/]+|[-._~/]+$/g, '');
  return isAcIdentifier(cleaned) ? cleaned : 'oci-image';
};

const app = (c: NonNullable<OciConfig['config']>): ImageApp => {
  const [user, group] = (c.User || '0:0').split(':');
  const exec = [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  const environment = (c.Env ?? []).flatMap((kv) => {
    const eq = kv.indexOf('=');
    const name = eq === -1 ? kv : kv.slice(0, eq);
    return ENV_NAME.test(name) ? [{ name, value: eq === -1 ? '' : kv.slice(eq + 1) }] : [];
  });
  const ports = Object.keys(c.ExposedPorts ?? {}).flatMap((spec) => {
    const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(spec);
    return m ? [{ name: `${m[1]}-${m[2] ?? 'tcp'}`, protocol: m[2] ?? 'tcp', port: Number(m[1]) }] : [];
  });
  return {
    ...(exec.length ? { exec } : {}),
    user: user || '0',
    ...(group ? { group } : {}),
    workingDirectory: c.WorkingDir || '/',
    ...(environment.length ? { environment } : {}),
    ...(ports.length ? { ports } : {}),
  };
};

/** The appc manifest of an OCI image called `name` (an AC identifier) at `version` (a tag), if any. */
export const manifestFromConfig = (config: OciConfig, name: string, version: string | undefined): ImageManifest => {
  const labels: ImageLabel[] = [];
  if (version) labels.push({ name: 'version', value: version });
  if (config.os) labels.push({ name: 'os', value: config.os });
  if (config.architecture) labels.push({ name: 'arch', value: appcArch(config.architecture, config.variant) });
  const annotations = [
    ...(config.created ? [{ name: 'created', value: config.created }] : []),
    ...(config.author ? [{ name: 'authors', value: config.author }] : []),
  ];
  return {
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name,
    labels,
    app: app(config.config ?? {}),
    ...(annotations.length ? { annotations } : {}),
  };
};
