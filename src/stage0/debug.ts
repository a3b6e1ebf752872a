/** rkt's InitDebug: stage0's debug output on stderr, off unless --debug. */
let enabled = false;

export const initDebug = (): void => {
  enabled = true;
};

export const debug = (message: string): void => {
  if (enabled) process.stderr.write(`stage0: ${message}\n`);
};
