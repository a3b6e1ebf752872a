/**
 * `fetch docker://…` with its check (verify.ts): the registry pull shows the manifest its reference
 * resolved to to checkRegistryImage before any blob is downloaded (a refusal downloads nothing and
 * stores nothing), and the verdict is recorded once the image is stored.
 */
import type { ImageRecord } from '../index-projection.js';
import { defaultFetchPolicy } from '../policy.js';
import { pull } from '../registry/pull.js';
import type { ImportOptions, Store } from '../store.js';
import { checkRegistryImage, recordVerdict, type Verdict } from './verify.js';

export const pullVerified = async (store: Store, ref: string, options: ImportOptions = {}): Promise<ImageRecord> => {
  const policy = options.policy ?? defaultFetchPolicy();
  let verdict: Verdict | undefined;
  const { image, source } = await pull(store, ref, {
    ...options,
    verify: async (m) => {
      verdict = await checkRegistryImage(policy, m);
    },
  });
  if (!verdict) throw new Error(`${ref}: the pull stored an image without showing its manifest to the signature check`);
  await recordVerdict(store, image.id, source, verdict, options);
  return image;
};
