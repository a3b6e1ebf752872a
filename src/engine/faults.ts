/**
 * Fault injection, for tests only (the README says so; nothing else sets these variables):
 * - PODLOG_CRASH_AT names a step ("after-intent:Stage1StartRequested", "after-effect:startStage1",
 *   "before-outcome:PodStarted", "before-outcome:ImageImported") at which the process kill -9s itself;
 * - PODLOG_FAIL_AT=effect:NAME makes the effect NAME fail as if the world had refused it.
 * Tests use them to prove that every crash and every failed effect leaves a truthful log that the
 * verbs and the reconciler can finish.
 */
import { PodlogError } from '../errors.js';

export const crashPoint = (step: string): void => {
  if (process.env.PODLOG_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
};

/** Throws the injected failure when PODLOG_FAIL_AT names this effect. */
export const injectedFailure = (effect: string): void => {
  if (process.env.PODLOG_FAIL_AT === `effect:${effect}`) {
    throw new PodlogError('EINJECTED', `effect ${effect} failed: injected by PODLOG_FAIL_AT`);
  }
};
