/**
 * What an image file is, decided in this one place by its structure: `oci-layout` and `index.json`
 * at its top make an OCI layout tar (what `skopeo copy … oci-archive:` and `docker save` write), a
 * `manifest` and `rootfs/` an ACI; anything else is refused naming both. The entries may come in any
 * order (`docker save` writes its blobs first), so the tar's headers are walked until one pair is
 * complete: a plain tar by seeking from header to header, a gzip-compressed one through zlib, and
 * the other compressions the addon reads (bzip2, xz, zstd), which Node cannot decode, through their
 * own tools (in debian-packages.txt), stopped as soon as the kind is known.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { PodlogError } from '../errors.js';

const BLOCK = 512;
/** zlib's output chunks: larger than its 16 KiB default, so that skipping blobs costs fewer turns. */
const CHUNK = 1 << 20;
/** index.json is read into memory; a hostile one must not be. */
const INDEX_LIMIT = 1 << 20;

export type ArchiveFormat = 'oci' | 'aci';

export interface ArchiveKind {
  format: ArchiveFormat;
  /** A layout's index.json (seen before the decision, which needs it). */
  index?: Buffer;
}

/** Reads a tar's bytes in order; `skip` may seek. */
interface Source {
  /** Exactly `n` bytes, or fewer at the end. */
  read(n: number): Promise<Buffer>;
  skip(n: number): Promise<void>;
  close(): Promise<void>;
}

const fileSource = (fh: FileHandle): Source => {
  let at = 0;
  return {
    read: async (n) => {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, at);
      at += bytesRead;
      return buf.subarray(0, bytesRead);
    },
    skip: async (n) => {
      at += n;
    },
    close: () => fh.close(),
  };
};

/** A tar read from `stream`; `close` stops whatever produces it. */
const streamSource = (stream: Readable, close: () => void): Source => {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let held: Buffer = Buffer.alloc(0);
  let ended = false;
  /** Fills `held` to `n` bytes, or to the end; the stream's errors reject. */
  const fill = async (n: number): Promise<void> => {
    while (held.length < n && !ended) {
      const next = await chunks.next();
      if (next.done) ended = true;
      else held = held.length === 0 ? next.value : Buffer.concat([held, next.value]);
    }
  };
  return {
    read: async (n) => {
      await fill(n);
      const out = held.subarray(0, n);
      held = held.subarray(out.length);
      return out;
    },
    skip: async (n) => {
      for (let left = n; left > 0; ) {
        if (held.length === 0) await fill(1);
        if (held.length === 0) return;
        const take = Math.min(left, held.length);
        held = held.subarray(take);
        left -= take;
      }
    },
    close: async () => {
      stream.destroy();
      close();
    },
  };
};

const cString = (b: Buffer): string => {
  const nul = b.indexOf(0);
  return b.subarray(0, nul === -1 ? b.length : nul).toString('utf8');
};

const octal = (b: Buffer): number => parseInt(cString(b).trim() || '0', 8);

/** A tar header's checksum: its bytes summed with the checksum field read as spaces. */
const validHeader = (h: Buffer): boolean => {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === octal(h.subarray(148, 156));
};

/** A pax extended header's `path`, if it sets one. */
const paxPath = (data: Buffer): string | undefined => {
  for (const record of data.toString('utf8').split('\n')) {
    const m = /^\d+ path=(.*)$/s.exec(record);
    if (m) return m[1];
  }
  return undefined;
};

/** An entry's path without `./` and leading slashes: `rootfs/bin`, `index.json`. */
const normalize = (name: string): string =>
  name
    .split('/')
    .filter((c) => c !== '' && c !== '.')
    .join('/');

const neither = (shown: string, why: string): PodlogError =>
  new PodlogError(
    'EBADARCHIVE',
    `${shown}: ${why}: neither an OCI image layout (oci-layout and index.json) nor an ACI (manifest and rootfs/)`,
  );

