import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/port.js';

/** A fresh data dir with its own event log, removed by cleanup(). */
export const tempDataDir = async (): Promise<{ dir: string; store: EventStore; cleanup: () => Promise<void> }> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-test-'));
  const store = await openStore(dir);
  return {
    dir,
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
