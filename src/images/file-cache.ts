/**
 * Which image a file holds, remembered by the file's identity, so that `podlog run image.aci` does not
 * read and hash a large image again on every run. The identity is (device, inode, size, mtime, ctime)
 * in nanoseconds: any write to the file changes its ctime, which userspace cannot set back, so a file
 * that still matches still holds the bytes that were hashed. A miss costs only a re-hash; the cache is
 * not history and records no events.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreLayout } from './layout.js';
import { scratch } from './scratch.js';

interface Entry {
  path: string;
  identity: string;
  id: string;
}

export const fileIdentity = (path: string): string => {
  const s = statSync(path, { bigint: true });
  return [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(':');
};

const entryPath = (l: StoreLayout, path: string): string => join(l.files, createHash('sha256').update(path).digest('hex'));

/** The image id recorded for `path` (an absolute, resolved path), if the file has not changed since. */
export const cachedImageId = (l: StoreLayout, path: string): string | undefined => {
  let entry: Entry;
  try {
    entry = JSON.parse(readFileSync(entryPath(l, path), 'utf8')) as Entry;
  } catch {
    return undefined;
  }
  return entry.path === path && entry.identity === fileIdentity(path) ? entry.id : undefined;
};

/** Records that `path` holds image `id`, given the file's identity taken before it was read. */
export const rememberImageId = (l: StoreLayout, path: string, id: string, before: string): void => {
  // A file changed while it was being read proves nothing about its new content.
  if (fileIdentity(path) !== before) return;
  mkdirSync(l.files, { recursive: true, mode: 0o750 });
  const file = entryPath(l, path);
  const tmp = scratch(l, 'file-cache');
  writeFileSync(tmp, JSON.stringify({ path, identity: before, id } satisfies Entry));
  renameSync(tmp, file);
};

/** Drops the entries naming images not in `kept`. */
export const forgetImagesExcept = (l: StoreLayout, kept: ReadonlySet<string>): void => {
  let names: string[];
  try {
    names = readdirSync(l.files);
  } catch {
    return;
  }
  for (const name of names) {
    const file = join(l.files, name);
    try {
      if (kept.has((JSON.parse(readFileSync(file, 'utf8')) as Entry).id)) continue;
    } catch {
      // Unreadable: as good as absent.
    }
    rmSync(file, { force: true });
  }
};
