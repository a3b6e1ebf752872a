/**
 * What a pod holds on the host, given back before its directory goes (gc, rm) or when its start
 * fails: its metadata registration first (it names the pod's addresses), then its networks.
 */
import { unregisterFromMetadataService } from './metadata.js';
import { detachNetworks } from './networks.js';
import type { Stage0 } from './session.js';

export const releasePod = async (s: Stage0, uuid: string): Promise<void> => {
  await unregisterFromMetadataService(s, uuid);
  await detachNetworks(s, uuid);
};
