/**
 * What the crash and concurrency tests share: bin/podlog run as a user runs it (asynchronously, so that
 * several run at once and a pod's orphaned stage1 holding a pipe never blocks the test), the pod's
 * processes found through /proc, and the test process's own mount table.
 *
 * A command's output goes to files, not pipes: a `podlog run` killed with -9 leaves its stage1 running
 * with the same stdout and stderr, and the test waits for the process it started, not for its orphans.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

export { mountTable, netnsMounts } from './podlog.js';

export const podlogBin = join(repoRoot, 'bin', 'podlog');

export interface Result {
  pid: number;
  /** The exit code, or null when a signal ended the process. */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Invocation {
  pid: number;
  done: Promise<Result>;
}

export interface EventJson {
  type: string;
  stream: string;
  version: number;
  position: number;
  data: Record<string, unknown>;
  meta: { command: string[]; pid: number; time: string };
}

export interface ListedPod {
  uuid: string;
  state: string;
  exit_code?: number;
  apps: Array<{ name: string; exit_code?: number }>;
}

let counter = 0;

export class DataDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'podlog-stress-'));
  private readonly logs = mkdtempSync(join(tmpdir(), 'podlog-stress-out-'));
  private readonly running = new Set<ChildProcess>();

  /** `env`: added to every podlog this data dir starts (PODLOG_NET, say). */
  constructor(private readonly env: Record<string, string> = {}) {}

  /**
   * Starts `podlog --dir DIR ...args`; `done` resolves when that process (not its orphans) exits.
   * With `stdoutFile`, its stdout (and its pod's, which inherits it) goes there and stays.
   */
  start(args: string[], env: Record<string, string> = {}, stdoutFile?: string): Invocation {
    const n = counter++;
    const outFile = stdoutFile ?? join(this.logs, `${n}.out`);
    const errFile = join(this.logs, `${n}.err`);
    const out = openSync(outFile, 'w');
    const err = openSync(errFile, 'w');
    const child = spawn(podlogBin, ['--dir', this.dir, ...args], { stdio: ['ignore', out, err], env: { ...process.env, ...this.env, ...env } });
    closeSync(out);
    closeSync(err);
    this.running.add(child);
    child.once('exit', () => this.running.delete(child));
    const done = new Promise<Result>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (status, signal) => {
        const read = (f: string) => readFileSync(f, 'utf8');
        const result = { pid: child.pid!, status, signal, stdout: read(outFile), stderr: read(errFile) };
        if (stdoutFile === undefined) rmSync(outFile, { force: true });
        rmSync(errFile, { force: true });
        resolve(result);
      });
    });
    return { pid: child.pid!, done };
  }

  podlog(args: string[], env: Record<string, string> = {}): Promise<Result> {
    return this.start(args, env).done;
  }

  /** Runs a command that must succeed; its failure is the test's. */
  async ok(args: string[]): Promise<string> {
    const r = await this.podlog(args);
    if (r.status !== 0) throw new Error(`podlog ${args.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr}`);
    return r.stdout;
  }

  async list(): Promise<ListedPod[]> {
    return JSON.parse(await this.ok(['list', '--format', 'json'])) as ListedPod[];
  }

  async events(pod?: string): Promise<EventJson[]> {
    const text = await this.ok(['events', '--json', ...(pod ? ['--pod', pod] : [])]);
    return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as EventJson);
  }

  podDir(uuid: string): string {
    return join(this.dir, 'pods', uuid);
  }

  cleanup(): void {
    // A failed test must not leave its pods running: `podlog run` passes SIGTERM on to its pod.
    for (const child of this.running) child.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.logs, { recursive: true, force: true });
  }
}

/**
 * The processes whose command line contains `needle` (a pod directory: stage1's supervisor and the
 * pod's PID 1 have `--pod-dir DIR`; or a marker in the app's own command line). Returns "pid: cmdline".
 */
export const processesMentioning = (needle: string): string[] => {
  const found: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(needle)) found.push(`${name}: ${cmdline.trim()}`);
  }
  return found;
};

/** Whether `pid` is a live process that mentions `needle` (a recycled pid that does not is not the pod's). */
export const pidMentions = (pid: number, needle: string): boolean => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
  } catch {
    return false;
  }
};

/** At most `n` of the functions run at once (the VM has 2 cores; every podlog start costs ~100 ms of CPU). */
export const limit = (n: number) => {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((ok) => waiting.push(ok));
    else running++;
    try {
      return await fn();
    } finally {
      // The slot passes to the next waiter directly, so a newcomer cannot take it in between.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
};
