/**
 * A pod's directory: `<data>/pods/<uuid>/`, laid out as rkt's (rkt-semantics §1.7) where stage1
 * reads it (docs/stage1.md). The pod's state is not its directory's location, as in rkt, but its
 * stream in the event log; the directory holds what stage1 needs and what it reports back.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodCgroups } from '../events/catalogue.js';

export const podsDir = (dataDir: string): string => join(dataDir, 'pods');
export const podDir = (dataDir: string, uuid: string): string => join(podsDir(dataDir), uuid);

export const podPaths = (dir: string) => ({
  manifest: join(dir, 'pod'),
  appsinfo: join(dir, 'appsinfo'),
  appInfo: (app: string) => join(dir, 'appsinfo', app),
  stage1Manifest: join(dir, 'stage1', 'manifest'),
  /** Where the stage1 image lives on the host (rkt's stage1TreeStoreID). */
  stage1Root: join(dir, 'stage1Root'),
  /** An app's overlay directories (docs/stage1.md): stage0 creates them, stage1 mounts them. */
  overlayUpper: (treeStoreId: string, app: string) => join(dir, 'overlay', treeStoreId, 'upper', app),
  overlayWork: (treeStoreId: string, app: string) => join(dir, 'overlay', treeStoreId, 'work', app),
  /** --no-overlay: the app's root, a copy of its image's tree, which stage1 binds instead of an overlay. */
  copiedRoot: (app: string) => join(dir, 'apps', app, 'rootfs'),
  pid: join(dir, 'pid'),
  status: join(dir, 'status'),
  /** Per app, what its cgroup accounted when it exited (docs/stage1.md): written before its status. */
  appStats: (app: string) => join(dir, 'appstats', app),
  /** Per app and event handler, its exit code (docs/stage1.md): `hooks/<app>/pre-start`, `post-stop`. */
  hook: (app: string, hook: string) => join(dir, 'hooks', app, hook),
  subcgroup: join(dir, 'subcgroup'),
  /** The cgroup layout stage1 used and the pod's directories, written before it says the pod is up. */
  cgroups: join(dir, 'cgroups.json'),
  /** The apps' AC_METADATA_URL (run --mds-register), which stage1 puts in their environment. */
  metadataUrl: join(dir, 'metadata-url'),
  /** The network namespace the pod's CNI networks are attached to: a bind mount stage1 keeps until the last detach. */
  netns: join(dir, 'netns'),
});

/** Creates the pod's directory, or finds it made by an earlier attempt of the same effect. */
export const createPodDir = (dataDir: string, uuid: string): string => {
  mkdirSync(podsDir(dataDir), { recursive: true, mode: 0o700 });
  const dir = podDir(dataDir, uuid);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  return dir;
};

/**
 * Writes a file whole or not at all (a temporary name, then rename), so that an effect interrupted
 * half-way leaves either the old file or none, and the reconciler can tell which.
 */
export const writeWhole = (path: string, data: string, mode = 0o644): void => {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
};

/** The pid stage1 wrote (the pod's PID 1 on the host), if it did. */
export const readPid = (dir: string): number | undefined => {
  try {
    return Number(readFileSync(podPaths(dir).pid, 'utf8').trim());
  } catch {
    return undefined;
  }
};

export interface AppStatus {
  app: string;
  code: number;
  /** When stage1 wrote it: the order apps exited in. */
  at: number;
  oom?: boolean;
  memoryPeak?: number;
  cpuTime?: number;
}

/** A JSON file stage1 wrote, or undefined if it wrote none (an older stage1, or a pod killed first). */
const readJson = (path: string): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

/** What an app's cgroup accounted: the fields stage1 could read, numbers where it gave numbers. */
const appStats = (dir: string, app: string): Pick<AppStatus, 'oom' | 'memoryPeak' | 'cpuTime'> => {
  const s = readJson(podPaths(dir).appStats(app)) ?? {};
  return {
    ...(typeof s.oom === 'boolean' ? { oom: s.oom } : {}),
    ...(Number.isSafeInteger(s.memoryPeak) ? { memoryPeak: s.memoryPeak as number } : {}),
    ...(Number.isSafeInteger(s.cpuTime) ? { cpuTime: s.cpuTime as number } : {}),
  };
};

/** The cgroups stage1 says it put the pod in. */
export const readPodCgroups = (dir: string): PodCgroups | undefined => {
  const c = readJson(podPaths(dir).cgroups);
  const layouts: unknown[] = ['unified', 'legacy', 'hybrid'];
  if (c === undefined || !layouts.includes(c.layout) || !Array.isArray(c.dirs) || !c.dirs.every((d) => typeof d === 'string')) return undefined;
  return { layout: c.layout as PodCgroups['layout'], dirs: c.dirs as string[] };
};

/** The exit codes stage1 recorded, in the order the apps exited. */
export const readAppStatuses = (dir: string): AppStatus[] => {
  const statusDir = podPaths(dir).status;
  let names: string[];
  try {
    names = readdirSync(statusDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.startsWith('.'))
    .flatMap((app) => {
      const file = join(statusDir, app);
      const code = Number(readFileSync(file, 'utf8').trim());
      return Number.isInteger(code) ? [{ app, code, at: statSync(file).mtimeMs, ...appStats(dir, app) }] : [];
    })
    .sort((a, b) => a.at - b.at);
};

/** Whether stage1 recorded an app's code: the pod ran, even if it ended before it was up. */
export const appRan = (dir: string): boolean => readAppStatuses(dir).length > 0;

/**
 * rkt's pod exit code from what stage1 left: the first failing app's code, else 0. An app with no
 * status was killed with the pod's PID 1 (SIGKILL to the pid namespace), which is 137.
 */
export const podExitCode = (apps: string[], statuses: AppStatus[]): number => {
  const failing = statuses.find((s) => s.code !== 0);
  if (failing) return failing.code;
  return apps.every((a) => statuses.some((s) => s.app === a)) ? 0 : 137;
};

export interface HookRun {
  app: string;
  hook: 'pre-start' | 'post-stop';
  code: number;
}

/** The event handlers stage1 ran for `apps`, each with its code. */
export const readHookRuns = (dir: string, apps: string[]): HookRun[] =>
  (['pre-start', 'post-stop'] as const).flatMap((hook) =>
    apps.flatMap((app) => {
      try {
        const code = Number(readFileSync(podPaths(dir).hook(app, hook), 'utf8').trim());
        return Number.isInteger(code) ? [{ app, hook, code }] : [];
      } catch {
        return [];
      }
    }),
  );
