/**
 * Pod networks, in the same run (npm run bench runs in namespaces that play the host):
 * - `run --net=default` against `--net=none`, start to exit (pod-pairs); podlog's network overhead
 *   against the same ptp ADD called by hand on a namespace of its own (`unshare --net`), as a
 *   runtime that called the plugin itself would pay. Target: at most 1.2× the hand-called plugin.
 * - 100 pods started and collected on default: the time of each, first and last 10 (flat), and the
 *   leases and nat rules left (none).
 *
 *   BENCH=network node --import=tsx bench/run.ts   (inside scripts/isolated.sh)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFrom, parseRunFlags } from '../src/cli/run-flags.js';
import { commandContext } from '../src/events/metadata.js';
import { DEFAULT_NETWORK } from '../src/net/networks.js';
import { gc, openStage0, run as runPod } from '../src/stage0/index.js';
import { aciPath } from '../test/helpers/fixtures.js';
import { podPairs } from './pod-pairs.js';
import { median, report } from './report.js';

const RUNS = Number(process.env.BENCH_NETWORK_RUNS ?? 20);
const CYCLES = 100;

/** ptp's ADD (then DEL, untimed) on a fresh namespace, exec'd as the CNI spec says. */
const handAdd = async (work: string, i: number): Promise<number> => {
  const holder = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore' });
  await new Promise((ok) => setTimeout(ok, 20));
  const config = JSON.stringify({ ...DEFAULT_NETWORK.plugins[0], name: 'bench', cniVersion: DEFAULT_NETWORK.cniVersion, ipam: { ...(DEFAULT_NETWORK.plugins[0]!.ipam as object), dataDir: join(work, 'ipam') } });
  const env = (command: string) => ({
    PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: `bench-${i}`, CNI_NETNS: `/proc/${holder.pid}/ns/net`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni',
  });
  const t0 = process.hrtime.bigint();
  const add = spawnSync('/usr/lib/cni/ptp', [], { input: config, env: env('ADD'), encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (add.status !== 0) throw new Error(`ptp ADD: ${add.stdout}${add.stderr}`);
  spawnSync('/usr/lib/cni/ptp', [], { input: config, env: env('DEL'), encoding: 'utf8' });
  holder.kill('SIGKILL');
  return ms;
};

const natRules = (): number => spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith('-A CNI-') && !l.startsWith('-A CNI-HOSTPORT')).length;
const leases = (): number => Number(spawnSync('sh', ['-c', 'ls /run/podlog/cni/networks/*/ 2>/dev/null | grep -c "^[0-9]"'], { encoding: 'utf8' }).stdout.trim());

export const run = async (): Promise<void> => {
  const app = [aciPath('busybox-gzip'), '--exec', '/bin/true'];
  const { base, variant } = await podPairs('network', RUNS, () => ({ base: ['--net=none', ...app], variant: ['--net=default', ...app] }));
  const work = mkdtempSync(join(tmpdir(), 'podlog-bench-ptp-'));
  try {
    const hand: number[] = [];
    for (let i = 0; i < RUNS; i++) hand.push(await handAdd(work, i));
    const overhead = variant - base;
    report('run --net=default − --net=none / ptp ADD by hand', overhead / median(hand), {
      target: '≤ 1.2', ok: overhead <= 1.2 * median(hand),
      reference: `${variant.toFixed(1)} vs ${base.toFixed(1)} ms: +${overhead.toFixed(1)} ms; ptp ADD by hand ${median(hand).toFixed(1)} ms; medians`,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const data = mkdtempSync(join(tmpdir(), 'podlog-bench-cycles-'));
  const s = await openStage0(data, commandContext(['bench', 'network']));
  try {
    const before = { rules: natRules(), leases: leases() };
    const times: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const t0 = process.hrtime.bigint();
      const code = await runPod(s, configFrom(parseRunFlags(['--net=default', ...app])));
      await gc(s, { gracePeriodMs: 0, expirePreparedMs: 24 * 3600_000, markOnly: false });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (code !== 0) throw new Error(`pod ${i}: ${code}`);
    }
    const after = { rules: natRules(), leases: leases() };
    const [first, last] = [median(times.slice(0, 10)), median(times.slice(-10))];
    report(`${CYCLES} pods run and collected on default: last 10 / first 10, per pod`, last / first, {
      target: '≤ 1.2, nothing left', ok: last <= first * 1.2 && after.rules === before.rules && after.leases === before.leases,
      reference: `${first.toFixed(0)} → ${last.toFixed(0)} ms (run + gc); nat rules ${before.rules} → ${after.rules}, leases ${before.leases} → ${after.leases}`,
    });
  } finally {
    await s.close();
    rmSync(data, { recursive: true, force: true });
  }
};
