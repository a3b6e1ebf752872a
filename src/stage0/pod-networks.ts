/** What a pod's recorded networks say, for the verbs that report them (apart from attaching, which loads CNI). */
import type { PodNetwork } from '../../machines/pod.js';

export const attachedNetworks = (networks: PodNetwork[] | undefined): PodNetwork[] => (networks ?? []).filter((n) => n.attached);

/** rkt's NETWORKS column and status field: `name:ip4=ADDRESS`, comma-separated. */
export const networksText = (networks: PodNetwork[] | undefined): string =>
  attachedNetworks(networks)
    .flatMap((n) => (n.summary?.ips ?? []).map((ip) => `${n.name}:ip${ip.address.includes(':') ? 6 : 4}=${ip.address}`))
    .join(',');
