/**
 * Running a network configuration list per the CNI spec (as libcni does): ADD runs the plugins in
 * order, each given the previous one's result as `prevResult`; DEL runs them in reverse and CHECK in
 * order, both given the ADD's result. The runtime injects `name` and `cniVersion` from the list into
 * each plugin's configuration, and `runtimeConfig` with the capabilities that plugin declares.
 *
 * podlog keeps no result cache of its own (libcni keeps one in /var/lib/cni/results): the caller
 * records the ADD result in the pod's log and hands it back to DEL and CHECK.
 */
import { PodlogError } from '../errors.js';
import { versionAtLeast, type NetworkConfigList, type PluginConfig } from './config.js';
import { execPlugin, type CniCommand, type PluginInvocation } from './exec.js';
import type { JsonObject } from './json.js';
import { findPlugin } from './plugins.js';

export type CniResult = JsonObject;

export interface Attachment extends PluginInvocation {
  /**
   * Capability arguments (`portMappings`, `bandwidth`, ...): each is passed in `runtimeConfig` only
   * to the plugins whose `capabilities` declare it, as the spec's conventions say.
   */
  capabilityArgs?: JsonObject;
  /** How long one plugin may take before it is killed. */
  timeoutMs?: number;
}

/** The spec's rules for a container id (must start alphanumeric; then alphanumerics, '_', '.', '-'). */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The spec's rules for an interface name: Linux's (under 16 bytes, no '/', ':' or space, not . or ..). */
const isIfName = (s: string): boolean => s.length > 0 && s.length < 16 && !/[/:\s]/.test(s) && s !== '.' && s !== '..';

const checkAttachment = (att: Attachment): void => {
  if (!CONTAINER_ID.test(att.containerId)) throw new PodlogError('EUSAGE', `CNI container id ${JSON.stringify(att.containerId)} is not valid`);
  if (!isIfName(att.ifName)) throw new PodlogError('EUSAGE', `interface name ${JSON.stringify(att.ifName)} is not valid (under 16 characters, no '/', ':' or spaces)`);
};

/** prevResult on DEL came with spec 0.4.0; older plugins are given none (libcni's rule). */
const delGetsResult = (list: NetworkConfigList): boolean => versionAtLeast(list.cniVersion, '0.4.0');

const runtimeConfigOf = (plugin: PluginConfig, args: JsonObject | undefined): JsonObject | undefined => {
  const caps = plugin.capabilities;
  if (args === undefined || typeof caps !== 'object' || caps === null) return undefined;
  const declared = Object.entries(caps).filter(([name, on]) => on === true && name in args);
  return declared.length === 0 ? undefined : Object.fromEntries(declared.map(([name]) => [name, args[name]]));
};

/** What one plugin reads on stdin. */
const stdinOf = (list: NetworkConfigList, plugin: PluginConfig, prevResult: CniResult | undefined, att: Attachment): JsonObject => {
  const runtimeConfig = runtimeConfigOf(plugin, att.capabilityArgs);
  return {
    ...plugin,
    name: list.name,
    cniVersion: list.cniVersion,
    ...(prevResult === undefined ? {} : { prevResult }),
    ...(runtimeConfig === undefined ? {} : { runtimeConfig }),
  };
};

const describe = (list: NetworkConfigList, plugin: PluginConfig): string => `network "${list.name}": CNI plugin ${plugin.type}`;

/** Every plugin's binary, found before any runs: an unknown type then fails with nothing created. */
const binaries = (list: NetworkConfigList, att: Attachment): string[] => list.plugins.map((p) => findPlugin(p.type, att.pluginDirs));

const call = (command: CniCommand, list: NetworkConfigList, paths: string[], i: number, prevResult: CniResult | undefined, att: Attachment) => {
  const plugin = list.plugins[i]!;
  return execPlugin(paths[i]!, command, stdinOf(list, plugin, prevResult, att), att, describe(list, plugin), att.timeoutMs);
};

/**
 * DEL of plugins `last` down to 0. Every one is run even when one fails, so that each releases what
 * it holds; the first failure is then thrown.
 */
const deleteFrom = async (list: NetworkConfigList, paths: string[], last: number, att: Attachment, result: CniResult | undefined): Promise<void> => {
  const prevResult = delGetsResult(list) ? result : undefined;
  const failures: unknown[] = [];
  for (let i = last; i >= 0; i--) {
    await call('DEL', list, paths, i, prevResult, att).catch((e: unknown) => failures.push(e));
  }
  const [first] = failures;
  if (first === undefined) return;
  if (failures.length > 1 && first instanceof Error) first.message += ` (and ${failures.length - 1} more of the network's plugins failed DEL)`;
  throw first;
};

/**
 * ADD: attaches the pod to the network and resolves to the last plugin's result, which DEL and
 * CHECK need back. When a plugin fails, the plugins run so far are DELeted, the failed one too
 * (it may have stopped half-way; DEL is idempotent), before its error is thrown: nothing is left
 * half-attached, and the CNI rule that every ADD is followed by a DEL holds.
 */
export const addNetwork = async (list: NetworkConfigList, att: Attachment): Promise<CniResult> => {
  checkAttachment(att);
  const paths = binaries(list, att);
  let result: CniResult | undefined;
  for (let i = 0; i < paths.length; i++) {
    try {
      result = await call('ADD', list, paths, i, result, att);
    } catch (e) {
      await deleteFrom(list, paths, i, att, result).catch((undo: unknown) => {
        if (e instanceof Error) e.message += `; undoing the plugins that ran failed too: ${undo instanceof Error ? undo.message : String(undo)}`;
      });
      throw e;
    }
  }
  return result!;
};

/**
 * DEL: detaches the pod, releasing what the plugins hold (addresses, rules, links). `addResult` is the
 * ADD's result when it is known. Idempotent, as the spec asks of plugins: after a DEL, a failed ADD,
 * or with the pod's namespace gone, it succeeds.
 */
export const delNetwork = async (list: NetworkConfigList, att: Attachment, addResult?: CniResult): Promise<void> => {
  checkAttachment(att);
  await deleteFrom(list, binaries(list, att), list.plugins.length - 1, att, addResult);
};

/**
 * CHECK: each plugin, in order, checks that what the ADD made is still in place; the first failure is
 * thrown. Spec 0.4.0 introduced CHECK, so an older list is refused; `disableCheck` skips it.
 */
export const checkNetwork = async (list: NetworkConfigList, att: Attachment, addResult: CniResult): Promise<void> => {
  checkAttachment(att);
  if (!versionAtLeast(list.cniVersion, '0.4.0')) {
    throw new PodlogError('ENOTSUP', `network "${list.name}" has cniVersion ${list.cniVersion}: CNI's CHECK needs 0.4.0 or later`);
  }
  if (list.disableCheck) return;
  const paths = binaries(list, att);
  for (let i = 0; i < paths.length; i++) await call('CHECK', list, paths, i, addResult, att);
};
