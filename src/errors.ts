/**
 * One error type for everything the engine reports to a user. `code` is stable (tests and the event
 * log's EffectFailed events key on it); `exitCode` is what the CLI exits with: 254 is rkt's code for
 * the engine's own failures.
 */
export class PodlogError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PodlogError';
    this.code = code;
    this.exitCode = options.exitCode ?? 254;
  }
}

export const isPodlogError = (e: unknown): e is PodlogError => e instanceof PodlogError;
