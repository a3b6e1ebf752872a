/**
 * Where a registry image's simple-signing signatures are: a "lookaside" store, as containers/image
 * keeps them (docker/registries_d.go, docker/docker_image_src.go), configured per registry in
 * `<localConfig>/registries.d/*.json`. containers' files are YAML, which podlog has no parser for;
 * podlog's are the same structure in JSON:
 *
 *   { "docker": { "127.0.0.1:5000": { "lookaside": "file:///var/lib/podlog-sigs" },
 *                 "registry.example/team/app": { "lookaside": "https://sigs.example/" } },
 *     "default-docker": { "lookaside": "file:///var/lib/podlog-sigs" } }
 *
 * `sigstore` is accepted as the old name of `lookaside`; `lookaside-staging` and `sigstore-staging`
 * (where signing tools write) are accepted and not read. A scope is HOST[:PORT], a repository or a
 * namespace of it, or a repository with its tag; the most specific one that names the image wins,
 * then default-docker. A scope defined in two files is an error, as in containers; so is any other
 * field, rather than a setting silently ignored.
 *
 * The signatures of a manifest are `<lookaside>/<repository>@<algorithm>=<hex>/signature-1`, -2, …,
 * up to the first that is missing (the layout skopeo 1.9 writes: `sigs/app/busybox@sha256=…/signature-1`
 * for 127.0.0.1:5000/app/busybox). file:// lookasides are read directly; http(s) ones with a GET each,
 * plain http only with --insecure-options=http. A signature is small: more than 64 KiB is refused.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PodlogError } from '../../errors.js';
import type { FetchPolicy } from '../policy.js';
import type { RegistryImage } from './simple-signing.js';

export const MAX_SIGNATURE = 64 * 1024;
/** containers/image stops there too (maxLookasideSignatures). */
const MAX_SIGNATURES = 128;

const SCOPE_FIELDS = new Set(['lookaside', 'sigstore', 'lookaside-staging', 'sigstore-staging']);

export const registriesDir = (localConfig: string): string => join(localConfig, 'registries.d');

interface Scope {
  lookaside?: string;
  file: string;
}

interface RegistriesConfig {
  scopes: Map<string, Scope>;
  fallback?: Scope;
}

const bad = (file: string, what: string): PodlogError => new PodlogError('EBADCONFIG', `${file}: ${what}`);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const readScope = (v: unknown, file: string, where: string): Scope => {
  if (!isObject(v)) throw bad(file, `${where} is not an object`);
  for (const [k, value] of Object.entries(v)) {
    if (!SCOPE_FIELDS.has(k)) throw bad(file, `${where}: podlog does not know ${JSON.stringify(k)} (${[...SCOPE_FIELDS].join(', ')})`);
    if (typeof value !== 'string') throw bad(file, `${where}.${k} is not a string`);
  }
  const { lookaside, sigstore } = v as Record<string, string | undefined>;
  if (lookaside !== undefined && sigstore !== undefined && lookaside !== sigstore) throw bad(file, `${where}: lookaside and sigstore (its old name) differ`);
  const url = lookaside ?? sigstore;
  if (url !== undefined && !/^(file|https?):\/\//.test(url)) throw bad(file, `${where}: the lookaside ${JSON.stringify(url)} is not a file://, http:// or https:// URL`);
  return { file, ...(url === undefined ? {} : { lookaside: url }) };
};

/** Every registries.d file, merged; absent, no lookaside at all. */
const readConfig = (localConfig: string): RegistriesConfig => {
  const dir = registriesDir(localConfig);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { scopes: new Map() };
    throw bad(dir, (e as Error).message);
  }
  const config: RegistriesConfig = { scopes: new Map() };
  for (const name of names) {
    const file = join(dir, name);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw bad(file, (e as Error).message);
    }
    if (!isObject(json)) throw bad(file, 'not a JSON object');
    for (const [key, value] of Object.entries(json)) {
      if (key === 'default-docker') {
        if (config.fallback) throw bad(file, `default-docker is defined in ${config.fallback.file} too`);
        config.fallback = readScope(value, file, key);
      } else if (key === 'docker') {
        if (!isObject(value)) throw bad(file, 'docker is not an object');
        for (const [scope, entry] of Object.entries(value)) {
          const known = config.scopes.get(scope);
          if (known) throw bad(file, `docker ${JSON.stringify(scope)} is defined in ${known.file} too`);
          config.scopes.set(scope, readScope(entry, file, `docker ${JSON.stringify(scope)}`));
        }
      } else throw bad(file, `podlog does not know ${JSON.stringify(key)} (docker, default-docker)`);
    }
  }
  return config;
};

