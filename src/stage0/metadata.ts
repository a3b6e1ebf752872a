/**
 * `run --mds-register`: the pod registered with the metadata service (src/metadata) after its
 * networks are attached and before stage1 starts (MetadataRegisterRequested → MetadataRegistered),
 * and unregistered before its addresses are released (gc, rm, a failed start). The effects are
 * here; the interpreter (effects.ts) calls them.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Outcome } from '../engine/effects.js';
import { PodlogError } from '../errors.js';
import type { PodEventData } from '../events/catalogue.js';
import { registerPod, unregisterPod } from '../metadata/client.js';
import type { PodRegistration } from '../metadata/registry.js';
import type { PodContext } from '../../machines/pod.js';
import { debug } from './debug.js';
import { podDir, podPaths, writeWhole } from './pod-dir.js';
import type { Stage0 } from './session.js';

const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

/** The addresses the pod's networks gave it, and the host's side of its first network that has one. */
const addressesOf = (context: PodContext): { addresses: string[]; host: string | undefined } => {
  const ips = (context.networks ?? []).filter((n) => n.attached).flatMap((n) => n.summary?.ips ?? []);
  return { addresses: ips.map((ip) => ip.address.split('/')[0]!), host: ips.find((ip) => ip.gateway !== undefined)?.gateway };
};

/**
 * Registers the pod (its networks attached); a refusal leaves it prepared and holding nothing new.
 * A registration left by a run that died before its start is made again: the service may have
 * been restarted since, and it gets a new key.
 */
export const registerWithMetadataService = async (s: Stage0, uuid: string, socket: string): Promise<void> => {
  await unregisterFromMetadataService(s, uuid);
  const { addresses, host } = addressesOf((await s.engine.load(uuid)).context);
  if (addresses.length === 0 || host === undefined) {
    throw new PodlogError('EUSAGE', `--mds-register: pod ${uuid} has no network address with a gateway, so its apps cannot reach the metadata service`);
  }
  await s.engine.request(uuid, 'MetadataRegisterRequested', { socket, addresses, host });
  debug(`pod ${uuid}: registered with the metadata service at ${socket}`);
};

/** Unregisters the pod if it is registered: before its networks are detached. */
export const unregisterFromMetadataService = async (s: Stage0, uuid: string): Promise<void> => {
  if ((await s.engine.load(uuid)).context.metadata === undefined) return;
  await s.engine.request(uuid, 'MetadataUnregisterRequested', {});
};

/** The effect: the pod's manifest and its apps' image manifests to the service, the apps' URL to stage1. */
export const registerMetadata = async (uuid: string, data: PodEventData['MetadataRegisterRequested'], dataDir: string): Promise<Outcome[]> => {
  const paths = podPaths(podDir(dataDir, uuid));
  const manifest = readJson(paths.manifest) as unknown as PodRegistration['manifest'];
  const apps = Object.fromEntries(manifest.apps.map((a) => [a.name, { imageManifest: readJson(join(paths.appInfo(a.name), 'manifest')) }]));
  const port = await registerPod(data.socket, uuid, { manifest, apps, addresses: data.addresses });
  const url = `http://${data.host.includes(':') ? `[${data.host}]` : data.host}:${port}`;
  writeWhole(paths.metadataUrl, `${url}\n`);
  return [{ type: 'MetadataRegistered', data: { socket: data.socket, url } }];
};

/**
 * The effect (with the socket the pod registered on), and the reconciliation of a registration whose
 * process died (with the socket it asked): the service forgets the pod; idempotent.
 */
export const unregisterMetadata = async (uuid: string, socket: string, dataDir: string): Promise<PodEventData['MetadataUnregistered']> => {
  const answer = await unregisterPod(socket, uuid);
  rmSync(podPaths(podDir(dataDir, uuid)).metadataUrl, { force: true });
  return { answer };
};
