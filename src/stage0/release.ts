/**
 * What a pod holds on the host, given back before its directory goes (gc, rm) or when its start
 * fails: its metadata registration first (it names the pod's addresses), then its networks.
 */
import type { PodContext } from '../../machines/pod.js';
import { unregisterFromMetadataService } from './metadata.js';
import { detachNetworks } from './networks.js';
import { attachedNetworks } from './pod-networks.js';
import type { Stage0 } from './session.js';

/** Whether a pod holds anything `releasePod` gives back (most pods gc collects hold nothing). */
export const holdsResources = (context: Pick<PodContext, 'metadata' | 'networks'>): boolean =>
  context.metadata !== undefined || attachedNetworks(context.networks).length > 0;

export const releasePod = async (s: Stage0, uuid: string): Promise<void> => {
  if (!holdsResources((await s.engine.load(uuid)).context)) return;
  await unregisterFromMetadataService(s, uuid);
  await detachNetworks(s, uuid);
};