/** The scopes that name the image, most specific first: with its tag or digest, the repository, its namespaces, the registry. */
const scopesOf = (m: RegistryImage): string[] => {
  const parts = m.repository.split('/');
  const names = parts.map((_, i) => `${m.registry}/${parts.slice(0, parts.length - i).join('/')}`);
  return [`${names[0]}${m.tag !== undefined ? `:${m.tag}` : `@${m.digest}`}`, ...names, m.registry];
};

/** The lookaside URL for the image, and the file that says so; undefined when none is configured. */
export const lookasideFor = (localConfig: string, m: RegistryImage): { url: string; file: string } | undefined => {
  const config = readConfig(localConfig);
  const scope = scopesOf(m).map((s) => config.scopes.get(s)).find((s) => s !== undefined) ?? config.fallback;
  return scope?.lookaside === undefined ? undefined : { url: scope.lookaside, file: scope.file };
};

/** The URL of the manifest's n-th signature (from 1). */
export const signatureUrl = (lookaside: string, m: RegistryImage, n: number): string =>
  `${lookaside.replace(/\/+$/, '')}/${m.repository}@${m.digest.replace(':', '=')}/signature-${n}`;

const tooLarge = (where: string): PodlogError => new PodlogError('ETOO_LARGE', `${where} is larger than the ${MAX_SIGNATURE} bytes allowed`);

const readLocal = (url: string): Buffer | undefined => {
  const path = fileURLToPath(url);
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_SIGNATURE) throw tooLarge(url);
    return bytes;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof PodlogError) throw e;
    throw new PodlogError('ESIGNATURE', `${url}: ${(e as Error).message}`);
  }
};

/** The bytes of a detached signature at `url` (an ACI's URL.asc, a lookaside's signature-N), or undefined when there is none. */
export const fetchSignature = async (url: string, policy: FetchPolicy): Promise<Buffer | undefined> => {
  // Loaded here: a run whose image needs no signature loads no HTTP client.
  const [{ httpGetFollowing }, { readCapped }] = await Promise.all([import('../http-get.js'), import('../registry/client.js')]);
  const res = await httpGetFollowing(url, policy, 'ESIGNATURE', true);
  return res && readCapped(res, MAX_SIGNATURE, url);
};

export interface FoundSignature {
  url: string;
  bytes: Buffer;
}

/** docker's grammar of a repository path: it becomes part of a path or URL, so no dot segments. */
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const DIGEST = /^sha(?:256:[0-9a-f]{64}|512:[0-9a-f]{128})$/;

/** The manifest's signatures in the lookaside, in order. */
export const readSignatures = async (lookaside: string, m: RegistryImage, policy: FetchPolicy): Promise<FoundSignature[]> => {
  if (!REPOSITORY.test(m.repository)) throw new PodlogError('EUSAGE', `${m.reference}: ${JSON.stringify(m.repository)} is not a repository name`);
  if (!DIGEST.test(m.digest)) throw new PodlogError('EUSAGE', `${m.reference}: ${JSON.stringify(m.digest)} is not a manifest digest`);
  const found: FoundSignature[] = [];
  for (let n = 1; n <= MAX_SIGNATURES; n++) {
    const url = signatureUrl(lookaside, m, n);
    const bytes = url.startsWith('file:') ? readLocal(url) : await fetchSignature(url, policy);
    if (bytes === undefined) break;
    found.push({ url, bytes });
  }
  return found;
};
