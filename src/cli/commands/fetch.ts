import { sizeFlags } from '../../config-file.js';
import { PodlogError } from '../../errors.js';
import { label } from '../../images/aci-manifest.js';
import { fetchUrl } from '../../images/fetch.js';
import type { ImageRecord } from '../../images/index-projection.js';
import { withPrepareLock } from '../../images/locks.js';
import { layoutTags } from '../../images/oci-layout.js';
import { defaultFetchPolicy, localConfigOf } from '../../images/policy.js';
import { guessRef } from '../../images/resolve.js';
import type { ImportOptions, Store } from '../../images/store.js';
import { importVerified } from '../../images/trust/import.js';
import { pullVerified } from '../../images/trust/pull.js';
import { list, str, out, type Command } from '../command.js';
import { parseInsecureOptions } from '../insecure-options.js';
import { withImageStore } from './image.js';

/**
 * The images `ref` names: a registry's (docker://), a URL's, the tagged image of a layout, or every
 * image of a layout with several (each by its tag, said on stderr), else the file's one image.
 */
const importRef = async (images: Store, ref: string, options: ImportOptions): Promise<ImageRecord[]> => {
  const r = guessRef(ref);
  if (r.kind === 'url') return [await fetchUrl(images, ref, options)];
  if (r.kind === 'docker') {
    if (options.tag !== undefined) throw new PodlogError('EUSAGE', `fetch: ${ref} names its tag in the reference (docker://HOST/NAME:TAG); --tag chooses an image of an OCI layout`);
    return [await pullVerified(images, ref, options)];
  }
  const policy = options.policy ?? defaultFetchPolicy();
  if (r.kind !== 'path') return [await importVerified(images, policy, ref, options)];
  if (r.tag !== undefined && options.tag !== undefined) throw new PodlogError('EUSAGE', `fetch: ${ref} names its tag; --tag ${options.tag} cannot name another`);
  const tag = r.tag ?? options.tag;
  if (tag !== undefined) return [await importVerified(images, policy, r.path, { ...options, tag })];
  const tags = await layoutTags(r.path, r.path);
  if (tags.length < 2) return [await importVerified(images, policy, r.path, options)];
  if (options.expectedId !== undefined) throw new PodlogError('EUSAGE', `--hash checks one image; ${r.path} holds ${tags.length} (tags ${tags.join(', ')}): name one as PATH:TAG`);
  const records: ImageRecord[] = [];
  for (const t of tags) records.push(await importVerified(images, policy, r.path, { ...options, tag: t }));
  const names = records.map((i) => [i.name, label(i.labels, 'version')].filter((p) => p !== undefined).join(':'));
  process.stderr.write(`${r.path}: imported ${records.length} images, one per tag: ${names.join(', ')}\n`);
  return records;
};

export const fetch: Command = {
  usage:
    'podlog fetch [--hash=sha512-...] [--tag=TAG] [--max-layer-size=SIZE] [--max-image-size=SIZE] [--insecure-options=http,tls,image,...] [--local-config=DIR] [--quiet] ' +
    'PATH-OR-URL[:TAG]|docker://HOST[:PORT]/NAME[:TAG|@sha256:DIGEST]...',
  options: {
    'insecure-options': { type: 'string', multiple: true },
    'local-config': { type: 'string' },
    hash: { type: 'string' },
    tag: { type: 'string' },
    quiet: { type: 'boolean', short: 'q', default: false },
    'max-layer-size': { type: 'string' },
    'max-image-size': { type: 'string' },
  },
  run: (inv) => {
    const { values, positionals, dir } = inv;
    if (positionals.length === 0) throw new PodlogError('EUSAGE', 'fetch: give at least one image file, directory or URL');
    const expectedId = str(values, 'hash');
    const tag = str(values, 'tag');
    if (expectedId !== undefined && positionals.length > 1) throw new PodlogError('EUSAGE', 'fetch: --hash checks one image; give one PATH-OR-URL');
    if (tag !== undefined && positionals.length > 1) throw new PodlogError('EUSAGE', 'fetch: --tag chooses an image of one OCI layout; give one PATH, or PATH:TAG for each');
    if (expectedId !== undefined && !/^sha512-([0-9a-f]{64}|[0-9a-f]{128})$/i.test(expectedId)) {
      throw new PodlogError('EUSAGE', `--hash: ${JSON.stringify(expectedId)} is not an image id (sha512- and 64 or 128 hex digits)`);
    }
    const options: ImportOptions = {
      quiet: values.quiet === true, limits: sizeFlags(str(values, 'max-layer-size'), str(values, 'max-image-size')),
      policy: { localConfig: localConfigOf(str(values, 'local-config')), ...parseInsecureOptions(list(values, 'insecure-options')).fetch },
      ...(expectedId === undefined ? {} : { expectedId }), ...(tag === undefined ? {} : { tag }),
    };
    return withImageStore(inv, (images) =>
      // Shared, as a prepare takes it: image gc waits until the new images are recorded.
      withPrepareLock(dir, async () => {
        for (const ref of positionals) {
          for (const image of await importRef(images, ref, options)) out(image.id);
        }
        return 0;
      }),
    );
  },
};
