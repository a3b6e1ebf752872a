import { DEFAULT_LIMITS, sizeFlags } from '../../config-file.js';
import { PodlogError } from '../../errors.js';
import { label } from '../../images/aci-manifest.js';
import { fetchUrl } from '../../images/fetch.js';
import type { ImageRecord } from '../../images/index-projection.js';
import { withPrepareLock } from '../../images/locks.js';
import { layoutTags } from '../../images/oci-layout.js';
import { DEFAULT_LOCAL_CONFIG, defaultFetchPolicy, localConfigOf } from '../../images/policy.js';
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

const gib = (bytes: number): string => `${bytes / 2 ** 30}G`;

export const fetch: Command = {
  usage: 'podlog fetch [FLAGS] PATH-OR-URL[:TAG]|docker://HOST[:PORT]/NAME[:TAG|@sha256:DIGEST]...',
  options: {
    'insecure-options': { type: 'string', multiple: true, value: 'http,tls,image,...', description: 'checks to skip: plain http, TLS certificates, signatures' },
    'local-config': { type: 'string', value: 'DIR', description: 'the local configuration: trusted keys, registry credentials, limits', shownDefault: DEFAULT_LOCAL_CONFIG },
    hash: { type: 'string', value: 'sha512-...', description: 'refuse the image unless its id is this' },
    tag: { type: 'string', value: 'TAG', description: 'the image of an OCI layout to import, by its tag' },
    quiet: { type: 'boolean', short: 'q', default: false, description: 'print no progress' },
    'max-layer-size': { type: 'string', value: 'SIZE', description: 'refuse a layer that unpacks to more than SIZE (e.g. 2G)', shownDefault: `config.json's, else ${gib(DEFAULT_LIMITS.maxLayerSize)}` },
    'max-image-size': { type: 'string', value: 'SIZE', description: 'refuse an image that unpacks to more than SIZE', shownDefault: `config.json's, else ${gib(DEFAULT_LIMITS.maxImageSize)}` },
  },
  examples: ['podlog fetch fixtures/build/aci/busybox-gzip.aci', 'podlog fetch --insecure-options=http,tls docker://127.0.0.1:5000/busybox:latest'],
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
