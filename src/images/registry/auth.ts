/**
 * Who the puller is to a registry: a user and password from rkt's `<local-config>/auth.d/*.json`
 * (`dockerAuth` v1) or from the `~/.docker/config.json` users already have ("auths", base64
 * `user:password`), and the challenges a registry answers 401 with (RFC 7235 `WWW-Authenticate`): Basic,
 * or Bearer with a token realm (the distribution token spec, docs/spec/auth/token.md).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PodlogError } from '../../errors.js';

export interface Credentials {
  user: string;
  password: string;
  /** The file they came from, for messages. */
  from: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const readJson = (file: string): unknown => {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (e) {
    throw new PodlogError('EBADCONFIG', `${file}: not a JSON file podlog can read (${(e as Error).message})`);
  }
};

/** A docker config key or rkt registry entry (`https://host/v1/`, `host`) as HOST[:PORT]. */
const hostOf = (key: string): string => key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();

/** rkt's auth.d: `{"rktKind":"dockerAuth","rktVersion":"v1","registries":[...],"credentials":{"user","password"}}`. */
const fromAuthDir = (dir: string, registry: string): Credentials | undefined => {
  if (!existsSync(dir)) return undefined;
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    const file = join(dir, name);
    const v = readJson(file) as { rktKind?: unknown; rktVersion?: unknown; registries?: unknown; credentials?: { user?: unknown; password?: unknown } };
    // Other kinds (rkt's "auth" for https hosts) are not podlog's to read here.
    if (v?.rktKind !== 'dockerAuth') continue;
    if (v.rktVersion !== 'v1') throw new PodlogError('EBADCONFIG', `${file}: dockerAuth version ${JSON.stringify(v.rktVersion)} is not v1`);
    if (!Array.isArray(v.registries) || typeof v.credentials?.user !== 'string' || typeof v.credentials.password !== 'string') {
      throw new PodlogError('EBADCONFIG', `${file}: a dockerAuth file needs "registries" (a list) and "credentials" {"user", "password"}`);
    }
    if (v.registries.some((r) => typeof r === 'string' && hostOf(r) === registry)) return { user: v.credentials.user, password: v.credentials.password, from: file };
  }
  return undefined;
};

/** Docker's config.json "auths": `{"HOST": {"auth": base64("user:password")}}`. */
const fromDockerConfig = (file: string, registry: string): Credentials | undefined => {
  if (!existsSync(file)) return undefined;
  const auths = (readJson(file) as { auths?: Record<string, { auth?: unknown }> })?.auths ?? {};
  for (const [key, entry] of Object.entries(auths)) {
    if (hostOf(key) !== registry || typeof entry?.auth !== 'string') continue;
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon === -1) throw new PodlogError('EBADCONFIG', `${file}: the "auth" of ${key} is not base64 of user:password`);
    return { user: plain.slice(0, colon), password: plain.slice(colon + 1), from: file };
  }
  return undefined;
};

/** The credentials for `registry` (HOST[:PORT]): podlog's own configuration first, then the user's Docker one. */
export const credentialsFor = (localConfig: string, registry: string, home = process.env.HOME ?? homedir()): Credentials | undefined =>
  fromAuthDir(join(localConfig, 'auth.d'), registry.toLowerCase()) ??
  fromDockerConfig(join(process.env.DOCKER_CONFIG ?? join(home, '.docker'), 'config.json'), registry.toLowerCase());

export const basicHeader = (c: Credentials): string => `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}`;

/** The challenges of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`, `Basic realm="…"`. */
export const parseChallenges = (header: string | string[] | undefined): Challenge[] => {
  const out: Challenge[] = [];
  for (const text of [header ?? []].flat()) {
    // A scheme is a token not followed by `=` (`realm = "…"`, with spaces, is a parameter).
    const re = /\s*([A-Za-z][\w-]*)(?!\s*=)(?:\s+|$)|\s*([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
    let m: RegExpExecArray | null;
    let current: Challenge | undefined;
    while (re.lastIndex < text.length && (m = re.exec(text))) {
      if (m[2] !== undefined && current) current.params[m[2].toLowerCase()] = m[3]?.replace(/\\(.)/g, '$1') ?? m[4] ?? '';
      else if (m[1] !== undefined) out.push((current = { scheme: m[1].toLowerCase(), params: {} }));
      else break;
    }
  }
  return out;
};
