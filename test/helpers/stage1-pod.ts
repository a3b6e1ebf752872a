/**
 * Builds pod directories for podlog-stage1 the way stage0 lays them out (docs/stage1.md), and spawns
 * stage1 on them. Nothing here mounts anything: the tree store is a plain copy of the busybox rootfs.
 *
 * The pod lock is taken as stage0 takes it: the addon's lockDir (src/native.ts) opens the pod directory
 * and flocks it exclusively; the fd goes to stage1 as fd 3 with RKT_LOCK_FD=3. `--ready-fd` is fd 4, a
 * socket (what Node's 'pipe' stdio creates).
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { closeFd, lockDir, stage1Path } from '../../src/native.js';
import { busyboxRootfs } from './fixtures.js';

export const stage1Bin = stage1Path();
export const TREE_STORE_ID = 'deps-sha512-busybox';
/** The fd number `--ready-fd` names in these tests. */
export const READY_FD = 4;

export interface AppSpec {
  name: string;
  exec: string[];
  user?: string;
  group?: string;
  supplementaryGIDs?: number[];
  workingDirectory?: string;
  environment?: Record<string, string>;
  /** appc isolators, as stage0 writes them in the pod manifest's app. */
  isolators?: { name: string; value: unknown }[];
  /** appc event handlers (`pre-start`, `post-stop`), as the image's app has them. */
  eventHandlers?: { name: string; exec: string[] }[];
}

let treeStore: string | undefined;
const tempDirs: string[] = [];
/** stage1 processes started here and not yet exited. */
const live = new Set<ChildProcess>();

/** A tree store holding one rendered tree, a copy of the busybox rootfs (made once per process). */
export function busyboxTreeStore(): string {
  treeStore ??= makeTreeStore(tmpdir());
  return treeStore;
}

/** A new tree store under `base` (removed by cleanupStage1Dirs). */
export function makeTreeStore(base: string): string {
  const dir = mkdtempSync(join(base, 'podlog-s1-store-'));
  tempDirs.push(dir);
  mkdirSync(join(dir, TREE_STORE_ID));
  const cp = spawnSync('cp', ['-a', busyboxRootfs, join(dir, TREE_STORE_ID, 'rootfs')]);
  if (cp.status !== 0) throw new Error(`cp -a ${busyboxRootfs}: ${cp.stderr}`);
  return dir;
}

/** A fresh pod directory named by a new UUID, as stage0 prepares it (under `base`, default /tmp). */
export function makePod(apps: AppSpec[], base = tmpdir()): string {
  const parent = mkdtempSync(join(base, 'podlog-s1-pods-'));
  tempDirs.push(parent);
  const dir = join(parent, randomUUID());
  mkdirSync(dir);
  writeFileSync(join(dir, 'pod'), podManifest(apps));
  for (const a of apps) prepareApp(dir, a);
  return dir;
}

/**
 * Adds apps to a mutable pod as stage0 does before `app-add`: the pod manifest rewritten whole with
 * `apps` (a temporary file renamed over it), and each new app prepared as makePod prepares them.
 */
export function setPodApps(dir: string, apps: AppSpec[]): void {
  for (const a of apps) if (!existsSync(join(dir, 'appsinfo', a.name))) prepareApp(dir, a);
  writeFileSync(join(dir, 'pod.tmp'), podManifest(apps));
  renameSync(join(dir, 'pod.tmp'), join(dir, 'pod'));
}

/** The pod manifest stage0 writes for `apps`, each on the busybox image. */
function podManifest(apps: AppSpec[]): string {
  const manifest = {
    acKind: 'PodManifest',
    acVersion: '0.8.11',
    apps: apps.map((a) => ({
      name: a.name,
      image: { id: 'sha512-0000', name: 'podlog.test/busybox' },
      app: {
        exec: a.exec,
        user: a.user ?? '0',
        group: a.group ?? '0',
        supplementaryGIDs: a.supplementaryGIDs ?? [],
        workingDirectory: a.workingDirectory ?? '/',
        environment: Object.entries(a.environment ?? {}).map(([name, value]) => ({ name, value })),
        ...(a.isolators ? { isolators: a.isolators } : {}),
        ...(a.eventHandlers ? { eventHandlers: a.eventHandlers } : {}),
      },
    })),
  };
  return JSON.stringify(manifest);
}

