/**
 * How the store stays truthful across a power loss without paying for fsync on every import. Blobs
 * and trees are written without syncing (syncing 100 MB costs more than writing it); each write that
 * is not yet known to be on disk is tagged with the boot id it happened in. Data written in the
 * current boot is safe from anything but a power loss, which is also a reboot: so anything tagged with
 * an older boot id is checked against its digest once before use, then untagged.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootId } from '../engine/liveness.js';
import type { StoreLayout } from './layout.js';

const markerPath = (l: StoreLayout, id: string): string => join(l.cas, 'unsynced', id);

/** Tags image `id`'s stored content as written in this boot and not synced. */
export const markUnsynced = (l: StoreLayout, id: string): void => {
  mkdirSync(join(l.cas, 'unsynced'), { recursive: true, mode: 0o750 });
  writeFileSync(markerPath(l, id), bootId());
};

/** Whether image `id` was stored in an earlier boot without being synced, so it must be checked. */
export const unsyncedSinceReboot = (l: StoreLayout, id: string): boolean => {
  try {
    return readFileSync(markerPath(l, id), 'utf8') !== bootId();
  } catch {
    return false;
  }
};

/** Drops the tag: the content was read back and matched its digest (so it is on disk), or is gone. */
export const clearUnsynced = (l: StoreLayout, id: string): void => rmSync(markerPath(l, id), { force: true });
