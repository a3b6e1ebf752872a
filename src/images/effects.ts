/**
 * The image store's side effects on disk, named once, each with the event that records it. The fault
 * points of the image verbs are these names (src/engine/faults.ts, tests only): `effect:NAME` fails an
 * effect before it touches anything, `after-effect:NAME` kills the process right after it, and every
 * image event has its `before-outcome:TYPE` (Store.append).
 *
 * Each effect is whole or absent as the store's readers see it: content and trees are renamed into
 * place complete, and renamed out (into cas/tmp/, under a name carrying the pid) before they are
 * deleted. An import and a render are recorded after their effect, so the log never claims what is
 * not there; a removal is recorded before its effect, for the same reason: cut short, it leaves files
 * that the log no longer claims, which the next `image gc` sweeps.
 */
import { crashPoint, injectedFailure } from '../engine/faults.js';
import type { ImageEventType } from '../events/images.js';

export const IMAGE_EFFECTS = {
  /** An image's content and manifest renamed into cas/ (then ImageImported). */
  importImage: 'ImageImported',
  /** A tree rendered in cas/tmp/ and renamed into the tree store (then TreeRendered). */
  renderTree: 'TreeRendered',
  /** An image's content moved out of cas/ (after ImageRemoved). */
  removeImage: 'ImageRemoved',
  /** A tree moved out of the tree store (after TreeRemoved). */
  removeTree: 'TreeRemoved',
  /** An OCI layer rendered in cas/tmp/ and renamed into cas/layers/ (then LayerRendered). */
  renderLayer: 'LayerRendered',
  /** A layer moved out of cas/layers/ (after LayerRemoved). */
  removeLayer: 'LayerRemoved',
} as const satisfies Record<string, ImageEventType>;

export type ImageEffect = keyof typeof IMAGE_EFFECTS;

/** Where an effect begins: it fails here when a test asks it to. */
export const beginEffect = (name: ImageEffect): void => injectedFailure(name);

/** Where an effect is done: the process dies here when a test asks it to. */
export const effectDone = (name: ImageEffect): void => crashPoint(`after-effect:${name}`);
