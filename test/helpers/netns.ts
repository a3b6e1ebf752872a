/**
 * Network tests run in a network namespace made for them, never in the host's: `inNetns` runs an
 * exported function of a test module in a new Node process under
 * `unshare --net --mount --propagation private`, with loopback up and ip_forward=1 set there. That
 * namespace plays "the host" (CNI plugins put their host-side links, routes and iptables rules in it);
 * it and everything in it goes away when the function returns. A "pod" is a process in a network
 * namespace of its own (`startPod`), whose namespace the plugins are pointed at.
 *
 * This file is also the program `inNetns` runs inside the namespace.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repoRoot } from './fixtures.js';

const self = fileURLToPath(import.meta.url);
/** The network namespace of the process that started the runner: the runner must not be in it. */
const OUTER_NETNS = 'PODLOG_TEST_OUTER_NETNS';
const RESULT_FD = 3;

const netnsOf = (pid: number | 'self'): string => readlinkSync(`/proc/${pid}/ns/net`);

/** Whether this process is a runner: started by inNetns, and in a namespace that is not its starter's. */
const insideRunner = (): boolean => process.env[OUTER_NETNS] !== undefined && netnsOf('self') !== process.env[OUTER_NETNS];

/**
 * Runs `fn(arg)`, exported by the module at `modulePath`, inside a fresh network (and mount)
 * namespace, and resolves to what it returned (as JSON). A throw inside rejects with its stack.
 */
export const inNetns = <T>(modulePath: string, fn: string, arg: unknown = null): Promise<T> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      'unshare',
      ['--net', '--mount', '--propagation', 'private', '--', process.execPath, '--import=tsx', self, modulePath, fn],
      { cwd: repoRoot, env: { ...process.env, [OUTER_NETNS]: netnsOf('self') }, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] },
    );
    const result: Buffer[] = [];
    let output = '';
    child.stdio[RESULT_FD]!.on('data', (b: Buffer) => result.push(b));
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${fn} in its network namespace exited with ${code}:\n${output}`));
      resolve(JSON.parse(Buffer.concat(result).toString()) as T);
    });
    child.stdin!.end(JSON.stringify(arg));
  });

/** A command's outcome, as text. */
export const run = (cmd: string, args: string[]): SpawnSyncReturns<string> => spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });

/** A command that must succeed: its stdout. */
export const must = (cmd: string, args: string[]): string => {
  const r = run(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
};

export interface Pod {
  pid: number;
  /** What CNI_NETNS names: the pod's network namespace. */
  netns: string;
  /** Runs a command in the pod's network namespace. */
  exec: (cmd: string, args: string[]) => SpawnSyncReturns<string>;
  /**
   * Keeps the pod's namespace alive beyond its process, as stage1 keeps a pod's: a bind mount of it
   * on `path` (in the runner's own mount namespace); undone by `release`.
   */
  keep: (path: string) => string;
  /** Kills the pod by its pid and waits for it: its namespace, and the links in it, go too unless kept. */
  kill: () => Promise<void>;
}

/** Unmounts what `keep` mounted. */
export const release = (path: string): void => {
  if (!insideRunner()) throw new Error('release() unmounts: only inside inNetns');
  must('umount', [path]);
};

const pods = new Set<number>();

/**
 * A pod: `unshare --net sleep 1000`, resolved once it is in its own network namespace. It dies with
 * the runner (parent-death signal) if the runner dies first.
 */
export const startPod = async (): Promise<Pod> => {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--net', 'sleep', '1000'], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start a pod process');
  pods.add(pid);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const mine = netnsOf('self');
  for (let i = 0; netnsOf(pid) === mine; i++) {
    if (i > 500) throw new Error(`pod ${pid} did not enter a network namespace of its own`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const netns = `/proc/${pid}/ns/net`;
  return {
    pid,
    netns,
    exec: (cmd, args) => run('nsenter', [`--net=${netns}`, '--', cmd, ...args]),
    keep: (path) => {
      if (!insideRunner()) throw new Error('keep() mounts: only inside inNetns');
      writeFileSync(path, '');
      must('mount', ['--bind', netns, path]);
      return path;
    },
    kill: async () => {
      process.kill(pid, 'SIGKILL');
      pods.delete(pid);
      await exited;
    },
  };
};

/** The runner: inside the namespace, check it is not the caller's, set it up, run the function. */
const main = async (modulePath: string, fn: string): Promise<void> => {
  if (!insideRunner()) throw new Error('refusing to run: not in a network namespace of its own');
  must('ip', ['link', 'set', 'lo', 'up']);
  // /proc/sys/net is this process's network namespace's: the host's ip_forward is not touched.
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  process.on('exit', () => pods.forEach((pid) => process.kill(pid, 'SIGKILL')));
  const arg: unknown = JSON.parse(await new Promise<string>((resolve) => {
    let text = '';
    process.stdin.on('data', (b: Buffer) => (text += b.toString()));
    process.stdin.on('end', () => resolve(text));
  }));
  const mod = (await import(pathToFileURL(modulePath).href)) as Record<string, (a: unknown) => unknown>;
  const f = mod[fn];
  if (typeof f !== 'function') throw new Error(`${modulePath} exports no function ${fn}`);
  writeSync(RESULT_FD, JSON.stringify((await f(arg)) ?? null));
};

if (process.argv[1] === self) {
  main(process.argv[2]!, process.argv[3]!).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e instanceof Error ? e.stack : e);
      process.exit(1);
    },
  );
}
