/** rkt's InitDebug: stage0's debug output on stderr, off unless --debug. */
let enabled = false;

/** Turns stage0's debug output on for the rest of the process (the CLI's --debug). */
export const initDebug = (): void => {
  enabled = true;
};

/** Writes `stage0: message` to stderr once {@link initDebug} was called; nothing otherwise. */
export const debug = (message: string): void => {
  if (enabled) process.stderr.write(`stage0: ${message}\n`);
};
