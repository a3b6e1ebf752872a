/**
 * Start-to-exit of `/bin/true` in a fresh pod, spawned from Node and awaited, for podlog-stage1 and peers
 * measured in the same run on the same busybox rootfs (this 2-core VM is noisy: compare ratios):
 *
 *   - podlog-stage1 init (pid/mount/uts/ipc/net namespaces, overlay, /proc /dev /sys, caps, seccomp,
 *     cgroups), one fresh pod directory per run, as stage0 would prepare it; also with the host's
 *     network namespace, and with the pod directory and tree store on tmpfs (/dev/shm);
 *   - `crun run` and `runc run` on an OCI bundle made by `crun spec` (pid, net, ipc, uts, mount namespaces);
 *   - `unshare -m -p -f -u -i --mount-proc chroot ROOTFS /bin/true`, the floor for namespaced start.
 *
 * crun 1.8 refuses hybrid cgroups ("drop all controllers from cgroupv2"), so it runs through
 * `nsenter --mount` into a helper mount namespace (private propagation, made by `unshare -m`) in which the
 * namespace's own copy of /sys/fs/cgroup/unified is unmounted; the host's mounts are untouched. The
 * nsenter hop is measured too and reported.
 *
 *   node --import=tsx -e "import('./bench/stage1.ts').then(m=>m.run())"
 *
 * Target: podlog-stage1's median ≤ crun's.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs } from '../test/helpers/fixtures.js';
import { closeFd } from '../src/native.js';
import { busyboxTreeStore, cleanupStage1Dirs, lockPod, makePod, makeTreeStore, stage1Bin } from '../test/helpers/stage1-pod.js';

const RUNS = 30;
const WARMUP = 3;

interface Prepared {
  argv: string[];
  fd?: number;
  cleanup?: () => void;
}

export interface Cmd {
  name: string;
  /** Prepares one run (outside the timed region); returns the argv and the fds to pass. */
  prepare: (i: number) => Promise<Prepared> | Prepared;
}

export const spawnAndWait = (argv: string[], fd?: number): Promise<number | null> =>
  new Promise((resolve, reject) => {
    const stdio: ('ignore' | 'inherit' | number)[] = ['ignore', 'ignore', 'inherit'];
    const env = { ...process.env };
    if (fd !== undefined) {
      stdio.push(fd);
      env.RKT_LOCK_FD = '3';
    }
    const child = spawn(argv[0]!, argv.slice(1), { stdio, env });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });

async function once(cmd: Cmd, i: number): Promise<number> {
  const { argv, fd, cleanup } = await cmd.prepare(i);
  const t0 = process.hrtime.bigint();
  const code = await spawnAndWait(argv, fd);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  cleanup?.();
  if (code !== 0) throw new Error(`${cmd.name}: ${argv.join(' ')} exited ${code}`);
  return ms;
}

/** Round-robin over the commands, so that load changes during the run hit all of them alike. */
export async function measureAll(cmds: Cmd[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(cmds.map((c) => [c.name, []]));
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const cmd of cmds) {
      const ms = await once(cmd, i);
      if (i >= WARMUP) out.get(cmd.name)!.push(ms);
    }
  }
  for (const xs of out.values()) xs.sort((a, b) => a - b);
  return out;
}

const median = (xs: number[]): number => xs[Math.floor(xs.length / 2)]!;

