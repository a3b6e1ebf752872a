/** Where podlog keeps its data: --dir, then PODLOG_DIR, then rkt-like defaults. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export const defaultDataDir = (): string =>
  process.getuid?.() === 0 ? '/var/lib/podlog' : join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'podlog');

export const dataDir = (flag?: string): string => flag ?? process.env.PODLOG_DIR ?? defaultDataDir();

/** The embedded event log: one SQLite file in the data dir. */
export const eventLogPath = (dir: string): string => join(dir, 'events.db');
