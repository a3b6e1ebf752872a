/** Running bin/podlog as a user would, on a data dir of the test's own. */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';

export const podlogBin = join(repoRoot, 'bin', 'podlog');

export interface DataDir {
  dir: string;
  podlog: (args: string[], env?: Record<string, string>) => SpawnSyncReturns<string>;
  /** Starts a command in the background (a pod that runs until stopped). */
  start: (args: string[], env?: Record<string, string>) => ReturnType<typeof spawn>;
  /** The UUIDs of the pods `list` shows, oldest first. */
  pods: () => Array<{ uuid: string; state: string; exit_code?: number; apps: Array<{ name: string; exit_code?: number }> }>;
  events: (pod?: string) => Array<{ type: string; version: number; data: Record<string, unknown>; meta: { command: string[]; pid: number } }>;
  cleanup: () => void;
}

export const dataDir = (): DataDir => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-e2e-'));
  const podlog = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(podlogBin, ['--dir', dir, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  const started: ReturnType<typeof spawn>[] = [];
  return {
    dir,
    podlog,
    start: (args, env = {}) => {
      const child = spawn(podlogBin, ['--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      started.push(child);
      return child;
    },
    pods: () => JSON.parse(podlog(['list', '--format', 'json']).stdout),
    events: (pod) =>
      podlog(['events', '--json', ...(pod ? ['--pod', pod] : [])])
        .stdout.split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l)),
    cleanup: () => {
      // A failed test must not leave its pods running: `podlog run` passes SIGTERM on to its pod.
      for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

/**
 * The mount table of the namespace the tests run in, without the network namespaces pods on CNI
 * networks keep (nsfs, `<pod>/netns`): tests that run at the same time add and remove those. A pod's
 * own is checked by its test (its directory cannot go while it is mounted; `netnsMounts`).
 */
export const mountTable = (): string =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ').slice(4).join(' '))
    .filter((l) => !l.includes(' - nsfs '))
    .sort()
    .join('\n');

/** The kept network namespaces (nsfs mounts) below `dir`. */
export const netnsMounts = (dir: string): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(' - nsfs ') && l.split(' ')[4]!.startsWith(`${dir}/`));

/** `podlog ARGS` without blocking this process (whose event loop may serve the pod). */
export const podlogAsync = (d: DataDir, args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = d.start(args, env);
    let [stdout, stderr] = ['', ''];
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });

/** Resolves once `path` exists with content (a --uuid-file-save file). */
export const waitForFile = async (path: string, timeoutMs = 20_000): Promise<string> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const text = readFileSync(path, 'utf8').trim();
      if (text !== '') return text;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${path} did not appear`);
    await new Promise((ok) => setTimeout(ok, 20));
  }
};

/** Resolves once `status` says the pod runs (stop and enter reach it from then on). */
export const waitForRunning = async (d: DataDir, uuid: string): Promise<void> => {
  for (let i = 0; i < 200; i++) {
    if (d.podlog(['status', uuid]).stdout.includes('state=running')) return;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`pod ${uuid} never ran`);
};

/** A `podlog run` in the background: its pod's UUID once it exists, its exit, and what it printed so far. */
export interface BackgroundRun {
  uuid: string;
  child: ReturnType<typeof spawn>;
  exited: Promise<number | null>;
  stdout: () => string;
}

/**
 * Starts `podlog run ARGS` (run's pod flags go first in ARGS), or another verb that is its pod (`app
 * sandbox`), and resolves once its pod exists.
 */
export const startRun = async (d: DataDir, args: string[], verb: string[] = ['run']): Promise<BackgroundRun> => {
  const uuidFile = join(d.dir, `uuid-${Math.random().toString(36).slice(2)}`);
  const child = d.start([...verb, `--uuid-file-save=${uuidFile}`, ...args]);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((ok) => child.on('exit', ok));
  return { uuid: await waitForFile(uuidFile), child, exited, stdout: () => out };
};
