/**
 * run and run-prepared: stage1 started with the pod lock (Stage1StartRequested → PodStarted), then
 * waited for; its status is the pod's exit code (the first failing app's, 128+signal for a killed
 * one), recorded with the apps' codes as PodExited. Signals to `podlog run` reach the pod as a stop.
 */
import type { ChildProcess } from 'node:child_process';
import { PodlogError } from '../errors.js';
import { stage1RunOptions, type PrepareConfig, type RunConfig } from './config.js';
import { debug } from './debug.js';
import { checkMdsAvailability } from './mds.js';
import { observeExit } from './observe.js';
import { prepare, type PrepareHooks } from './prepare.js';
import type { Stage0 } from './session.js';
import { exitCodeOf } from './stage1.js';

const exited = (child: ChildProcess): Promise<number> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(exitCodeOf(child.exitCode, child.signalCode))
    : new Promise((resolve) => child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal))));

/** Starts a prepared pod and waits for it; returns the pod's exit code. */
export const runPrepared = async (s: Stage0, cfg: RunConfig, uuid: string): Promise<number> => {
  const options = stage1RunOptions(cfg);
  // Before the pod moves to running, so a missing service leaves it runnable (rkt #1434).
  if (cfg.mdsRegister) await checkMdsAvailability();
  await s.engine.request(uuid, 'Stage1StartRequested', { ...options, hostname: cfg.hostname ?? `podlog-${uuid}` });
  const child = s.effects.child(uuid);
  if (child === undefined) throw new PodlogError('ESTAGE1', `stage1 of pod ${uuid} was not started by this process`);
  debug(`pod ${uuid}: stage1 running as pid ${child.pid}`);
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal);
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
  for (const [sig, handler] of handlers) process.on(sig, handler);
  try {
    const code = await exited(child);
    await observeExit(s.engine, s.dataDir, uuid, code);
    return code;
  } finally {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  }
};

export const run = async (s: Stage0, cfg: PrepareConfig & RunConfig, hooks: PrepareHooks = {}): Promise<number> => {
  // Flags stage1 cannot honour are refused before anything is created.
  stage1RunOptions(cfg);
  const uuid = await prepare(s, cfg, hooks);
  return runPrepared(s, cfg, uuid);
};