/** What stage0 prepares for an app: its overlay directories (prepareOverlay, with its modes) and appsinfo. */
function prepareApp(dir: string, a: AppSpec): void {
  for (const [kind, mode] of [['upper', 0o755], ['work', 0o700]] as const) {
    const d = join(dir, overlayDir(kind, a.name));
    mkdirSync(d, { recursive: true });
    chmodSync(d, mode);
  }
  mkdirSync(join(dir, 'appsinfo', a.name), { recursive: true });
  writeFileSync(join(dir, 'appsinfo', a.name, 'treeStoreID'), `${TREE_STORE_ID}\n`);
  writeFileSync(
    join(dir, 'appsinfo', a.name, 'manifest'),
    JSON.stringify({ acKind: 'ImageManifest', acVersion: '0.8.11', name: 'podlog.test/busybox' }),
  );
}

/** An app's overlay upper or work directory, relative to the pod directory. */
export const overlayDir = (kind: 'upper' | 'work', app: string): string => join('overlay', TREE_STORE_ID, kind, app);

/** Opens the pod directory and locks it exclusively, as stage0 does before spawning stage1. */
export const lockPod = (dir: string): Promise<number> => lockDir(dir);

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  done: Promise<Result>;
}

/**
 * Spawns stage1 with `fd` (if any) as fd 3 and RKT_LOCK_FD=3; `extra` are fds 4 and up. `via` runs it
 * through another program (given stage1's path and arguments), with the same fds.
 */
export function spawnStage1(args: string[], fd?: number, extra: ('pipe' | number)[] = [], via: string[] = []): Running {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', fd ?? 'ignore', ...extra];
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (fd !== undefined) env.RKT_LOCK_FD = '3';
  else delete env.RKT_LOCK_FD;
  const [bin = stage1Bin, ...pre] = via;
  const child = spawn(bin, via.length > 0 ? [...pre, stage1Bin, ...args] : args, { stdio, env });
  live.add(child);
  child.on('exit', () => live.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export interface InitOptions {
  hostname?: string;
  net?: 'none' | 'host';
  dns?: 'default' | 'host' | 'none';
  stopGrace?: number;
  treeStore?: string;
  /** `--ready-fd 4`, a socket read by readReady. */
  ready?: boolean;
  parentPid?: number;
  /** `--disable-seccomp` (rkt's --insecure-options=seccomp). */
  disableSeccomp?: boolean;
  /** `--mutable`: a sandbox, which runs no app until `app-add` and `app-start`. */
  mutable?: boolean;
}

export function initArgs(dir: string, o: InitOptions = {}): string[] {
  const args = ['init', '--pod-dir', dir, '--tree-store', o.treeStore ?? busyboxTreeStore()];
  if (o.hostname) args.push('--hostname', o.hostname);
  if (o.net) args.push('--net', o.net);
  if (o.dns) args.push('--dns', o.dns);
  if (o.stopGrace !== undefined) args.push('--stop-grace', String(o.stopGrace));
  if (o.ready) args.push('--ready-fd', String(READY_FD));
  if (o.parentPid !== undefined) args.push('--parent-pid', String(o.parentPid));
  if (o.disableSeccomp) args.push('--disable-seccomp');
  if (o.mutable) args.push('--mutable');
  return args;
}

/** Locks the pod and starts `init`; the lock fd is closed when stage1 has exited. */
export async function startPod(dir: string, o: InitOptions = {}): Promise<Running> {
  const fd = await lockPod(dir);
  const r = spawnStage1(initArgs(dir, o), fd, o.ready ? ['pipe'] : []);
  r.done.finally(() => closeFd(fd)).catch(() => {});
  return r;
}

/**
 * Starts `init` under a shell that waits for it, as `podlog run` does, with `--parent-pid` naming the
 * shell. Like stage0, neither this process nor the shell keeps the lock or the readiness fd once stage1
 * has them: the lock lives exactly as long as the pod, and the readiness fd ends when stage1 closes it.
 */
export async function startPodUnderShell(dir: string, o: InitOptions = {}): Promise<Running> {
  const fd = await lockPod(dir);
  try {
    // Started in the background, not exec'd: the shell stays stage1's parent and waits for it.
    const script = '"$@" --parent-pid $$ & exec 3<&- 4>&-; wait $!';
    return spawnStage1(initArgs(dir, o), fd, o.ready ? ['pipe'] : [], ['/bin/sh', '-c', script, 'sh']);
  } finally {
    closeFd(fd);
  }
}

/** What stage1 wrote to `--ready-fd` (see startPod's `ready`), once it is closed. */
export function readReady(pod: Running, timeoutMs = 10_000): Promise<string> {
  const s = pod.child.stdio[READY_FD] as Readable;
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`--ready-fd still open after ${timeoutMs} ms (read ${JSON.stringify(out)})`)), timeoutMs);
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('end', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', reject);
  });
}

