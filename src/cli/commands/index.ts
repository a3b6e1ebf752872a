/**
 * Every verb of the CLI, loaded only when it runs, so that `podlog list` does not pay for the code of
 * `run` (start-up time is part of every command's cost).
 */
import type { Command } from '../command.js';

export interface CommandEntry {
  name: string;
  summary: string;
  /**
   * The verb's sub-commands, known without loading it (the events view names a recorded command by its
   * verb and sub-command); the same as its Command's `subcommands` (test/cli/events-verbs.test.ts checks).
   */
  subcommands?: readonly string[];
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'run', summary: 'Run image(s) in a new pod; exits with the pod\'s code', load: async () => (await import('./run.js')).run },
  { name: 'prepare', summary: 'Prepare a pod to run later; prints its UUID', load: async () => (await import('./run.js')).prepare },
  { name: 'run-prepared', summary: 'Run a prepared pod; exits with the pod\'s code', load: async () => (await import('./run.js')).runPrepared },
  { name: 'app', summary: 'Mutable pods: app sandbox runs a pod with no app; app add, start, stop, rm, list, status act on its apps', subcommands: ['sandbox', 'add', 'start', 'stop', 'rm', 'list', 'status'], load: async () => (await import('./app.js')).app },
  { name: 'enter', summary: 'Run a command in a running pod (default /bin/sh); exits with its code', load: async () => (await import('./enter.js')).enter },
  { name: 'stop', summary: 'Stop running pods (SIGTERM, then SIGKILL after the grace period; --force: SIGKILL)', load: async () => (await import('./stop.js')).stop },
  { name: 'status', summary: "Print a pod's status (rkt's fields); --wait until it has finished", load: async () => (await import('./status.js')).status },
  { name: 'list', summary: 'List pods (from the pod list projection, never by folding every stream)', load: async () => (await import('./list.js')).list },
  { name: 'rm', summary: 'Remove exited, aborted or prepared pods', load: async () => (await import('./rm.js')).rm },
  { name: 'gc', summary: 'Garbage-collect exited, aborted and expired pods (mark, then sweep after the grace period)', load: async () => (await import('./gc.js')).gc },
  { name: 'export', summary: "Write an exited pod's app (its image with what it wrote) as an ACI", load: async () => (await import('./export.js')).exportCommand },
  { name: 'metadata-service', summary: "Serve the appc metadata API to pods run with --mds-register (rkt's metadata service)", load: async () => (await import('./metadata-service.js')).metadataService },
  { name: 'api-service', summary: 'Serve a read-only HTTP API over the log: pods, events, a live watch (SSE) and Prometheus metrics', load: async () => (await import('./api-service.js')).apiService },
  { name: 'cat-manifest', summary: "Print a pod's manifest", load: async () => (await import('./cat-manifest.js')).catManifest },
  { name: 'fetch', summary: 'Import images (ACI, OCI layout directory or tar) from files, http(s) URLs or registries (docker://); checks their signatures; prints their ids', load: async () => (await import('./fetch.js')).fetch },
  { name: 'image', summary: 'Operate on the image store: list, rm, gc, render, extract, export, verify, cat-manifest', subcommands: ['list', 'rm', 'gc', 'render', 'extract', 'export', 'verify', 'cat-manifest'], load: async () => (await import('./image.js')).image },
  { name: 'trust', summary: 'Trust public keys to vouch for images by name prefix (or --root for all); trust list, trust rm', subcommands: ['list', 'rm'], load: async () => (await import('./trust.js')).trust },
  { name: 'events', summary: 'Print the event log: a table for people (grouped by the command that recorded them), JSON or JSON lines; optionally following it', load: async () => (await import('./events.js')).events },
  { name: 'timeline', summary: "Draw pods' lifecycles from the log: an HTML or SVG Gantt chart, or a trace for Perfetto", load: async () => (await import('./timeline.js')).timeline },
  { name: 'log', summary: "Maintain the event log: compact forgets deleted pods' histories, migrate brings its schema up to date, copy moves it to another store (or merges a host's log into a shared one)", subcommands: ['compact', 'migrate', 'copy'], load: async () => (await import('./log.js')).log },
  { name: 'replay', summary: "Show a pod's state and context at any version of its history", load: async () => (await import('./replay.js')).replay },
  { name: 'machine', summary: 'Print the pod machine, drawn from its definition', load: async () => (await import('./machine.js')).machine },
  { name: 'completion', summary: 'Print a shell completion script (bash, zsh or fish): verbs, flags, pod UUIDs and image names', subcommands: ['bash', 'zsh', 'fish'], load: async () => (await import('./completion.js')).completion },
  { name: 'version', summary: "Print the versions of podlog, its stage1 and addon, the store schema, and what it can do", load: async () => (await import('./version.js')).version },
  { name: 'help', summary: "Print a command's synopsis, flags and examples", load: async () => (await import('./help.js')).help },
];
