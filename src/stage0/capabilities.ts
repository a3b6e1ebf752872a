/**
 * An app's capabilities, as appc's isolators say them (`os/linux/capabilities-retain-set`, `-remove-set`:
 * `{"set": ["CAP_…", …]}`), from the image or from rkt's `--caps-retain` / `--caps-remove` after the
 * app's image, which replace the image's (src/stage0/isolators.ts). stage1 applies them
 * (crates/stage1/src/caps.rs).
 */
import type { PodlogError } from '../errors.js';

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

type Fail = (what: string) => PodlogError;

/** A capability isolator's value, checked: `{"set": [NAME, ...]}` of names stage1 knows. */
export const checkCapValue = (value: unknown, fail: Fail): { set: string[] } => {
  const set = (value as { set?: unknown } | null)?.set;
  if (!Array.isArray(set) || set.length === 0 || !set.every((n) => typeof n === 'string')) throw fail(`"set" must be a non-empty list of capability names (${JSON.stringify(set)})`);
  const unknown = set.find((n) => !NAMES.has(n));
  if (unknown !== undefined) throw fail(`unknown capability ${JSON.stringify(unknown)} (names as in capabilities(7): CAP_NET_BIND_SERVICE, ...)`);
  return { set };
};