/** An OCI bundle made by `crun spec` in `dir`/bundle: the busybox rootfs running /bin/true. */
export function ociBundle(dir: string): string {
  const bundle = join(dir, 'bundle');
  cpSync(busyboxRootfs, join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  const spec = spawnSync('crun', ['spec'], { cwd: bundle });
  if (spec.status !== 0) throw new Error(`crun spec: ${spec.stderr}`);
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.process.args = ['/bin/true'];
  config.process.terminal = false;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  return bundle;
}

/** A mount namespace of its own (private propagation) without the v2 hierarchy, for crun. */
function crunNamespace(): ChildProcess {
  const helper = spawn(
    'unshare',
    ['-m', '--propagation', 'private', '--', 'sh', '-c', 'umount /sys/fs/cgroup/unified && echo ready && exec sleep 3600'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return helper;
}

/** Starts crun's helper mount namespace; `mntns` is nsenter's flag for it; kill() ends it. */
export async function startCrunNamespace(): Promise<{ mntns: string; kill: () => void }> {
  const helper = crunNamespace();
  await new Promise<void>((resolve, reject) => {
    helper.stdout!.once('data', () => resolve());
    helper.once('exit', (c) => reject(new Error(`crun helper namespace exited ${c}`)));
  });
  return { mntns: `--mount=/proc/${helper.pid}/ns/mnt`, kill: () => helper.kill('SIGKILL') };
}

export async function run(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'podlog-bench-stage1-'));
  const bundle = ociBundle(work);
  busyboxTreeStore();

  const helper = await startCrunNamespace();
  const mntns = helper.mntns;
  const pid = process.pid;

  // The same on tmpfs: what is left when the disk's metadata writes (overlay upper/work, the
  // pod dir's files) cost nothing; on a busy ext4 each can wait for the journal.
  const shmStore = makeTreeStore('/dev/shm');
  const stage1Pod = (net: 'none' | 'host', base?: string) => async (): Promise<Prepared> => {
    const dir = makePod([{ name: 'bench', exec: ['/bin/true'] }], base);
    const fd = await lockPod(dir);
    const store = base ? shmStore : busyboxTreeStore();
    const argv = [stage1Bin, 'init', '--pod-dir', dir, '--tree-store', store, '--net', net];
    return {
      argv,
      fd,
      cleanup: () => {
        closeFd(fd);
        spawnSync(stage1Bin, ['gc', '--pod-dir', dir]);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
  const cmds: Cmd[] = [
    { name: 'node spawn /bin/true', prepare: () => ({ argv: ['/bin/true'] }) },
    {
      name: 'unshare -mpfui --mount-proc chroot',
      prepare: () => ({ argv: ['unshare', '-m', '-p', '-f', '-u', '-i', '--mount-proc', 'chroot', join(bundle, 'rootfs'), '/bin/true'] }),
    },
    { name: 'podlog-stage1 init', prepare: stage1Pod('none') },
    { name: 'podlog-stage1 init --net host', prepare: stage1Pod('host') },
    { name: 'podlog-stage1 init, dirs on tmpfs', prepare: stage1Pod('none', '/dev/shm') },
    {
      name: 'crun run (via nsenter)',
      prepare: (i) => ({ argv: ['nsenter', mntns, '--', 'crun', 'run', '--bundle', bundle, `podlog-bench-${pid}-c${i}`] }),
    },
    { name: 'nsenter hop alone', prepare: () => ({ argv: ['nsenter', mntns, '--', '/bin/true'] }) },
    { name: 'runc run', prepare: (i) => ({ argv: ['runc', 'run', '--bundle', bundle, `podlog-bench-${pid}-r${i}`] }) },
  ];

  let results: Map<string, number[]>;
  try {
    results = await measureAll(cmds);
  } finally {
    helper.kill();
    cleanupStage1Dirs();
    rmSync(work, { recursive: true, force: true });
  }

  const crunRaw = median(results.get('crun run (via nsenter)')!);
  const hop = median(results.get('nsenter hop alone')!) - median(results.get('node spawn /bin/true')!);
  const crun = crunRaw - hop;
  const s1 = median(results.get('podlog-stage1 init')!);
  console.log(`start-to-exit of /bin/true, spawned from Node; ${RUNS} interleaved runs after ${WARMUP} warm-ups (ms)`);
  console.log(`${'command'.padEnd(36)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}`);
  for (const [name, xs] of results) {
    console.log(`${name.padEnd(36)} ${median(xs).toFixed(2).padStart(8)} ${xs[0]!.toFixed(2).padStart(8)} ${xs.at(-1)!.toFixed(2).padStart(8)}`);
  }
  console.log(`crun without the nsenter hop (${hop.toFixed(2)} ms): ${crun.toFixed(2)} ms`);
  console.log(`podlog-stage1 / crun: ${(s1 / crun).toFixed(2)}x   podlog-stage1 / runc: ${(s1 / median(results.get('runc run')!)).toFixed(2)}x`);
  console.log(`target podlog-stage1 median <= crun median: ${s1 <= crun ? 'met' : 'NOT met'}`);
}
