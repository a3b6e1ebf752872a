import { sizeFlags } from '../../config-file.js';
import { PodlogError } from '../../errors.js';
import { fetchUrl } from '../../images/fetch.js';
import { withPrepareLock } from '../../images/locks.js';
import { guessRef } from '../../images/resolve.js';
import { str, out, type Command } from '../command.js';
import { withImageStore } from './image.js';

export const fetch: Command = {
  usage: 'podlog fetch [--hash=sha512-...] [--max-layer-size=SIZE] [--max-image-size=SIZE] [--quiet] PATH-OR-URL...',
  options: {
    hash: { type: 'string' },
    quiet: { type: 'boolean', short: 'q', default: false },
    'max-layer-size': { type: 'string' },
    'max-image-size': { type: 'string' },
  },
  run: ({ values, positionals, dir }) => {
    if (positionals.length === 0) throw new PodlogError('EUSAGE', 'fetch: give at least one image file, directory or URL');
    const expectedId = str(values, 'hash');
    if (expectedId !== undefined && positionals.length > 1) throw new PodlogError('EUSAGE', 'fetch: --hash checks one image; give one PATH-OR-URL');
    if (expectedId !== undefined && !/^sha512-([0-9a-f]{64}|[0-9a-f]{128})$/i.test(expectedId)) {
      throw new PodlogError('EUSAGE', `--hash: ${JSON.stringify(expectedId)} is not an image id (sha512- and 64 or 128 hex digits)`);
    }
    const options = {
      quiet: values.quiet === true, limits: sizeFlags(str(values, 'max-layer-size'), str(values, 'max-image-size')),
      ...(expectedId === undefined ? {} : { expectedId }),
    };
    return withImageStore(dir, (images) =>
      // Shared, as a prepare takes it: image gc waits until the new images are recorded.
      withPrepareLock(dir, async () => {
        for (const ref of positionals) {
          const image = guessRef(ref).kind === 'url' ? await fetchUrl(images, ref, options) : await images.importFile(ref, options);
          out(image.id);
        }
        return 0;
      }),
    );
  },
};
