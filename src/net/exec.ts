/**
 * Executing one CNI plugin as the spec says: the parameters in CNI_* environment variables, the
 * network configuration on stdin, a result (ADD) or nothing (DEL, CHECK) on stdout and exit 0, or a
 * non-zero exit with an error JSON `{cniVersion, code, msg, details}` on stdout.
 */
import { spawn } from 'node:child_process';
import { PodlogError } from '../errors.js';
import { isJsonObject, parseJsonOrUndefined, type JsonObject } from './json.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK';

/** The runtime's side of one call: who the container is and where its interface goes. */
export interface PluginInvocation {
  /** CNI_CONTAINERID: podlog passes the pod UUID, as rkt did. */
  containerId: string;
  /** CNI_NETNS: a path to the pod's network namespace (`/proc/PID/ns/net` or a bind mount of it). */
  netns: string;
  /** CNI_IFNAME: the interface inside the pod (eth0, eth1, ...). */
  ifName: string;
  /** CNI_ARGS: `K=V;K2=V2`, or empty. */
  args: string;
  /** CNI_PATH: where the plugin finds the plugins it delegates to (its IPAM plugin). */
  pluginDirs: readonly string[];
}

/** A plugin's failure, with its CNI error (code, msg, details) when it printed one. */
export class CniPluginError extends PodlogError {
  constructor(
    message: string,
    readonly cniCode?: number,
    readonly msg?: string,
    readonly details?: string,
  ) {
    super('ENET_PLUGIN', message);
    this.name = 'CniPluginError';
  }
}

/** Plugins are quick (milliseconds); a minute means one is stuck (a dhcp plugin without its daemon). */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;
/** How much of a failing plugin's output an error quotes. */
const OUTPUT_QUOTED = 2000;

/**
 * Exactly the spec's variables, plus PATH: plugins exec iptables and ip through it, and nothing
 * else of the caller's environment should change what a plugin does.
 */
const pluginEnv = (command: CniCommand, call: PluginInvocation): NodeJS.ProcessEnv => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: call.containerId,
  CNI_NETNS: call.netns,
  CNI_IFNAME: call.ifName,
  CNI_ARGS: call.args,
  CNI_PATH: call.pluginDirs.join(':'),
  PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

const run = (path: string, env: NodeJS.ProcessEnv, stdin: string, timeoutMs: number): Promise<Exit> =>
  new Promise((resolve, reject) => {
    // Its own process group, so a timeout kills what the plugin started too (its IPAM plugin).
    const child = spawn(path, [], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // It ended as the timer fired: 'close' reports it.
      }
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-OUTPUT_QUOTED);
    });
    // A plugin may exit before reading its configuration; its exit says what happened, not the EPIPE.
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new PodlogError('ENET_PLUGIN', `cannot run CNI plugin ${path}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout: Buffer.concat(out).toString(), stderr: err.trim() });
    });
    child.stdin.end(stdin);
  });

/** A message with what the plugin printed, when it printed anything. */
const withOutput = (message: string, exit: Exit): string => {
  const printed = [['stdout', exit.stdout.trim().slice(0, OUTPUT_QUOTED)], ['stderr', exit.stderr]].filter(([, text]) => text !== '');
  return printed.length === 0 ? message : `${message} (${printed.map(([name, text]) => `${name}: ${text}`).join('; ')})`;
};

/** The error for a plugin that did not succeed: its own CNI error when it printed one. */
const failure = (what: string, exit: Exit, timeoutMs: number): PodlogError => {
  if (exit.timedOut) return new CniPluginError(withOutput(`${what} did not finish within ${timeoutMs / 1000} s and was killed`, exit));
  if (exit.signal !== null) return new CniPluginError(withOutput(`${what} was killed by ${exit.signal}`, exit));
  const e = parseJsonOrUndefined(exit.stdout);
  if (isJsonObject(e) && typeof e.msg === 'string') {
    const code = typeof e.code === 'number' ? e.code : undefined;
    const details = typeof e.details === 'string' && e.details !== '' ? e.details : undefined;
    const text = `${what} failed: ${e.msg}${details === undefined ? '' : `; ${details}`}${code === undefined ? '' : ` (CNI error code ${code})`}`;
    return new CniPluginError(text, code, e.msg, details);
  }
  return new CniPluginError(withOutput(`${what} exited with status ${exit.code} without a CNI error`, exit));
};

/**
 * Runs `path` for `command` with `config` on stdin. ADD resolves to the plugin's result (a JSON
 * object); DEL and CHECK resolve to undefined. `what` names the plugin and network in errors.
 */
export const execPlugin = async (
  path: string,
  command: CniCommand,
  config: JsonObject,
  call: PluginInvocation,
  what: string,
  timeoutMs = DEFAULT_PLUGIN_TIMEOUT_MS,
): Promise<JsonObject | undefined> => {
  const exit = await run(path, pluginEnv(command, call), JSON.stringify(config), timeoutMs);
  if (exit.timedOut || exit.code !== 0) throw failure(`${what} (${command})`, exit, timeoutMs);
  if (command !== 'ADD') return undefined;
  const result = parseJsonOrUndefined(exit.stdout);
  if (!isJsonObject(result)) {
    throw new PodlogError('ENET_PLUGIN_OUTPUT', `${what} (ADD) succeeded but printed ${exit.stdout.trim() === '' ? 'no result' : `a result that is not a JSON object: ${JSON.stringify(exit.stdout.slice(0, 200))}`}`);
  }
  return result;
};
