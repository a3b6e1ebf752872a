/**
 * stage0 end to end, against peers measured in the same run (this 2-core VM is shared and noisy:
 * compare the figures of one run with each other, not across runs):
 *
 *   - `podlog run IMAGE --exec /bin/true` from the CLI (the image already imported: run by name, no
 *     re-render), against `node -e ''` (bare Node start-up) and `crun run` of the same rootfs (bench/stage1.ts's
 *     bundle and helper namespace, minus the nsenter hop); target: at most 25 ms above `node -e ''`;
 *   - the same through the library API in this long-running process (openStage0 once, then `run`):
 *     target: at most 0.7 × crun's median;
 *   - `prepare` + `run-prepared` against `run`: target at most 20 ms more in process, and from the CLI,
 *     where the second command also pays a Node start-up, at most 15 ms more than that start-up;
 *   - `list` from the CLI with 1,000 and 10,000 pods in the log (histories appended to the store directly,
 *     no pod directories except for the running pods, whose locks `list` probes), on a host whose gc
 *     collected most of them and on one where all are still listed: target ≤ 30 ms above `node -e ''`;
 *   - `gc --grace-period=0` of 1,000 and 10,000 exited pods (synthetic: histories appended directly,
 *     empty directories with a `pod` file): target ≤ 0.5 s for 1,000, and linear (rkt: 7-11 s for 55);
 *   - `list` and `gc` of pods made by real runs (BENCH_REAL_PODS, default 1,000): the same targets.
 *
 *   BENCH=stage0 node --import=tsx bench/run.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { configFrom, parseRunFlags } from '../src/cli/run-flags.js';
import { eventLogPath } from '../src/config.js';
import { podStream } from '../src/engine/streams.js';
import { POD_EVENTS } from '../src/events/catalogue.js';
import { commandContext, newMetadata, type CommandContext } from '../src/events/metadata.js';
import { closeFd, lockDir } from '../src/native.js';
import { openStage0, prepare, run as runPod, runPrepared } from '../src/stage0/index.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { aciPath, repoRoot } from '../test/helpers/fixtures.js';
import { history } from './histories.js';
import { median, report } from './report.js';
import { ociBundle, spawnAndWait, startCrunNamespace } from './stage1.js';

const RUNS = Number(process.env.BENCH_STAGE0_RUNS ?? 20);
const WARMUP = 3;
const podlogBin = join(repoRoot, 'bin', 'podlog');
const IMAGE = 'podlog.test/busybox';

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/** Runs a command to its end; returns its stdout; throws unless it exits with `expect`. */
const exec = (argv: string[], expect = 0): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === expect ? resolve(out) : reject(new Error(`${argv.join(' ')} exited ${code}`))));
  });

/** The CLI's bundle loaded (with its code cache) and nothing run: what every verb pays before its work. */
const loadOnly = (): string[] => [podlogBin, '--help'];

/**
 * A command's peak resident set in KiB: getrusage(RUSAGE_CHILDREN) of a python3 that runs it (Node
 * has no way to ask for a child's), stdin a pipe and stdout discarded.
 */
const maxRss = (argv: string[]): number => {
  const script = 'import resource, subprocess, sys\nsubprocess.run(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, check=True)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)';
  const r = spawnSync('python3', ['-c', script, ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return Number(r.stdout.trim());
};

const timed = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = process.hrtime.bigint();
  await fn();
  return ms(t0);
};

const table = (results: Map<string, number[]>): void => {
  console.log(`${'command'.padEnd(44)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}`);
  for (const [name, xs] of results) {
    const s = [...xs].sort((a, b) => a - b);
    console.log(`${name.padEnd(44)} ${median(s).toFixed(2).padStart(8)} ${s[0]!.toFixed(2).padStart(8)} ${s.at(-1)!.toFixed(2).padStart(8)}`);
  }
};

/** Round-robin over the commands, so that load changes during the run hit all of them alike. */
const measureAll = async (cmds: Array<[string, () => Promise<unknown>]>): Promise<Map<string, number[]>> => {
  const out = new Map<string, number[]>(cmds.map(([name]) => [name, []]));
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const [name, fn] of cmds) {
      const t = await timed(fn);
      if (i >= WARMUP) out.get(name)!.push(t);
    }
  }
  return out;
};

