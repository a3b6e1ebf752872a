/**
 * Just enough of PNG to tell a picture from a blank page: the chunks, the zlib stream of the IDAT chunks
 * (node:zlib), the five row filters, and the spread of the pixels' brightness. 8-bit RGB, RGBA, grey and
 * grey-alpha, not interlaced: what Chromium's screenshots are.
 */
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export interface Png {
  width: number;
  height: number;
  /** Bytes a pixel. */
  channels: number;
  /** The unfiltered rows, one after another. */
  pixels: Buffer;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

const paeth = (a: number, b: number, c: number): number => {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};

export const readPng = (path: string): Png => {
  const file = readFileSync(path);
  if (!file.subarray(0, 8).equals(SIGNATURE)) throw new Error(`${path} is not a PNG`);
  let header: { width: number; height: number; channels: number } | undefined;
  const data: Buffer[] = [];
  for (let at = 8; at < file.length; ) {
    const length = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const body = file.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      const [depth, colour, interlace] = [body[8]!, body[9]!, body[12]!];
      const channels = CHANNELS[colour];
      if (depth !== 8 || channels === undefined || interlace !== 0) throw new Error(`${path}: depth ${depth}, colour type ${colour}, interlace ${interlace} not read here`);
      header = { width: body.readUInt32BE(0), height: body.readUInt32BE(4), channels };
    } else if (type === 'IDAT') data.push(body);
    at += 12 + length;
  }
  if (header === undefined) throw new Error(`${path} has no IHDR`);
  const { width, height, channels } = header;
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      if (predictor === undefined) throw new Error(`${path}: row ${y} has filter ${filter}`);
      pixels[y * stride + x] = (line[x]! + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
};

/** The variance of the pixels' brightness (the mean of their colour channels, 0–255): 0 for a blank page. */
export const brightnessVariance = ({ width, height, channels, pixels }: Png): number => {
  const colours = channels >= 3 ? 3 : 1;
  let [sum, squares] = [0, 0];
  for (let i = 0; i < width * height; i++) {
    let v = 0;
    for (let c = 0; c < colours; c++) v += pixels[i * channels + c]!;
    v /= colours;
    sum += v;
    squares += v * v;
  }
  const n = width * height;
  return squares / n - (sum / n) ** 2;
};
