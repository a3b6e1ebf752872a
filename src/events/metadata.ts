/** Who, where and why for every event: the metadata the engine stamps on what it appends. */
import { hostname, userInfo } from 'node:os';
import { v7 as uuidv7 } from 'uuid';
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
  command: string[];
  correlationId: string;
}

export const commandContext = (command: string[] = process.argv.slice(2)): CommandContext => ({
  command,
  correlationId: uuidv7(),
});

export const newMetadata = (ctx: CommandContext, causationId?: string): EventMetadata => ({
  id: uuidv7(),
  time: new Date().toISOString(),
  host: hostname(),
  pid: process.pid,
  user: user(),
  command: ctx.command,
  correlationId: ctx.correlationId,
  ...(causationId === undefined ? {} : { causationId }),
});
