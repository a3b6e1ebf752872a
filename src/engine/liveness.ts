/** Whether the process that recorded an intent still exists, so that its intent is not abandoned. */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { EventMetadata } from '../store/port.js';

const CLOCK_TICKS = 100; // USER_HZ on Linux x86_64 and aarch64

const bootTimeMs = (): number => {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('btime '));
  return Number(line?.split(' ')[1] ?? 0) * 1000;
};

/** The fields of /proc/PID/stat after the command name (state, ppid, ...), or undefined. */
export const procStat = (pid: number): string[] | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
};

/** Start time of a process in ms since the epoch, or undefined if there is no such process. */
const startTimeMs = (pid: number): number | undefined => {
  const fields = procStat(pid);
  return fields === undefined ? undefined : bootTimeMs() + (Number(fields[19]) / CLOCK_TICKS) * 1000;
};

/**
 * True when `pid` on `host` is still the process that recorded an event at `time`. A pid that was
 * reused by a process started after the event is not it. Another host's process is assumed alive:
 * only that host can tell.
 */
export const recorderAlive = ({ host, pid, time }: Pick<EventMetadata, 'host' | 'pid' | 'time'>): boolean => {
  if (host !== hostname()) return true;
  if (pid === process.pid) return true;
  const started = startTimeMs(pid);
  // /proc's start time has a 10 ms resolution: allow that much.
  return started !== undefined && started <= Date.parse(time) + 1000 / CLOCK_TICKS;
};
