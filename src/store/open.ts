/** Opens the event store a data dir uses (the embedded SQLite log). */
import { existsSync, mkdirSync } from 'node:fs';
import { eventLogPath } from '../config.js';
import { PodlogError } from '../errors.js';
import type { EventStore } from './port.js';
import { openSqliteStore } from './sqlite.js';

export interface OpenOptions {
  /** For inspection: never create or write anything; a missing log is an error. */
  readonly?: boolean;
}

export const openStore = async (dir: string, options: OpenOptions = {}): Promise<EventStore> => {
  const file = eventLogPath(dir);
  if (options.readonly) {
    if (!existsSync(file)) throw new PodlogError('ENOSTORE', `no podlog event log in ${dir} (${file} does not exist)`);
    return openSqliteStore(file, { readonly: true });
  }
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  return openSqliteStore(file);
};