const runs = async (): Promise<void> => {
  const work = mkdtempSync(join(tmpdir(), 'podlog-bench-stage0-'));
  const dir = join(work, 'data');
  const cli = (...args: string[]) => [podlogBin, '--dir', dir, ...args];
  const ns = await startCrunNamespace();
  const s = await openStage0(dir, commandContext(['bench', 'run']));
  try {
    // The image is imported (and its tree rendered) once, as an operator's first run does.
    await exec(cli('run', aciPath('busybox-gzip'), '--exec', '/bin/true'));
    const bundle = ociBundle(work);
    const cfg = configFrom(parseRunFlags([IMAGE, '--exec', '/bin/true']));
    const pid = process.pid;
    let n = 0;
    const results = await measureAll([
      ["node -e ''", () => exec([process.execPath, '-e', ''])],
      ['podlog --help (the bundle loaded)', () => exec(loadOnly())],
      ['podlog run (CLI)', () => exec(cli('run', IMAGE, '--exec', '/bin/true'))],
      ['podlog prepare + run-prepared (CLI)', async () => {
        const uuid = (await exec(cli('prepare', IMAGE, '--exec', '/bin/true'))).trim();
        await exec(cli('run-prepared', uuid));
      }],
      ['podlog run (library, in process)', async () => {
        const code = await runPod(s, cfg);
        if (code !== 0) throw new Error(`run: ${code}`);
      }],
      ['podlog prepare + runPrepared (library)', async () => {
        const code = await runPrepared(s, cfg, await prepare(s, cfg));
        if (code !== 0) throw new Error(`runPrepared: ${code}`);
      }],
      ['crun run (via nsenter)', () => spawnAndWait(['nsenter', ns.mntns, '--', 'crun', 'run', '--bundle', bundle, `podlog-bench0-${pid}-${n++}`])],
      ['nsenter hop alone', () => spawnAndWait(['nsenter', ns.mntns, '--', '/bin/true'])],
      ['node spawn /bin/true', () => spawnAndWait(['/bin/true'])],
    ]);
    console.log(`start-to-exit of /bin/true; ${RUNS} interleaved runs after ${WARMUP} warm-ups (ms); load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    table(results);
    const m = (name: string) => median(results.get(name)!);
    const node = m("node -e ''");
    const hop = m('nsenter hop alone') - m('node spawn /bin/true');
    const crun = m('crun run (via nsenter)') - hop;
    const cliRun = m('podlog run (CLI)');
    const lib = m('podlog run (library, in process)');
    const modules = m('podlog --help (the bundle loaded)') - node;
    report('podlog run --exec /bin/true, CLI, above node -e \'\' (ms)', cliRun - node, {
      target: '≤ 25', ok: cliRun - node <= 25,
      reference: `podlog run ${cliRun.toFixed(1)}, node -e '' ${node.toFixed(1)}, of which loading the bundle ${modules.toFixed(1)}; crun ${crun.toFixed(1)}; rkt fly 57-65 ms`,
    });
    report('podlog run --exec /bin/true, library in process (ms)', lib, {
      target: `≤ 0.7 × crun ${crun.toFixed(1)}`, ok: lib <= 0.7 * crun, reference: `×${(lib / crun).toFixed(2)} crun; crun minus the nsenter hop of ${hop.toFixed(1)} ms`,
    });
    const libPair = m('podlog prepare + runPrepared (library)');
    report('prepare + runPrepared above run, library (ms)', libPair - lib, {
      target: '≤ 20', ok: libPair - lib <= 20, reference: `${libPair.toFixed(1)} vs ${lib.toFixed(1)}`,
    });
    const cliPair = m('podlog prepare + run-prepared (CLI)');
    report('prepare + run-prepared above run and a second Node start-up, CLI (ms)', cliPair - cliRun - node, {
      target: '≤ 15', ok: cliPair - cliRun - node <= 15,
      reference: `${cliPair.toFixed(1)} vs ${cliRun.toFixed(1)}; the second command's Node start-up alone is ${node.toFixed(1)}, so ${(cliPair - cliRun - node).toFixed(1)} ms beyond it; rkt: +14 ms`,
    });
    const rss = (argv: string[]) => median(Array.from({ length: 5 }, () => maxRss(argv)));
    const nodeRss = rss([process.execPath, '-e', '']);
    const runRss = rss(cli('run', IMAGE, '--exec', '/bin/true'));
    report("peak RSS of a podlog run from the CLI, above node -e '' (MB)", (runRss - nodeRss) / 1024, {
      target: '≤ 15', ok: runRss - nodeRss <= 15 * 1024, reference: `${(runRss / 1024).toFixed(1)} MB vs ${(nodeRss / 1024).toFixed(1)} MB, medians of 5`,
    });
  } finally {
    await s.close();
    ns.kill();
    await exec(cli('gc', '--grace-period=0')).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
};

