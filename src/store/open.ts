/** Opens the event store a data dir uses (the embedded SQLite log). */
import { mkdirSync } from 'node:fs';
import { eventLogPath } from '../config.js';
import type { EventStore } from './port.js';
import { openMemorySqliteStore, openSqliteStore } from './sqlite.js';
import { probeFile } from './sqlite-schema.js';

/**
 * - `write` (the default): a verb that records; creates the data dir (0700) and the log (0600) if missing.
 * - `read`: a verb that reports (list, status): creates nothing, and a data dir without a log (or with an
 *   empty file) reads as an empty log. An existing log is opened as for `write`: such a verb may still
 *   record what it finds (exits, reconciled intents) and save projections.
 * - `inspect`: as `read`, but an existing log is opened read-only (events, replay).
 */
export type StoreAccess = 'write' | 'read' | 'inspect';

export interface OpenOptions {
  access?: StoreAccess;
}

export const openStore = async (dir: string, { access = 'write' }: OpenOptions = {}): Promise<EventStore> => {
  const file = eventLogPath(dir);
  if (access !== 'write') {
    const { kind } = probeFile(file);
    if (kind === 'missing' || kind === 'empty') return openMemorySqliteStore(`${file} (absent: read as an empty log)`);
  }
  if (access === 'inspect') return openSqliteStore(file, { readonly: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return openSqliteStore(file);
};
