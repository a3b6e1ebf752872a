/**
 * A download's body through its tap into a file. When it fails, it settles only once the file is
 * closed: a file stream opens asynchronously, so a failure that comes before the open would let the
 * open create the file again after the caller removed it (a partial left in the store).
 */
import type { WriteStream } from 'node:fs';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export const pipeToFile = async (body: Readable, tap: Transform, file: WriteStream): Promise<void> => {
  try {
    await pipeline(body, tap, file);
  } catch (e) {
    body.destroy();
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
    throw e;
  }
};
