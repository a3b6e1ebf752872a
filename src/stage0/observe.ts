/**
 * Observing what the log cannot be told: a pod exits when stage1 ends and its lock is released,
 * whether or not anybody waits for it (rkt: a pod in run/ whose lock is free is exited). Whoever
 * sees it first records it (`run` when it waits, else `list`, `status`, `gc`), in one append with the
 * apps' exit codes, so it is recorded exactly once. An app of a mutable pod exits while its pod runs
 * on: its exit is recorded the same way, by the first verb that looks (`list`, `status`, the app verbs).
 */
import { existsSync } from 'node:fs';
import type { PodEngine, PodView } from '../engine/engine.js';
import type { EffectInterpreter, Outcome } from '../engine/effects.js';
import type { PodListRow } from '../engine/pod-list.js';
import { reconcilePod } from '../engine/reconciler.js';
import { ownsPod } from '../engine/hosts.js';
import { isPodlogError, PodlogError } from '../errors.js';
import { isLocked } from '../native.js';
import { podDir, podExitCode, readAppStatuses, readHookRuns, type HookRun } from './pod-dir.js';

/** Whether a pod recorded as running has ended: its stage1 no longer holds the pod lock. */
const stage1Ended = (uuid: string, dir: string): boolean => {
  if (!existsSync(dir)) {
    throw new PodlogError('EBROKEN', `pod ${uuid} is recorded as running but its directory ${dir} is gone: podlog cannot tell whether it still runs`);
  }
  return !isLocked(dir);
};

/**
 * What stage1 recorded of `apps`' runs, in the order they ran: the pre-start handlers before any
 * app, the apps' exits, then the post-stop handlers after them.
 */
const exitsOf = (dir: string, apps: string[]): Outcome[] => {
  const runs = readHookRuns(dir, apps);
  const hooks = (hook: HookRun['hook']): Outcome[] => runs.filter((h) => h.hook === hook).map((data): Outcome => ({ type: 'AppHookRan', data }));
  const exits = readAppStatuses(dir).filter((s) => apps.includes(s.app)).map(({ at: _at, ...data }): Outcome => ({ type: 'AppExited', data }));
  return [...hooks('pre-start'), ...exits, ...hooks('post-stop')];
};

/** The apps whose runs are not recorded yet: all of a pod's, or a mutable pod's running ones (an exited one's run is recorded). */
const unrecorded = (view: PodView): string[] =>
  view.context.apps.filter((a) => !view.context.mutable || a.state === 'running').map((a) => a.name);

/** Records `outcomes` unless another process recorded what it saw first (its record is the one). */
const recordSeen = async (engine: PodEngine, uuid: string, outcomes: Outcome[]): Promise<PodView> => {
  try {
    return (await engine.record(uuid, outcomes)).view;
  } catch (e) {
    if (isPodlogError(e) && e.code === 'EWRONG_STATE') return engine.load(uuid);
    throw e;
  }
};

/** Records the exit of a running pod whose lock is free; `code` is stage1's status when it was waited for. */
export const observeExit = async (engine: PodEngine, dataDir: string, uuid: string, code?: number): Promise<PodView> => {
  const view = await engine.load(uuid);
  const dir = podDir(dataDir, uuid);
  if (view.state !== 'running' || !stage1Ended(uuid, dir)) return view;
  const apps = unrecorded(view);
  const statuses = readAppStatuses(dir);
  // A mutable pod passes no app's code on (stage1 exits 0); one killed with its apps running is 137.
  const podCode = view.context.mutable ? (apps.every((a) => statuses.some((s) => s.app === a)) ? 0 : 137) : podExitCode(apps, statuses);
  return recordSeen(engine, uuid, [...exitsOf(dir, apps), { type: 'PodExited', data: { code: code ?? podCode } }]);
};

/**
 * A running mutable pod's apps that exited (on their own, or stopped) while the pod runs on: each
 * run's exit recorded once, by whoever looks first.
 */
export const observeAppExits = async (engine: PodEngine, dataDir: string, uuid: string): Promise<PodView> => {
  const view = await engine.load(uuid);
  if (view.state !== 'running' || !view.context.mutable) return view;
  const dir = podDir(dataDir, uuid);
  const exited = new Set(readAppStatuses(dir).map((s) => s.app));
  const apps = unrecorded(view).filter((a) => exited.has(a));
  return apps.length === 0 ? view : recordSeen(engine, uuid, exitsOf(dir, apps));
};

/** A pod whose history cannot be folded or whose directory is gone: named, and left as it is. */
export interface BrokenPod {
  /** The pod's full UUID. */
  uuid: string;
  /** Why it is broken: the error its fold or its reconciliation threw. */
  message: string;
}

/**
 * Makes the recorded states true before they are shown or acted on: exits of running pods are
 * observed, and intents whose process died are finished or compensated. One broken pod is one
 * error: it is reported by its UUID and the others go on. Only the engine's host's pods are looked at:
 * another host's pods are that host's to observe (src/engine/hosts.ts).
 *
 * @param rows - The pods to look at, as the pod list has them.
 */
export const reconcilePods = async (
  engine: PodEngine,
  effects: EffectInterpreter,
  dataDir: string,
  rows: Iterable<PodListRow>,
): Promise<{
  /** How many pods it recorded something for (the pod list is behind by as many). */
  changed: number;
  /** The pods it could not fold or reconcile. */
  broken: BrokenPod[];
}> => {
  let changed = 0;
  const broken: BrokenPod[] = [];
  for (const row of rows) {
    if (!ownsPod(engine.hostId, row.context)) continue;
    if (row.broken !== undefined) {
      broken.push({ uuid: row.uuid, message: row.broken });
      continue;
    }
    try {
      let state = row.state;
      if (row.context.pending !== undefined || state === 'preparing') {
        const result = await reconcilePod(engine, effects, row.uuid);
        if (result.actions.length > 0) changed++;
        state = result.after;
      }
      // The lock probe is one syscall; only a pod whose lock is free needs its stream read.
      if (state === 'running' && stage1Ended(row.uuid, podDir(dataDir, row.uuid))) {
        await observeExit(engine, dataDir, row.uuid);
        changed++;
      } else if (state === 'running' && row.context.mutable && row.context.apps.some((a) => a.state === 'running')) {
        const before = (await engine.load(row.uuid)).version;
        if ((await observeAppExits(engine, dataDir, row.uuid)).version !== before) changed++;
      }
    } catch (e) {
      broken.push({ uuid: row.uuid, message: (e as Error).message });
    }
  }
  return { changed, broken };
};
