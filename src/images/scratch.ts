/**
 * cas/tmp/: where everything is written before it is renamed into the store, and where whatever
 * leaves the store is renamed before it is deleted. Each name carries its creator's pid, so that
 * `image gc` can tell a dead process's leftovers from a live one's work.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreLayout } from './layout.js';

/** A fresh name in cas/tmp/ (created, the directory, if missing). */
export const scratch = (l: StoreLayout, what: string): string => {
  mkdirSync(l.tmp, { recursive: true, mode: 0o700 });
  return join(l.tmp, `${what}-${process.pid}-${randomBytes(4).toString('hex')}`);
};

/** The pid in a cas/tmp/ entry's name, if it is one of ours. */
export const scratchPid = (name: string): number | undefined => {
  const m = /-(\d+)-[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
};

/**
 * Renames those of `paths` that exist into one fresh directory in cas/tmp/, each in one step, and
 * returns that directory for the caller to delete: the store never shows a half-deleted tree or image.
 */
export const moveToScratch = (l: StoreLayout, paths: readonly string[]): string => {
  const dir = scratch(l, 'removed');
  mkdirSync(dir, { mode: 0o700 });
  paths.forEach((path, i) => {
    try {
      renameSync(path, join(dir, String(i)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  });
  return dir;
};
