/**
 * An app's capabilities, as appc's isolators say them (`os/linux/capabilities-retain-set`, `-remove-set`:
 * `{"set": ["CAP_…", …]}`), from the image or from rkt's `--caps-retain` / `--caps-remove` after the
 * app's image, which replace the image's. stage1 applies them (crates/stage1/src/caps.rs).
 */
import { PodlogError } from '../errors.js';
import type { ImageApp } from '../images/aci-manifest.js';

export const RETAIN_SET = 'os/linux/capabilities-retain-set';
export const REMOVE_SET = 'os/linux/capabilities-remove-set';

/** linux/capability.h's names (0 to 40), the ones stage1 knows. */
const NAMES = new Set([
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
]);

type Isolators = NonNullable<ImageApp['isolators']>;

/** --caps-retain / --caps-remove of one app: known names, and not both. */
export const checkCapFlags = (app: { capsRetain?: string[]; capsRemove?: string[] }): void => {
  if (app.capsRetain !== undefined && app.capsRemove !== undefined) {
    throw new PodlogError('EUSAGE', '--caps-retain and --caps-remove cannot both be given for one app');
  }
  for (const [flag, names] of [['--caps-retain', app.capsRetain], ['--caps-remove', app.capsRemove]] as const) {
    const unknown = (names ?? []).find((n) => !NAMES.has(n));
    if (unknown !== undefined) throw new PodlogError('EUSAGE', `${flag}: unknown capability ${JSON.stringify(unknown)} (names as in capabilities(7): CAP_NET_BIND_SERVICE, ...)`);
  }
};

/** The app's isolators with the flags' capability set in place of the image's, if a flag gave one. */
export const withCapFlags = (isolators: Isolators | undefined, app: { capsRetain?: string[]; capsRemove?: string[] }): Isolators | undefined => {
  const flag = app.capsRetain !== undefined ? { name: RETAIN_SET, set: app.capsRetain } : app.capsRemove !== undefined ? { name: REMOVE_SET, set: app.capsRemove } : undefined;
  if (flag === undefined) return isolators;
  return [...(isolators ?? []).filter((i) => i.name !== RETAIN_SET && i.name !== REMOVE_SET), { name: flag.name, value: { set: flag.set } }];
};

/** An image's capability isolators, checked as stage1 will read them, so that a bad one stops the prepare. */
export const checkCapIsolators = (isolators: Isolators | undefined, app: string): void => {
  const caps = (isolators ?? []).filter((i) => i.name === RETAIN_SET || i.name === REMOVE_SET);
  if (caps.length > 1) throw new PodlogError('EBADMANIFEST', `app ${app}: ${RETAIN_SET} and ${REMOVE_SET} cannot both be set`);
  for (const i of caps) {
    const set = (i.value as { set?: unknown } | null)?.set;
    if (!Array.isArray(set) || !set.every((n) => typeof n === 'string' && NAMES.has(n))) {
      throw new PodlogError('EBADMANIFEST', `app ${app}: isolator ${i.name}: "set" must be a list of capability names (${JSON.stringify(set)})`);
    }
  }
};
