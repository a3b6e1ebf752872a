/**
 * --private-users: which host ids a pod's users are, and how its files come to be theirs.
 *
 * Each pod gets its own block of 65,536 ids (rkt's shifted range), so root in the pod is an
 * unprivileged user on the host and no two pods share an id. Blocks come from systemd's range for
 * container ids (0x80000–0x6FFFFFFF, where systemd-nspawn --private-users=pick takes them too, so
 * host tools know the owner as a container's), avoiding the blocks of every pod that still
 * exists (the pod list) and the subordinate ranges of /etc/subuid and /etc/subgid. The choice is
 * made and recorded (PrepareRequested) under one host-wide lock, so two prepares never take the
 * same block; it is random among the free ones, so that hosts sharing a log seldom collide either.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ownsPod } from '../engine/hosts.js';
import { catchUpPodList } from '../engine/pod-list.js';
import { PodlogError } from '../errors.js';
import { POD_ID_COUNT, type PrivateUsers } from '../events/catalogue.js';
import { withDirLock } from '../images/locks.js';
import { stage1Path } from '../native.js';
import type { Stage0 } from './session.js';
import { debug } from './debug.js';
import { writeWhole } from './pod-dir.js';

const FIRST_BLOCK = 0x80000 / POD_ID_COUNT;
const END_BLOCK = 0x70000000 / POD_ID_COUNT;

export interface IdRange {
  start: number;
  count: number;
}

/** The ranges of subuid/subgid lines (`name:start:count`); anything else is skipped. */
export const subordinateRanges = (text: string): IdRange[] =>
  text.split('\n').flatMap((line) => {
    const [, start, count] = line.trim().split(':');
    const [s, c] = [Number(start), Number(count)];
    return Number.isSafeInteger(s) && Number.isSafeInteger(c) && s >= 0 && c > 0 ? [{ start: s, count: c }] : [];
  });

/** The start of a free block of POD_ID_COUNT ids, none of them in `used`. */
export const pickShift = (used: IdRange[], random: () => number = Math.random): number => {
  const taken = new Set<number>();
  for (const r of used) {
    const last = Math.min(END_BLOCK - 1, Math.floor((r.start + r.count - 1) / POD_ID_COUNT));
    for (let b = Math.max(FIRST_BLOCK, Math.floor(r.start / POD_ID_COUNT)); b <= last; b++) taken.add(b);
  }
  const blocks = END_BLOCK - FIRST_BLOCK;
  if (taken.size >= blocks) {
    throw new PodlogError('ENOSPC', `--private-users: all ${blocks} blocks of ${POD_ID_COUNT} user ids are taken by other pods and /etc/subuid, /etc/subgid`);
  }
  // A random start, then the next free block: uniform enough, and one pass at most.
  const first = Math.floor(random() * blocks);
  for (let i = 0; ; i++) {
    const block = FIRST_BLOCK + ((first + i) % blocks);
    if (!taken.has(block)) return block * POD_ID_COUNT;
  }
};

const hostSubordinates = (): IdRange[] =>
  ['/etc/subuid', '/etc/subgid'].flatMap((file) => {
    try {
      return subordinateRanges(readFileSync(file, 'utf8'));
    } catch {
      return []; // none on this host
    }
  });

/**
 * Whether the data dir's file system takes idmapped mounts: stage1 tries one (a detached clone in
 * a mount namespace of its own, thrown away) and prints `idmap` or `chown: <why>`. The answer is
 * kept in the data dir for this kernel and this file system, as a spawn costs more than the rest of
 * the choice.
 */
const ownershipFor = async (dataDir: string): Promise<PrivateUsers['ownership']> => {
  const cache = join(dataDir, 'idmap-probe.json');
  const key = { kernel: release(), dev: statSync(dataDir).dev };
  try {
    const saved = JSON.parse(readFileSync(cache, 'utf8')) as typeof key & { ownership: PrivateUsers['ownership'] };
    if (saved.kernel === key.kernel && saved.dev === key.dev && (saved.ownership === 'idmap' || saved.ownership === 'chown')) return saved.ownership;
  } catch {
    // not asked yet, or unreadable: ask again
  }
  let out: string;
  try {
    ({ stdout: out } = await promisify(execFile)(stage1Path(), ['idmap-probe', '--dir', dataDir], { encoding: 'utf8' }));
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new PodlogError('ESTAGE1', `--private-users: stage1 could not test idmapped mounts: ${(err.stderr ?? '').trim() || err.message}`);
  }
  const answer = out.trim();
  debug(`--private-users: ${answer}`);
  const ownership = answer === 'idmap' ? 'idmap' : 'chown';
  writeWhole(cache, JSON.stringify({ ...key, ownership, answer }));
  return ownership;
};

/**
 * Runs `record` (which appends the pod's PrepareRequested) with the pod's range, chosen while no
 * other prepare on this host can choose one. Ranges are this host's ids: another host's pods do not
 * take them.
 */
export const withPrivateUsers = async <T>(s: Pick<Stage0, 'dataDir' | 'store' | 'hostId'>, record: (users: PrivateUsers) => Promise<T>): Promise<T> => {
  const ownership = await ownershipFor(s.dataDir);
  return withDirLock(join(s.dataDir, 'locks', 'private-users'), false, async () => {
    const rows = [...(await catchUpPodList(s.store)).values()].filter((r) => ownsPod(s.hostId, r.context));
    const used = rows.flatMap((r) => (r.context.privateUsers ? [{ start: r.context.privateUsers.shift, count: r.context.privateUsers.count }] : []));
    const shift = pickShift([...used, ...hostSubordinates()]);
    return record({ shift, count: POD_ID_COUNT, ownership });
  });
};
