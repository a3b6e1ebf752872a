/**
 * Which host acts on a pod. In a log shared by many hosts, a pod's effects (its directory, its stage1,
 * its networks) are on the host that prepared it, so only that host's engine records its events and
 * reconciles it; every host reads every pod.
 */
import type { PodContext } from '../../machines/pod.js';
import { PodlogError } from '../errors.js';

/** Pods prepared before hosts were recorded (a one-host SQLite log) are taken as the local host's. */
export const ownsPod = (hostId: string, pod: Pick<PodContext, 'host'>): boolean => pod.host === undefined || pod.host === hostId;

export const otherHostsPod = (uuid: string, host: string | undefined): PodlogError =>
  new PodlogError('EOTHER_HOST', `pod ${uuid} is on host ${String(host)}: only podlog on that host can act on it (this host reads it: list and status --all-hosts)`);
