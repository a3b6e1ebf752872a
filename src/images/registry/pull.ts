/**
 * `docker://HOST[:PORT]/NAME[:TAG|@DIGEST]`: an image pulled from a registry into the store. The
 * manifest chosen for this platform, its config and the layers the store does not have yet are
 * downloaded, each verified as it is written, into an OCI image layout in cas/tmp/, which the store
 * then imports as it imports any layout (so a pulled image is checked and rendered like any other,
 * and its layers are shared with every image that has them). The image is named HOST[:PORT]/NAME,
 * its version the tag, and its source records the digest the reference resolved to, so pulling an
 * unchanged tag again costs one manifest request. A reference that resolves to an image stored
 * already (another tag of it, its digest) adds its name and version to the image's (ImageTagged).
 */
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { label } from '../aci-manifest.js';
import type { ImageRecord } from '../index-projection.js';
import { layerBlobPath, ociDir } from '../layout.js';
import { ociImageId } from '../oci-layout.js';
import { defaultFetchPolicy } from '../policy.js';
import { boardFor } from '../progress.js';
import { scratch } from '../scratch.js';
import type { RegistryImage } from '../trust/verify.js';
import { checkExpected, type ImportOptions, type Store } from '../store.js';
import { fetchBlob } from './blobs.js';
import { RegistryClient } from './client.js';
import { choosePlatform, digestOf, fetchManifest, imageBlobs, type Descriptor } from './manifest.js';
import { parseDockerRef, pulledName, pulledSource, type DockerRef } from './reference.js';

/**
 * Shown the image manifest chosen for this platform (its digest and bytes, the reference normalized)
 * before any blob is downloaded: refuses the image by throwing, so a refused image costs no download.
 */
export type VerifyHook = (m: RegistryImage) => Promise<void>;

export interface Pulled {
  image: ImageRecord;
  /** The chosen image manifest's digest. */
  digest: string;
  reference: string;
  /** Where this pull found it, `docker://HOST/NAME@DIGEST` (the digest the reference resolved to): the
   * stored image's source may be an earlier fetch's. */
  source: string;
}

const REF_NAME = 'org.opencontainers.image.ref.name';
/** Blobs downloaded at once: enough to keep a fast link busy while one of them is hashed and written. */
const PARALLEL = 3;

/**
 * `work` on every item, PARALLEL at a time, none started after a failure; those under way run to
 * their end (an interrupted one is kept to be continued) before the first failure is thrown, so no
 * write is left in flight.
 */
const inParallel = async <T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> => {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length && failures.length === 0) {
      const item = items[next++]!;
      await work(item).catch((e: unknown) => void failures.push(e));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
};

const blobFile = (dir: string, digest: string): string => join(dir, 'blobs', ...digest.split(':'));

/** The image the store holds (its content still there) that a pull of `source` stored, or else with the id `id`. */
const storedAs = async (store: Store, { source, id }: { source?: string; id?: string }): Promise<ImageRecord | undefined> => {
  let found: ImageRecord | undefined;
  for (const image of (await store.index()).images.values()) {
    if ((image.names.some((n) => n.source === source) || image.id === id) && existsSync(ociDir(store.layout, image.id)) && (!found || image.position > found.position)) found = image;
  }
  return found;
};

const verifyWith = (options: ImportOptions, ref: DockerRef, digest: string, manifest: Buffer): Promise<void> =>
  options.verify?.({ reference: ref.reference, registry: ref.registry, repository: ref.repository, ...(ref.tag === undefined ? {} : { tag: ref.tag }), digest, manifest }) ??
  Promise.resolve();

export const pull = async (store: Store, input: string, options: ImportOptions = {}): Promise<Pulled> => {
  const ref = parseDockerRef(input);
  const client = new RegistryClient(ref, options.policy ?? defaultFetchPolicy());
  try {
    const top = await fetchManifest(client, ref.digest ?? ref.tag!);
    const source = pulledSource(ref, top.digest);
    // An image stored already is known by this reference too (another tag of it, a digest).
    const { name, labels } = pulledName(ref);
    const fetched = { name, version: label(labels, 'version'), source };
    const known = await storedAs(store, { source });
    if (known) {
      checkExpected(options.expectedId, known.id, undefined, ref.reference);
      const manifest = readFileSync(join(ociDir(store.layout, known.id), 'manifest.json'));
      const digest = digestOf(manifest);
      await verifyWith(options, ref, digest, manifest);
      return { image: await store.tagStored(known, fetched, ref.reference), digest, reference: ref.reference, source };
    }
    const chosen = await choosePlatform(client, top);
    const blobs = imageBlobs(client, chosen);
    // The id is the manifest's: a wrong --hash is refused before any download.
    const id = ociImageId(chosen.bytes);
    checkExpected(options.expectedId, id, undefined, ref.reference);
    await verifyWith(options, ref, chosen.digest, chosen.bytes);
    // The tag moved, to an image stored already (an index that gained a platform): nothing to download.
    const stored = await storedAs(store, { id });
    const image = stored ? await store.tagStored(stored, fetched, ref.reference) : await download(store, client, ref, chosen, blobs, source, options);
    return { image, digest: chosen.digest, reference: ref.reference, source };
  } finally {
    client.close();
  }
};

/** The chosen manifest's blobs into a layout in cas/tmp/, imported from there. */
const download = async (
  store: Store, client: RegistryClient, ref: DockerRef, chosen: { digest: string; mediaType: string; bytes: Buffer }, blobs: { config: Descriptor; layers: Descriptor[] },
  source: string, options: ImportOptions,
): Promise<ImageRecord> => {
  const l = store.layout;
  const dir = scratch(l, 'pull');
  const board = boardFor(options.quiet ?? false);
  try {
    const put = (digest: string): string => {
      const file = blobFile(dir, digest);
      mkdirSync(dirname(file), { recursive: true });
      return file;
    };
    writeFileSync(put(chosen.digest), chosen.bytes);
    const verified = new Set<string>();
    const recorded = new Set([...(await store.index()).images.values()].flatMap((i) => (i.layers ?? []).map((x) => x.digest)));
    const unique = [...new Map(blobs.layers.map((d) => [d.digest, d])).values()];
    const wanted: Array<{ d: Descriptor; what: string }> = [{ d: blobs.config, what: 'config' }];
    for (const [i, d] of unique.entries()) {
      // A layer the store has is the store's own verified copy: linked, never downloaded again.
      if (recorded.has(d.digest) && existsSync(layerBlobPath(l, d.digest))) linkSync(layerBlobPath(l, d.digest), put(d.digest));
      else wanted.push({ d, what: `layer ${i + 1}/${unique.length}` });
    }
    await inParallel(wanted, async ({ d, what }) => {
      await fetchBlob(client, l, d, put(d.digest), what, board.line());
      verified.add(d.digest);
    });
    const { name } = pulledName(ref);
    const refName = ref.tag === undefined ? name : `${name}:${ref.tag}`;
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: chosen.mediaType, digest: chosen.digest, size: chosen.bytes.length, annotations: { [REF_NAME]: refName } }] }),
    );
    return await store.importLayout(dir, ref.reference, { ...options, tag: refName, source, name }, verified);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