export const runPod = async (dir: string, o: InitOptions = {}): Promise<Result> => (await startPod(dir, o)).done;

/** Runs a stage1 subcommand that needs no lock fd (enter, stop, gc). */
export const stage1 = (args: string[]): Promise<Result> => spawnStage1(args).done;

export const appStatus = (dir: string, app: string): string | undefined => {
  const p = join(dir, 'status', app);
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `<pod>/pid` (written once the apps run); undefined if stage1 ends first. */
export async function waitForPid(dir: string, running: Running, timeoutMs = 10_000): Promise<number | undefined> {
  let exited = false;
  void running.done.then(() => (exited = true));
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && !exited) {
    const p = join(dir, 'pid');
    if (existsSync(p)) return Number(readFileSync(p, 'utf8'));
    await sleep(5);
  }
  return undefined;
}

/** Whether `pid` exists and is not a zombie (an exited process nobody has reaped yet). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The parent pid of a live process (field 4 of /proc/PID/stat). */
export function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Host pids whose command line contains `needle` (e.g. a pod directory or a unique marker). */
export function pidsMatching(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle)) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Polls until no process matches `needle`; returns the stragglers after `timeoutMs`. */
export async function waitNoProcess(needle: string, timeoutMs = 5000): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left = pidsMatching(needle);
    if (left.length === 0 || Date.now() > end) return left;
    await sleep(10);
  }
}

export const mountinfo = (): string => readFileSync('/proc/self/mountinfo', 'utf8');

/**
 * Runs `fn` and checks that it left the mount table as it found it, no process of the pod behind, and
 * (after gc) none of the pod's cgroups. Whatever happens, processes started for this pod are killed
 * (its PID 1 dies with its supervisor), so that the test process can exit.
 */
export async function cleanPod(t: ExecutionContext, dir: string, fn: () => Promise<void>): Promise<void> {
  const before = mountinfo();
  try {
    await fn();
    t.is(mountinfo(), before, 'the host mount table is unchanged');
    t.deepEqual(await waitNoProcess(dir), [], 'no process of the pod is left');
    const gc = await stage1(['gc', '--pod-dir', dir]);
    t.is(gc.code, 0, `gc: ${gc.stderr}`);
    const subcgroup = join(dir, 'subcgroup');
    for (const line of (existsSync(subcgroup) ? readFileSync(subcgroup, 'utf8') : '').split('\n').filter(Boolean)) {
      t.false(existsSync(line), `cgroup ${line} is removed`);
    }
  } finally {
    for (const pid of pidsMatching(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Kills the stage1 processes this process started that still run (a failed test's pod: its PID 1 dies
 * with them), then removes the temp dirs (tree store and pods). Nothing in them is mounted.
 */
export function cleanupStage1Dirs(): void {
  for (const child of live) child.kill('SIGKILL');
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  treeStore = undefined;
}
