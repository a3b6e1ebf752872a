/** Where podlog keeps its data: --dir, then PODLOG_DIR, then rkt-like defaults. */
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
export const storeUrl = (dir: string, flag?: string): string => flag ?? (process.env.PODLOG_STORE || `sqlite:${eventLogPath(dir)}`);

/** Read once: every event a command records carries it. */
let machineId: string | undefined;

/**
 * This host's id in a log shared by many hosts: --host-id, then PODLOG_HOST_ID, then the machine id
 * (systemd's /etc/machine-id, stable across reboots and unique per installation), else the host name.
 */
export const hostId = (flag?: string): string => {
  const id = flag ?? (process.env.PODLOG_HOST_ID || (machineId ??= readMachineId()));
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

/** Where a data dir names the host it is (src/config.ts dataDirHostId). */
export const hostIdPath = (dir: string): string => join(dir, 'host-id');

const recordedHostId = (dir: string): string | undefined => {
  try {
    return readFileSync(hostIdPath(dir), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
};

/**
 * The host a command on data dir `dir` acts for. A data dir's pods, images and locks are one host's, so
 * the dir keeps the id the first command on it used (DIR/host-id) and a command naming another is refused:
 * two ids on one dir would each leave the other's pods and images to nobody (a gc removing trees in use),
 * and a host whose default id changes (a container without /etc/machine-id, renamed) keeps its own.
 * The first command that writes to the dir binds it (bindHostId); until then the id is as asked.
 */
export const dataDirHostId = (dir: string, flag?: string): string => {
  const asked = flag ?? (process.env.PODLOG_HOST_ID || undefined);
  const recorded = recordedHostId(dir);
  if (recorded === undefined) return hostId(asked);
  if (asked !== undefined && asked !== recorded) throw anotherHost(dir, asked, recorded);
  return hostId(recorded);
};

const anotherHost = (dir: string, asked: string, recorded: string): PodlogError =>
  new PodlogError('EHOST_ID', `--host-id ${asked}: the data dir ${dir} is host ${recorded}'s (${hostIdPath(dir)}); a data dir holds one host's pods and images`);

/**
 * Binds data dir `dir` to host `id` (see dataDirHostId), making the dir if it must. A dir bound to
 * another host is refused: a library caller's id is checked here, the CLI's when it starts.
 */
export const bindHostId = (dir: string, id: string): void => {
  const recorded = recordedHostId(dir);
  if (recorded === id) return;
  if (recorded !== undefined) throw anotherHost(dir, id, recorded);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Written whole, then linked into place: a crash leaves no empty file, and of two first commands one wins.
  const written = `${hostIdPath(dir)}.${process.pid}`;
  writeFileSync(written, `${id}\n`, { mode: 0o644 });
  try {
    linkSync(written, hostIdPath(dir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    rmSync(written, { force: true });
  }
  const bound = recordedHostId(dir);
  if (bound !== id) throw anotherHost(dir, id, String(bound));
};