/** Appends pods' histories to a new data dir's log (synchronous=NORMAL: only the generation is faster). */
export const generate = async (dir: string, states: Array<Parameters<typeof history>[1]>): Promise<string[]> => {
  mkdirSync(dir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const store = await openSqliteStore(eventLogPath(dir), { synchronous: 'NORMAL' });
  const uuids: string[] = [];
  try {
    for (const [i, state] of states.entries()) {
      const uuid = uuidv4();
      const ctx: CommandContext = commandContext(['--dir', dir, 'run', IMAGE, '--exec', '/bin/sh', '--', '-c', `exit ${i % 4}`]);
      const events = history(uuid, state, i % 4).map(({ type, data }) => ({ type, schema: POD_EVENTS[type].schema, data: data as Record<string, unknown>, meta: newMetadata(ctx) }));
      await store.append(podStream(uuid), events, 'no_stream');
      uuids.push(uuid);
    }
  } finally {
    await store.close();
  }
  return uuids;
};

type Shape = 'collected' | 'live';
/** A host that gc's (most pods deleted, a few exited or running), or one where every pod is still listed. */
const shape = (kind: Shape, i: number): Parameters<typeof history>[1] => {
  const r = i % 100;
  if (kind === 'collected') return r < 95 ? 'deleted' : r < 99 ? 'exited' : 'running';
  return r < 90 ? 'exited' : r < 95 ? 'prepared' : r < 99 ? 'aborted' : 'running';
};

const lists = async (): Promise<void> => {
  for (const count of [1_000, 10_000]) {
    for (const kind of ['collected', 'live'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-list-'));
      const locks: number[] = [];
      try {
        const states = Array.from({ length: count }, (_, i) => shape(kind, i));
        const uuids = await generate(dir, states);
        // A running pod's lock is held (here by this process, as stage1 would): list probes it and leaves the pod be.
        for (const [i, uuid] of uuids.entries()) {
          if (states[i] !== 'running') continue;
          const pod = join(dir, 'pods', uuid);
          mkdirSync(pod, { recursive: true });
          locks.push(await lockDir(pod));
        }
        const first = await timed(() => exec([podlogBin, '--dir', dir, 'list']));
        const times: number[] = [];
        const json: number[] = [];
        const node: number[] = [];
        const modules: number[] = [];
        for (let i = 0; i < 10; i++) {
          times.push(await timed(() => exec([podlogBin, '--dir', dir, 'list'])));
          json.push(await timed(() => exec([podlogBin, '--dir', dir, 'list', '--format', 'json'])));
          node.push(await timed(() => exec([process.execPath, '-e', ''])));
          modules.push(await timed(() => exec(loadOnly())));
        }
        const t = median(times);
        const shown = states.filter((x) => x !== 'deleted').length;
        const above = t - median(node);
        report(`list, ${count.toLocaleString('en-US')} pods in the log, ${shown.toLocaleString('en-US')} of them listed, CLI, above node -e '' (ms)`, above, {
          target: '≤ 30', ok: above <= 30,
          reference: `list ${t.toFixed(1)}; --format json ${median(json).toFixed(1)}; node -e '' ${median(node).toFixed(1)}, loading the bundle ${(median(modules) - median(node)).toFixed(1)} more; the first list, which catches the projection up, ${first.toFixed(0)}`,
        });
      } finally {
        for (const fd of locks) closeFd(fd);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
};

/**
 * `podlog gc --grace-period=0` of the pods in `dir`, and the disk's floor beside it: `rm -rf` of a copy of
 * the same pod directories (cp -a, then timed), in ms. The disk here is ext4 mounted with `discard`,
 * where every removal is slow: the floor, not the number of commits, bounds gc.
 */
const gcAgainstRm = async (dir: string): Promise<{ gc: number; rm: number }> => {
  await exec(['cp', '-a', join(dir, 'pods'), join(dir, 'pods-copy')]);
  const rm = await timed(() => exec(['rm', '-rf', join(dir, 'pods-copy')]));
  await exec([podlogBin, '--dir', dir, 'list']); // the projection caught up, as on a host where list runs
  const gc = await timed(() => exec([podlogBin, '--dir', dir, 'gc', '--grace-period=0']));
  const left = (await exec([podlogBin, '--dir', dir, 'list', '--format', 'json'])).trim();
  if (left !== '[]') throw new Error(`gc left pods: ${left.slice(0, 200)}`);
  return { gc, rm };
};

/** gc of `count` exited pods made by `generate` (synthetic histories, directories with only a `pod` file). */
const syntheticGc = async (count: number): Promise<{ gc: number; rm: number }> => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-bench-gc-'));
  try {
    const uuids = await generate(dir, Array.from({ length: count }, () => 'exited'));
    for (const uuid of uuids) {
      mkdirSync(join(dir, 'pods', uuid), { recursive: true });
      writeFileSync(join(dir, 'pods', uuid, 'pod'), '{}');
    }
    return await gcAgainstRm(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const gcs = async (): Promise<void> => {
  const thousand: Array<{ gc: number; rm: number }> = [];
  for (let round = 0; round < 3; round++) thousand.push(await syntheticGc(1000));
  const tenThousand = await syntheticGc(10_000);
  const t = median(thousand.map((x) => x.gc));
  const rm = median(thousand.map((x) => x.rm));
  report('gc --grace-period=0 of 1,000 exited pods, synthetic histories and directories, CLI (ms)', t, {
    target: '≤ 500', ok: t <= 500,
    reference: `runs ${thousand.map((x) => x.gc.toFixed(0)).join(', ')}; rm -rf of a copy of the same directories ${rm.toFixed(0)} (${(t / rm).toFixed(2)} ×); rkt: 7,000-11,000 for 55 pods`,
  });
  report('gc of 10,000 over 10 × gc of 1,000, synthetic (ratio)', tenThousand.gc / (10 * t), {
    target: '≤ 1.2 (linear)', ok: tenThousand.gc <= 12 * t, reference: `10,000 pods ${tenThousand.gc.toFixed(0)} ms; rm -rf of their copy ${tenThousand.rm.toFixed(0)}`,
  });
};

/**
 * Pods made by real runs (BENCH_REAL_PODS, default 1,000, through the library: each a real pod whose
 * /bin/true exited), then `list` and `gc` from the CLI on that log and those directories.
 */
const realPods = async (): Promise<void> => {
  const count = Number(process.env.BENCH_REAL_PODS ?? 1000);
  const work = mkdtempSync(join(tmpdir(), 'podlog-bench-real-'));
  const dir = join(work, 'data');
  try {
    await exec([podlogBin, '--dir', dir, 'fetch', aciPath('busybox-gzip')]);
    const s = await openStage0(dir, commandContext(['bench', 'real-pods']));
    const made = await timed(async () => {
      const cfg = configFrom(parseRunFlags(['--net=none', IMAGE, '--exec', '/bin/true']));
      for (let i = 0; i < count; i++) if ((await runPod(s, cfg)) !== 0) throw new Error('a real run failed');
    });
    await s.close();
    const lists: number[] = [];
    const node: number[] = [];
    for (let i = 0; i < 10; i++) {
      lists.push(await timed(() => exec([podlogBin, '--dir', dir, 'list'])));
      node.push(await timed(() => exec([process.execPath, '-e', ''])));
    }
    const above = median(lists) - median(node);
    report(`list, ${count.toLocaleString('en-US')} pods of real runs, CLI, above node -e '' (ms)`, above, {
      target: '≤ 30', ok: above <= 30, reference: `list ${median(lists).toFixed(1)}, node -e '' ${median(node).toFixed(1)}; the runs took ${(made / count).toFixed(1)} ms a pod`,
    });
    const { gc: t, rm } = await gcAgainstRm(dir);
    report(`gc --grace-period=0 of ${count.toLocaleString('en-US')} pods of real runs (their directories, overlays and logs), CLI (ms)`, t, {
      target: `≤ ${(count / 2).toFixed(0)}`, ok: t <= count / 2, reference: `${(t / count).toFixed(2)} ms a pod; rm -rf of a copy of the same directories ${rm.toFixed(0)} (${(t / rm).toFixed(2)} ×)`,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
};

export async function run(): Promise<void> {
  await runs();
  await lists();
  await gcs();
  await realPods();
}
