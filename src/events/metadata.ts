/** Who, where and why for every event: the metadata the engine stamps on what it appends. */
import { hostname, userInfo } from 'node:os';
import { v7 as uuidv7 } from 'uuid';
import { hostId } from '../config.js';
import { recorderIdentity } from '../engine/liveness.js';
import type { EventMetadata } from '../store/port.js';

/** Looked up once: os.userInfo() reads the passwd database on every call. */
let userName: string | undefined;
const user = (): string => {
  if (userName === undefined) {
    try {
      userName = userInfo().username;
    } catch {
      // A uid without a passwd entry (containers, CI) still deserves a name in the log.
      userName = `uid:${process.getuid?.() ?? 'unknown'}`;
    }
  }
  return userName;
};

/** The context one user command runs in: every event it causes shares the correlation id. */
export interface CommandContext {
  /** The command line as the events record it, the values of secret flags redacted. */
  command: string[];
  /** A UUIDv7 shared by every event the command causes. */
  correlationId: string;
  /** The host the command runs for in a shared log (src/config.ts hostId). */
  hostId: string;
}

const REDACTED = '<redacted>';

/** NAME=VALUE → NAME=<redacted>: the name helps an operator and is not secret. */
const keepName = (value: string): string => {
  const eq = value.indexOf('=');
  return eq === -1 ? REDACTED : `${value.slice(0, eq + 1)}${REDACTED}`;
};

/**
 * A URL with its password (user:PASSWORD@, or libpq's ?password=) replaced, by position in the text as
 * given (a password may hold characters a parsed URL would percent-encode, '@' too: the authority's last
 * '@' ends it, as URL parsers read it): the rest says which log it was.
 */
export const keepUrl = (value: string): string =>
  value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#]*@/i, `$1${REDACTED}@`).replace(/([?&]password=)[^&#]*/gi, `$1${REDACTED}`);

/**
 * Flags whose values must never enter the log (events outlive the pod; its manifest does not), each
 * with what of the value may be kept. A later credential flag is one more line.
 */
const REDACTED_FLAGS: ReadonlyMap<string, (value: string) => string> = new Map([
  ['--set-env', keepName],
  ['--environment', keepName],
  ['--store', keepUrl],
]);

/**
 * The command line with the values of REDACTED_FLAGS replaced; `--flag V` becomes `--flag=V'`. Anywhere
 * in the line, app arguments included: a flag name there is redacted too, which costs nothing.
 */
export const redactCommand = (argv: readonly string[]): string[] => {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = eq === -1 ? a : a.slice(0, eq);
    const redact = REDACTED_FLAGS.get(flag);
    if (redact === undefined || (eq === -1 && i + 1 === argv.length)) kept.push(a);
    else kept.push(`${flag}=${redact(eq === -1 ? argv[++i]! : a.slice(eq + 1))}`);
  }
  return kept;
};

/**
 * A new command's context: a fresh correlation id, its command line (credentials redacted) and host
 * (the machine's id unless given). A library program makes one per user action it records.
 */
export const commandContext = (command: string[] = process.argv.slice(2), host: string = hostId()): CommandContext => ({
  command: redactCommand(command),
  correlationId: uuidv7(),
  hostId: host,
});

export const newMetadata = (ctx: CommandContext, causationId?: string): EventMetadata => ({
  id: uuidv7(),
  time: new Date().toISOString(),
  host: hostname(),
  hostId: ctx.hostId,
  pid: process.pid,
  ...recorderIdentity(),
  user: user(),
  command: ctx.command,
  correlationId: ctx.correlationId,
  ...(causationId === undefined ? {} : { causationId }),
});
