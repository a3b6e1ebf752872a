/**
 * CNI network configurations as the spec defines them: a configuration list (`.conflist`: name,
 * cniVersion, plugins run in order) or a single network configuration (`.conf`), which is a list of
 * one. Parsing checks what the runtime relies on (a name, each plugin's type) and keeps every other
 * field as written: the plugins own them.
 */
import { PodlogError } from '../errors.js';
import { isJsonObject, type JsonObject } from './json.js';
import { isPluginType } from './plugins.js';

/** One plugin's configuration, as written; the runtime only adds name, cniVersion, prevResult and runtimeConfig. */
export type PluginConfig = { type: string } & JsonObject;

export interface NetworkConfigList {
  name: string;
  cniVersion: string;
  /** `disableCheck: true`: the runtime must not call CHECK on this network. */
  disableCheck: boolean;
  plugins: PluginConfig[];
}

/**
 * What a configuration without cniVersion means: plugins read a missing version as 0.1.0, and rkt's
 * own configurations and documentation long had none.
 */
const UNVERSIONED = '0.1.0';

/** libcni's rule for network names (ValidateNetworkName); plugins use the name in file and chain names. */
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const VERSION = /^\d+\.\d+\.\d+$/;

const bad = (source: string, message: string): PodlogError => new PodlogError('ENET_CONFIG', `${source}: ${message}`);

const pluginOf = (source: string, v: unknown, at: string): PluginConfig => {
  if (!isJsonObject(v)) throw bad(source, `${at} is not a JSON object`);
  const { type } = v;
  if (typeof type !== 'string' || type === '') throw bad(source, `${at} has no "type" (the name of its CNI plugin)`);
  if (!isPluginType(type)) throw bad(source, `${at} has type ${JSON.stringify(type)}, which is not a plugin name`);
  return v as PluginConfig;
};

const nameOf = (source: string, v: unknown): string => {
  if (typeof v !== 'string' || v === '') throw bad(source, 'the network has no "name"');
  if (!NETWORK_NAME.test(v)) throw bad(source, `network name ${JSON.stringify(v)} must start with a letter or digit and have only letters, digits, '_', '.' and '-'`);
  return v;
};

const versionOf = (source: string, v: unknown): string => {
  if (v === undefined) return UNVERSIONED;
  if (typeof v !== 'string' || !VERSION.test(v)) throw bad(source, `"cniVersion" must be a version such as "1.0.0", not ${JSON.stringify(v)}`);
  return v;
};

/** A configuration list from the text of a `.conflist` or `.conf` (`source` names it in errors). */
export const parseNetworkConfig = (text: string, source: string): NetworkConfigList => {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(source, `not valid JSON (${(e as Error).message})`);
  }
  if (!isJsonObject(doc)) throw bad(source, 'not a JSON object');
  const name = nameOf(source, doc.name);
  const cniVersion = versionOf(source, doc.cniVersion);
  if (!('plugins' in doc)) return { name, cniVersion, disableCheck: false, plugins: [pluginOf(source, doc, 'the network')] };
  const { plugins, disableCheck } = doc;
  if (!Array.isArray(plugins) || plugins.length === 0) throw bad(source, '"plugins" must be a non-empty list');
  if (disableCheck !== undefined && typeof disableCheck !== 'boolean') throw bad(source, '"disableCheck" must be true or false');
  return { name, cniVersion, disableCheck: disableCheck === true, plugins: plugins.map((p, i) => pluginOf(source, p, `plugin ${i + 1}`)) };
};

/** Whether version `a` is at least `b` (both x.y.z, compared numerically). */
export const versionAtLeast = (a: string, b: string): boolean => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) {
    const d = (x![i] ?? 0) - (y![i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
};
