/**
 * Whether the process that recorded an intent still exists, so that its intent is not abandoned.
 *
 * A process is named by (host, boot id, pid, start time in clock ticks since boot): the boot id changes
 * at every boot, and within one boot a pid is reused only by a process that starts later, so its start
 * ticks differ. Everything is compared exactly: no wall clock, no boot time (a clock step cannot make a
 * live recorder look dead).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { EventMetadata } from '../store/port.js';

/** The fields of /proc/PID/stat after the command name (state, ppid, ...), or undefined. */
export const procStat = (pid: number | 'self'): string[] | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
};

/**
 * Field 22 of /proc/PID/stat (starttime, clock ticks after boot) of a process that has not exited, or
 * undefined: a zombie has exited (it only waits for its parent to reap it) and will record nothing more.
 */
const runningSince = (pid: number | 'self'): number | undefined => {
  const fields = procStat(pid); // from field 3 (state) on
  return fields === undefined || fields[0] === 'Z' || fields[0] === 'X' ? undefined : Number(fields[22 - 3]);
};

let boot: string | undefined;
/** This boot's id: it changes at every boot, so what was recorded in another boot is told apart. */
export const bootId = (): string => (boot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());

let ownIdentity: { bootId: string; startTicks: number } | undefined;

/** This process's boot id and start ticks, read once: they cannot change while it runs. */
export const recorderIdentity = (): { bootId: string; startTicks: number } => {
  ownIdentity ??= { bootId: bootId(), startTicks: runningSince('self')! };
  return ownIdentity;
};

/**
 * True when the process that recorded an event (its metadata) may still be running:
 * - on another host: assumed alive, only that host can tell;
 * - on this host in another boot: dead, a reboot ended every process;
 * - in this boot: alive iff a process with its pid runs (a zombie does not) and started at the same tick.
 * Events recorded before podlog stored the boot id and start ticks have neither: their recorder is
 * judged by its pid alone, erring towards "alive" (a reused pid delays reconciling the intent until that
 * process ends; judging it dead could compensate a live recorder's intent, which is worse).
 */
export const recorderAlive = ({ host, pid, bootId, startTicks: ticks }: Pick<EventMetadata, 'host' | 'pid' | 'bootId' | 'startTicks'>): boolean => {
  if (host !== hostname()) return true;
  if (bootId === undefined || ticks === undefined) return runningSince(pid) !== undefined;
  if (bootId !== recorderIdentity().bootId) return false;
  return runningSince(pid) === ticks;
};