/** Walks the tar's headers until it is known to be a layout or an ACI. */
const walk = async (src: Source, shown: string): Promise<ArchiveKind> => {
  const seen = new Set<string>();
  let index: Buffer | undefined;
  let longName: string | undefined;
  let entries = 0;
  for (; ; entries++) {
    const header = await src.read(BLOCK);
    if (header.length === 0 || header.every((b) => b === 0)) break;
    if (header.length < BLOCK || !validHeader(header)) {
      if (entries > 0) throw neither(shown, 'a truncated or damaged tar archive');
      // The addon's words for it: no magic it knows, and no tar header.
      const head = [...header.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new PodlogError('ECOMPRESSION', `${shown}: unknown compression: it starts with [${head}], which is not gzip, bzip2, xz, zstd or a tar header, so neither an OCI layout tar nor an ACI`);
    }
    const size = octal(header.subarray(124, 136));
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const type = String.fromCharCode(header[156]!);
    if (type === 'L' || type === 'x') {
      // GNU long name, pax header: they name the next entry.
      const data = await src.read(Math.min(padded, INDEX_LIMIT));
      await src.skip(padded - data.length);
      longName = type === 'L' ? cString(data.subarray(0, size)) : paxPath(data.subarray(0, size)) ?? longName;
      continue;
    }
    const prefix = header.subarray(257, 262).toString() === 'ustar' ? cString(header.subarray(345, 500)) : '';
    const path = normalize(longName ?? (prefix ? `${prefix}/` : '') + cString(header.subarray(0, 100)));
    longName = undefined;
    const file = type === '0' || type === '\0';
    if (file && path === 'index.json' && size <= INDEX_LIMIT) {
      index = (await src.read(padded)).subarray(0, size);
    } else {
      await src.skip(padded);
    }
    if (file && ['oci-layout', 'index.json', 'manifest'].includes(path)) seen.add(path);
    if (path.split('/')[0] === 'rootfs') seen.add('rootfs');
    if (seen.has('oci-layout') && seen.has('index.json')) return { format: 'oci', ...(index ? { index } : {}) };
    if (seen.has('manifest') && seen.has('rootfs')) return { format: 'aci' };
  }
  const has = [...seen].map((n) => (n === 'rootfs' ? 'rootfs/' : n));
  throw neither(shown, entries === 0 ? 'an empty tar archive' : has.length === 0 ? 'it has none of these entries' : `it has only ${has.join(' and ')}`);
};

const GZIP = [0x1f, 0x8b];
/** The compressions Node cannot decode, and the tool that does. */
const DECODERS = [
  { magic: [0x42, 0x5a, 0x68], name: 'bzip2', tool: 'bzip2' },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], name: 'xz', tool: 'xz' },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: 'zstd', tool: 'zstd' },
];
const starts = (head: Buffer, magic: number[]): boolean => magic.every((b, i) => head[i] === b);

/** Whether the image file at `path` is an OCI layout tar or an ACI; `shown` names it in a refusal. */
export const archiveKind = async (path: string, shown: string): Promise<ArchiveKind> => {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(6);
  await fh.read(head, 0, head.length, 0);
  const decoder = DECODERS.find((d) => starts(head, d.magic));
  let src: Source;
  // Settles only when the decoding tool cannot be started at all.
  let missingTool: Promise<never> | undefined;
  if (decoder) {
    await fh.close();
    const child = spawn(decoder.tool, ['-dc', '--', path], { stdio: ['ignore', 'pipe', 'ignore'] });
    missingTool = new Promise((_, reject) =>
      child.once('error', (e) => reject(new PodlogError('ENOENT', `${shown}: cannot read its ${decoder.name} compression: ${decoder.tool} does not start (${e.message}); install it`))),
    );
    src = streamSource(child.stdout, () => child.kill());
  } else if (starts(head, GZIP)) {
    await fh.close();
    const file = createReadStream(path);
    src = streamSource(file.pipe(createGunzip({ chunkSize: CHUNK })), () => file.destroy());
  } else {
    src = fileSource(fh);
  }
  try {
    return await (missingTool ? Promise.race([walk(src, shown), missingTool]) : walk(src, shown));
  } catch (e) {
    if (e instanceof PodlogError) throw e;
    throw neither(shown, `unreadable (${(e as Error).message})`);
  } finally {
    await src.close();
  }
};
