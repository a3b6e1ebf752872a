/** Where podlog keeps its data: --dir, then PODLOG_DIR, then rkt-like defaults. */
import { readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { PodlogError } from './errors.js';

export const defaultDataDir = (): string =>
  process.getuid?.() === 0 ? '/var/lib/podlog' : join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'podlog');

export const dataDir = (flag?: string): string => flag ?? process.env.PODLOG_DIR ?? defaultDataDir();

/** The embedded event log: one SQLite file in the data dir. */
export const eventLogPath = (dir: string): string => join(dir, 'events.db');

/**
 * The event log a command uses: --store, then PODLOG_STORE, then the data dir's SQLite file. A URL is
 * `sqlite:PATH` or `postgres://…` (src/store/open.ts reads it).
 */
export const storeUrl = (dir: string, flag?: string): string => flag ?? process.env.PODLOG_STORE ?? `sqlite:${eventLogPath(dir)}`;

/** Read once: every event a command records carries it. */
let machineId: string | undefined;

/**
 * This host's id in a log shared by many hosts: --host-id, then PODLOG_HOST_ID, then the machine id
 * (systemd's /etc/machine-id, stable across reboots and unique per installation), else the host name.
 */
export const hostId = (flag?: string): string => {
  const id = flag ?? process.env.PODLOG_HOST_ID ?? (machineId ??= readMachineId());
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
    throw new PodlogError('EUSAGE', `--host-id: ${JSON.stringify(id)} is not a host id (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)`);
  }
  return id;
};

const readMachineId = (): string => {
  try {
    const id = readFileSync('/etc/machine-id', 'utf8').trim();
    if (id !== '') return id;
  } catch {
    // A container without systemd's file: the host name still tells hosts apart.
  }
  return hostname();
};
