/**
 * An image's dependency chain, as rkt's acirenderer createDepList builds it (rkt-semantics §4.2): a
 * list walked front to back where each image's dependencies are inserted right after it, in order, so
 * the last-listed dependency ends up uppermost among its siblings. A→[B,C], C→[D] gives
 * [A(0), C(1), D(2), B(1)]. Dependencies resolve by imageID (a prefix is fine) when given, otherwise
 * by name and labels, newest import first. rkt loops forever on a cycle; this refuses it.
 */
import { PodlogError } from '../errors.js';
import type { ImageManifest } from './aci-manifest.js';
import type { ImageIndex, ImageRecord } from './index-projection.js';
import { describeName, findById, findByName } from './resolve.js';

export interface ChainEntry {
  image: ImageRecord;
  manifest: ImageManifest;
  level: number;
}

interface Node extends ChainEntry {
  /** Ids from the top image down to this one, to catch cycles. */
  path: string[];
}

export const dependencyChain = (
  index: ImageIndex,
  top: ImageRecord,
  manifestOf: (image: ImageRecord) => ImageManifest,
): ChainEntry[] => {
  const list: Node[] = [{ image: top, manifest: manifestOf(top), level: 0, path: [top.id] }];
  for (let i = 0; i < list.length; i++) {
    const node = list[i]!;
    const deps = node.manifest.dependencies ?? [];
    for (const dep of deps) {
      const image = dep.imageID ? findById(index, dep.imageID) : findByName(index, dep.imageName, dep.labels ?? []);
      if (!image) {
        throw new PodlogError(
          'ENOENT',
          `image ${node.image.name} (${node.image.id}) depends on ${JSON.stringify(describeName(dep.imageName, dep.labels ?? []))}, which is not in the store; fetch it first`,
        );
      }
      if (node.path.includes(image.id)) {
        throw new PodlogError('EBADMANIFEST', `image ${node.image.name} (${node.image.id}): dependency cycle through ${image.name} (${image.id})`);
      }
      if (image.format !== 'aci') {
        throw new PodlogError('EBADMANIFEST', `image ${node.image.name} (${node.image.id}) depends on ${image.name} (${image.id}), an OCI image; only ACIs can be dependencies`);
      }
      list.splice(i + 1, 0, { image, manifest: manifestOf(image), level: node.level + 1, path: [...node.path, image.id] });
    }
  }
  return list.map(({ image, manifest, level }) => ({ image, manifest, level }));
};
