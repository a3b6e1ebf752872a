/**
 * Opens the event store a command uses, by URL: `sqlite:PATH` (the embedded default, the data dir's
 * events.db) or `postgres://…` (one log shared by many hosts: src/store/postgres.ts).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { storeUrl } from '../config.js';
import { PodlogError } from '../errors.js';
import type { EventStore } from './port.js';
import { openMemorySqliteStore, openSqliteStore } from './sqlite.js';
import { probeFile } from './sqlite-schema.js';

/**
 * - `write` (the default): a verb that records; creates the SQLite log (0600, its directory 0700) if
 *   missing, and a PostgreSQL log's schema if missing, and migrates either.
 * - `read`: a verb that reports (list, status): creates nothing, and a missing SQLite log (or an empty
 *   file) reads as an empty log. An existing log is opened as for `write`: such a verb may still
 *   record what it finds (exits, reconciled intents) and save projections.
 * - `inspect`: as `read`, but an existing log is opened read-only (events, replay).
 */
export type StoreAccess = 'write' | 'read' | 'inspect';

export interface OpenOptions {
  access?: StoreAccess;
  /** The log's URL (default: --store's rules, src/config.ts storeUrl). */
  url?: string;
}

const SQLITE = 'sqlite:';

/** The log a data dir's commands use: `url`, else PODLOG_STORE, else `<dir>/events.db`. */
export const openStore = (dir: string, { access = 'write', url = storeUrl(dir) }: OpenOptions = {}): Promise<EventStore> => openStoreAt(url, access);

export const openStoreAt = async (url: string, access: StoreAccess = 'write'): Promise<EventStore> => {
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore(url, { readonly: access === 'inspect' });
  }
  if (!url.startsWith(SQLITE) || url.length === SQLITE.length) {
    throw new PodlogError('EUSAGE', `--store: ${JSON.stringify(url)} is not a store URL (sqlite:PATH or postgres://USER@HOST/DB)`);
  }
  const file = url.slice(SQLITE.length);
  if (access !== 'write') {
    const { kind } = probeFile(file);
    if (kind === 'missing' || kind === 'empty') return openMemorySqliteStore(`${file} (absent: read as an empty log)`);
  }
  if (access === 'inspect') return openSqliteStore(file, { readonly: true });
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  return openSqliteStore(file);
};
