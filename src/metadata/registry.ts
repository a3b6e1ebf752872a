/**
 * The metadata service's pods: what stage0 registered for each (its manifest, its apps' image
 * manifests and ids, its network addresses) and the HMAC key made for it at registration. Held in
 * memory only: the key must never reach the log or a disk, and a restarted service forgets every
 * pod (as rkt's did); pods registered again get new keys.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export interface AppRegistration {
  /** The app's image manifest as its image has it. */
  imageManifest: Record<string, unknown>;
}

/** What `run --mds-register` sends over the registration socket. */
export interface PodRegistration {
  manifest: { apps: Array<{ name: string; image: { id: string }; annotations?: unknown }>; annotations?: unknown };
  apps: Record<string, AppRegistration>;
  /** The pod's addresses on its networks: a request from one of them is the pod's. */
  addresses: string[];
}

interface RegisteredPod extends PodRegistration {
  uuid: string;
  key: Buffer;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isPodUuid = (s: string): boolean => UUID.test(s);

/** Checks a registration's shape; returns what is wrong, or undefined. */
export const registrationProblem = (r: unknown): string | undefined => {
  if (typeof r !== 'object' || r === null) return 'the body is not a JSON object';
  const { manifest, apps, addresses } = r as Partial<PodRegistration>;
  if (typeof manifest !== 'object' || manifest === null || !Array.isArray(manifest.apps)) return 'manifest: not a pod manifest';
  if (typeof apps !== 'object' || apps === null) return 'apps: not an object';
  for (const app of manifest.apps) {
    if (typeof app?.name !== 'string' || typeof app.image?.id !== 'string') return 'manifest: an app without a name or image id';
    const im = apps[app.name]?.imageManifest;
    if (typeof im !== 'object' || im === null) return `apps: no image manifest for app ${JSON.stringify(app.name)}`;
  }
  if (!Array.isArray(addresses) || addresses.length === 0 || !addresses.every((a) => typeof a === 'string' && isIP(a) !== 0)) {
    return 'addresses: not a non-empty list of IP addresses';
  }
  return undefined;
};

/** Addresses as the socket layer reports them: an IPv4 client of a dual-stack listener is `::ffff:a.b.c.d`. */
export const plainAddress = (a: string): string => (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a);

/** rkt's HMAC: over the signing pod's UUID (its 16 bytes) and the content, so a signature names its pod. */
const hmac = (key: Buffer, uuid: string, content: string): Buffer =>
  createHmac('sha512', key).update(Buffer.from(uuid.replaceAll('-', ''), 'hex')).update(content, 'utf8').digest();

export class Registry {
  private readonly pods = new Map<string, RegisteredPod>();
  private readonly byAddress = new Map<string, RegisteredPod>();

  /**
   * Registers (or registers again) a pod with a new key. An address another pod still holds is
   * taken from it: IPAM gave it to this pod, so that pod's network is gone and it missed its
   * unregistration.
   */
  register(uuid: string, r: PodRegistration): string[] {
    this.unregister(uuid);
    const pod: RegisteredPod = { ...r, addresses: r.addresses.map(plainAddress), uuid, key: randomBytes(64) };
    const displaced: string[] = [];
    for (const a of pod.addresses) {
      const old = this.byAddress.get(a);
      if (old !== undefined) {
        this.unregister(old.uuid);
        displaced.push(old.uuid);
      }
      this.byAddress.set(a, pod);
    }
    this.pods.set(uuid, pod);
    return displaced;
  }

  unregister(uuid: string): boolean {
    const pod = this.pods.get(uuid);
    if (pod === undefined) return false;
    for (const a of pod.addresses) if (this.byAddress.get(a) === pod) this.byAddress.delete(a);
    this.pods.delete(uuid);
    return true;
  }

  has(uuid: string): boolean {
    return this.pods.has(uuid);
  }

  uuids(): string[] {
    return [...this.pods.keys()];
  }

  /** The pod a request comes from, by its source address. */
  from(address: string): Readonly<RegisteredPod> | undefined {
    return this.byAddress.get(plainAddress(address));
  }

  /** A base64 HMAC-SHA512 signature of `content` by the pod. */
  sign(uuid: string, content: string): string | undefined {
    const pod = this.pods.get(uuid);
    return pod === undefined ? undefined : hmac(pod.key, uuid, content).toString('base64');
  }

  /** Whether `signature` (base64) is the registered pod `uuid`'s signature of `content`. */
  verify(uuid: string, content: string, signature: string): boolean {
    const pod = this.pods.get(uuid);
    if (pod === undefined) return false;
    const given = Buffer.from(signature, 'base64');
    const expected = hmac(pod.key, uuid, content);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
