/**
 * Where CNI plugin binaries are found. A network configuration names its plugin by `type`, and the
 * runtime execs the file of that name from the first directory that has it (the CNI spec leaves the
 * list to the runtime): `--net-plugins-dir` first, so a user can override a packaged plugin, then
 * Debian's place for them (`containernetworking-plugins`), then the upstream tarball's.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { PodlogError } from '../errors.js';

export const SYSTEM_PLUGIN_DIRS: readonly string[] = ['/usr/lib/cni', '/opt/cni/bin'];
/** The Debian package that installs the reference plugins (ptp, bridge, host-local, portmap, ...). */
export const PLUGINS_PACKAGE = 'containernetworking-plugins';

/** The directories searched, in order; also what the plugins get as CNI_PATH to find their IPAM plugins. */
export const pluginDirs = (netPluginsDir?: string): string[] =>
  netPluginsDir === undefined ? [...SYSTEM_PLUGIN_DIRS] : [netPluginsDir, ...SYSTEM_PLUGIN_DIRS];

/**
 * A plugin type is a file name: a config saying `"type": "../../bin/sh"` must not pick a binary
 * outside the plugin directories. The characters are the ones the reference plugins' names use.
 */
const PLUGIN_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
export const isPluginType = (type: string): boolean => PLUGIN_TYPE.test(type) && type !== '..';

const isExecutableFile = (path: string): boolean => {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The path of plugin `type` in the first of `dirs` that has it as an executable file. */
export const findPlugin = (type: string, dirs: readonly string[]): string => {
  if (!isPluginType(type)) {
    throw new PodlogError('ENET_CONFIG', `CNI plugin type ${JSON.stringify(type)} is not a plugin name (letters, digits, '_', '.', '+', '-'; no '/')`);
  }
  const found = dirs.map((dir) => join(dir, type)).find(isExecutableFile);
  if (found !== undefined) return found;
  throw new PodlogError(
    'ENET_PLUGIN_NOT_FOUND',
    `CNI plugin "${type}" not found in ${dirs.join(', ')}: install the Debian package ${PLUGINS_PACKAGE}, or name a directory that has it with --net-plugins-dir`,
  );
};
