/**
 * Crash injection for tests: PODLOG_CRASH_AT names a step ("after-intent:Stage1StartRequested",
 * "after-effect:startStage1", "before-outcome:PodStarted") at which the engine kill -9s itself, so
 * tests can prove that every crash leaves a truthful log that the reconciler can finish.
 */
export const crashPoint = (step: string): void => {
  if (process.env.PODLOG_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
};
