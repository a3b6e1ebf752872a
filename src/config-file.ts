/**
 * The data dir's settings file, `<data>/config.json`, and the size limits it holds: what an OCI image's
 * layers may unpack to. Absent, every setting has its default; present, it is checked whole, and a
 * setting it does not know is refused rather than ignored (a misspelt limit would silently not apply).
 *
 *   { "images": { "maxLayerSize": "64GiB", "maxImageSize": "64GiB", "maxRatio": 100, "ratioFloor": "1GiB" } }
 *
 * The limits are checked by the addon while a layer unpacks (crates/podlog-native/src/archive.rs), so a
 * bomb is stopped as it crosses one, not after it has filled the disk.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PodlogError } from './errors.js';

/** Bytes of uncompressed tar (what a layer unpacks to), as the addon counts them. */
export interface SizeLimits {
  maxLayerSize: number;
  maxImageSize: number;
  /** Past `ratioFloor` bytes, a layer may unpack to at most `maxRatio` times its compressed size. */
  maxRatio: number;
  ratioFloor: number;
}

const GiB = 2 ** 30;

/**
 * 64 GiB a layer and an image: above the largest images in common use (CUDA and ML images reach
 * 20-30 GB) and below the disk of a typical host, so only a hostile or broken image meets them.
 * 100 times past 1 GiB: real layers compress 2-10 times (text and binaries with gzip or zstd), and
 * the files that compress far better (sparse databases, zeroed images) are rarely over 1 GiB in one
 * layer; a bomb of zeros compresses about 1000 times, so the 2 MiB layer that inflated to
 * 2 GiB is stopped at its first GiB. Any layer may still unpack to max(1 GiB, 100 x its size).
 */
export const DEFAULT_LIMITS: SizeLimits = { maxLayerSize: 64 * GiB, maxImageSize: 64 * GiB, maxRatio: 100, ratioFloor: GiB };

const UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, KB: 1e3, KIB: 2 ** 10, M: 2 ** 20, MB: 1e6, MIB: 2 ** 20, G: GiB, GB: 1e9, GIB: GiB, T: 2 ** 40, TB: 1e12, TIB: 2 ** 40 };

/** A size: a number of bytes, or a number and a unit ("64GiB", "500MB", "1.5g"); `where` names the setting. */
export const parseSize = (text: string | number, where: string): number => {
  const m = typeof text === 'number' ? [String(text), String(text), ''] : /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2]!.toUpperCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new PodlogError('EUSAGE', `${where}: invalid size ${JSON.stringify(text)} (examples: 1048576, 512MiB, 64GiB)`);
  }
  return bytes;
};

export const configPath = (dataDir: string): string => join(dataDir, 'config.json');

/** The settings of the data dir: its config.json over the defaults. Reading creates nothing. */
export const readConfig = (dataDir: string): { images: SizeLimits } => {
  const path = configPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { images: DEFAULT_LIMITS };
    throw new PodlogError('EBADCONFIG', `${path}: ${(e as Error).message}`);
  }
  const bad = (why: string): PodlogError => new PodlogError('EBADCONFIG', `${path}: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON: ${(e as Error).message}`);
  }
  const object = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!object(parsed)) throw bad('not a JSON object');
  const unknown = Object.keys(parsed).filter((k) => k !== 'images');
  if (unknown.length > 0) throw bad(`unknown setting ${JSON.stringify(unknown[0])} (podlog knows "images")`);
  const images = parsed.images ?? {};
  if (!object(images)) throw bad('"images" is not an object');
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(images)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, key)) throw bad(`unknown setting "images.${key}" (podlog knows ${Object.keys(DEFAULT_LIMITS).join(', ')})`);
    if (typeof value !== 'number' && typeof value !== 'string') throw bad(`"images.${key}" is neither a number nor a size`);
    try {
      limits[key as keyof SizeLimits] = parseSize(value, `images.${key}`);
    } catch (e) {
      throw bad((e as Error).message);
    }
  }
  return { images: limits };
};

/** The size limits given by fetch's flags (`--max-layer-size`, `--max-image-size`), over config.json's. */
export const sizeFlags = (layer: string | undefined, image: string | undefined): Partial<SizeLimits> => ({
  ...(layer === undefined ? {} : { maxLayerSize: parseSize(layer, '--max-layer-size') }),
  ...(image === undefined ? {} : { maxImageSize: parseSize(image, '--max-image-size') }),
});
