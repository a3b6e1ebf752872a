/**
 * Telling an OCI layout tar (what `skopeo copy … oci-archive:` and `docker save` in OCI form write)
 * from an ACI without reading it whole: an ACI's entries are `manifest` and `rootfs/`, a layout's are
 * `oci-layout`, `index.json` and `blobs/`. The first few tar headers decide; a gzip-compressed archive
 * is looked into through its first 64 KiB.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { constants, gunzipSync } from 'node:zlib';

const BLOCK = 512;
const HEAD = 64 * 1024;
const LAYOUT_NAMES = new Set(['oci-layout', 'index.json', 'blobs']);

const readHead = (path: string): Buffer => {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD);
    return buf.subarray(0, readSync(fd, buf, 0, HEAD, 0));
  } finally {
    closeSync(fd);
  }
};

const cString = (b: Buffer): string => {
  const nul = b.indexOf(0);
  return b.subarray(0, nul === -1 ? b.length : nul).toString('utf8');
};

/** The top-level names of the first entries of a plain tar held in `data`. */
const topNames = (data: Buffer): string[] => {
  const names: string[] = [];
  for (let at = 0; at + BLOCK <= data.length && names.length < 8; ) {
    const header = data.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(cString(header.subarray(124, 136)).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const prefix = header.subarray(257, 262).toString() === 'ustar' ? cString(header.subarray(345, 500)) : '';
    const name = (prefix ? `${prefix}/` : '') + cString(header.subarray(0, 100));
    // pax and GNU long-name headers describe the next entry.
    if (!'xXgLK'.includes(type)) {
      const top = name.split('/').find((c) => c !== '' && c !== '.');
      if (top !== undefined) names.push(top);
    }
    if (!Number.isFinite(size)) break;
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return names;
};

export const isOciArchive = (path: string): boolean => {
  let head = readHead(path);
  if (head[0] === 0x1f && head[1] === 0x8b) {
    try {
      head = gunzipSync(head, { finishFlush: constants.Z_SYNC_FLUSH });
    } catch {
      return false;
    }
  }
  const names = topNames(head);
  return names.length > 0 && names.every((n) => LAYOUT_NAMES.has(n));
};
