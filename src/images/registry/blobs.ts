/**
 * A blob downloaded into the store, verified while it is written: hashed as it streams, stopped at
 * one byte past its descriptor's size (a body that never ends costs size + 1 bytes), and checked
 * against its digest before it is handed on. The download goes to cas/partial/ under the blob's
 * digest, so an interrupted one is continued by the next pull with `Range: bytes=N-` (the bytes
 * already there hashed again first); content that proved wrong is deleted, never kept or resumed,
 * and a continued blob that proves wrong is downloaded once more from its start.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { Transform } from 'node:stream';
import { PodlogError } from '../../errors.js';
import { pipeToFile } from '../pipe-to-file.js';
import { layerBlobPath, partialLockDir, partialPath, type StoreLayout } from '../layout.js';
import { withDirLock } from '../locks.js';
import type { Progress } from '../progress.js';
import type { RegistryClient } from './client.js';
import type { Descriptor } from './manifest.js';

const hashFile = async (hash: Hash, file: string): Promise<void> => {
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
};

/** A failure that says the bytes received are wrong: the partial file goes with it. */
class Proven extends PodlogError {
  /** `resumed`: the bytes checked began with some kept from an earlier pull, which may be the wrong ones. */
  constructor(code: string, message: string, readonly resumed = false) {
    super(code, message);
  }
}

/**
 * Downloads the blob `d` to `dest` (a new path on the store's file system), verified; `what` names it
 * in messages (`layer 2/5`). Two pulls of one blob take turns (a lock per digest). The first takes the
 * whole blob into its own layout in cas/tmp/, so the second, once it has the lock, links the store's
 * copy if the first's import has stored the blob by then, else downloads it again (from the bytes
 * the first left in cas/partial/ if it was interrupted).
 */
export const fetchBlob = (client: RegistryClient, l: StoreLayout, d: Descriptor, dest: string, what: string, progress: Progress): Promise<void> => {
  const partial = partialPath(l, d.digest);
  mkdirSync(l.partial, { recursive: true, mode: 0o700 });
  return withDirLock(partialLockDir(l, d.digest), false, async () => {
    // Stored blobs were verified before they were renamed into place.
    const stored = layerBlobPath(l, d.digest);
    if (statSync(stored, { throwIfNoEntry: false })?.size === d.size) {
      linkSync(stored, dest);
      return;
    }
    const once = async (): Promise<void> => {
      try {
        await download(client, d, partial, what, progress);
      } catch (e) {
        if (e instanceof Proven) rmSync(partial, { force: true });
        throw e;
      }
    };
    try {
      await once();
    } catch (e) {
      // Partials are kept by digest alone, so the kept bytes may be another registry's (a hostile one's):
      // once more from the start, so that a failure is this registry's own.
      if (!(e instanceof Proven && e.resumed)) throw e;
      await once();
    }
    renameSync(partial, dest);
  });
};

const download = async (client: RegistryClient, d: Descriptor, partial: string, what: string, progress: Progress): Promise<void> => {
  const shown = `${client.ref.reference}: ${what} ${d.digest}`;
  const alg = d.digest.split(':')[0]!;
  let hash = createHash(alg);
  let have = existsSync(partial) ? statSync(partial).size : 0;
  if (have > d.size) {
    rmSync(partial);
    have = 0;
  }
  if (have > 0) await hashFile(hash, partial);
  progress.start(`${what} ${d.digest.slice(0, 19)}`, d.size);
  let ok = false;
  try {
    if (have < d.size) {
      const answer = await client.get(`blobs/${d.digest}`, `${what} ${d.digest}`, { redirects: true, ...(have > 0 ? { from: have } : {}) });
      if (answer.status === 200 && have > 0) {
        // The registry sends the whole blob: start over.
        hash = createHash(alg);
        have = 0;
      } else if (answer.status === 206 && !String(answer.headers['content-range'] ?? '').startsWith(`bytes ${have}-`)) {
        answer.body.destroy();
        throw new PodlogError('EFETCH', `${shown}: asked for bytes ${have}- of ${answer.url.href}, the registry sent ${JSON.stringify(answer.headers['content-range'] ?? 'no Content-Range')}`);
      }
      progress.set(have);
      let size = have;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          if (size > d.size) {
            done(new Proven('ETOO_LARGE', `${shown}: ${answer.url.href} sends more than the ${d.size} bytes its descriptor says; the download was stopped`));
            return;
          }
          hash.update(chunk);
          progress.add(chunk.length);
          done(null, chunk);
        },
      });
      // A large buffer lets the file take many of the network's 64 KiB chunks in one writev while
      // the next ones arrive (a third less time for a 100 MB image here than the 16 KiB default).
      const file = createWriteStream(partial, { flags: have > 0 ? 'a' : 'w', mode: 0o600, highWaterMark: 4 << 20 });
      try {
        await pipeToFile(answer.body, tap, file);
      } catch (e) {
        if (e instanceof PodlogError) throw e;
        throw new PodlogError('EFETCH', `${shown}: the download from ${answer.url.href} was interrupted after ${size} of ${d.size} bytes (${(e as Error).message}); pulling again continues it`);
      }
      if (size < d.size) {
        throw new PodlogError('EFETCH', `${shown}: ${answer.url.href} ended after ${size} of ${d.size} bytes; pulling again continues it`);
      }
    }
    const found = `${alg}:${hash.digest('hex')}`;
    if (found !== d.digest) throw new Proven('EDIGEST', `${shown}: the blob does not match its digest: expected ${d.digest}, found ${found}`, have > 0);
    ok = true;
  } finally {
    progress.done(ok);
  }
};
