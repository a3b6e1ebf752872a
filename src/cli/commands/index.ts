/**
 * Every verb of the CLI, loaded only when it runs, so that `podlog list` does not pay for the code of
 * `run` (start-up time is part of every command's cost).
 */
import type { Command } from '../command.js';

export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'events', summary: 'Print the event log (table or JSON lines), optionally following it', load: async () => (await import('./events.js')).events },
  { name: 'replay', summary: "Show a pod's state and context at any version of its history", load: async () => (await import('./replay.js')).replay },
  { name: 'machine', summary: 'Print the pod machine, drawn from its definition', load: async () => (await import('./machine.js')).machine },
];
