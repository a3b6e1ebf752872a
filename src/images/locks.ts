/**
 * The image store's locks: flocks on directories, through the addon. rkt's prepareLock keeps
 * `image gc` (exclusive) from removing a tree that a `prepare` (shared) is about to use; per-tree locks
 * make two renders of one tree produce one tree.
 */
import { mkdirSync } from 'node:fs';
import { closeFd, lockDir } from '../native.js';
import { storeLayout } from './layout.js';

/** Runs `fn` holding a lock on directory `dir` (created if missing), waiting for it as long as it takes. */
export const withDirLock = async <T>(dir: string, shared: boolean, fn: () => Promise<T>): Promise<T> => {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const fd = await lockDir(dir, { shared, wait: true });
  try {
    return await fn();
  } finally {
    closeFd(fd);
  }
};

/**
 * Runs `fn` under rkt's prepareLock: shared by default (prepare, fetch: many at once), exclusive for
 * `image gc`, which must not remove a tree or image that a preparation in progress is about to use.
 */
export const withPrepareLock = <T>(dataDir: string, fn: () => Promise<T>, { exclusive = false }: { exclusive?: boolean } = {}): Promise<T> =>
  withDirLock(storeLayout(dataDir).prepareLock, !exclusive, fn);
