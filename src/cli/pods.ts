/** What the pod verbs share: a stage0 session for the command, and UUIDs as rkt takes them. */
import { readFileSync } from 'node:fs';
import type { PodContext } from '../../machines/pod.js';
import { catchUpPodList, type PodListRow } from '../engine/pod-list.js';
import { otherHostsPod, ownsPod } from '../engine/hosts.js';
import { matchPodUuid } from '../engine/resolve.js';
import { PodlogError } from '../errors.js';
import { commandContext } from '../events/metadata.js';
import { initDebug } from '../stage0/debug.js';
import { podDir, podPaths } from '../stage0/pod-dir.js';
import { openStage0, type Stage0 } from '../stage0/session.js';
import type { Invocation } from './command.js';

/**
 * Runs `fn` with a stage0 session. Only a verb that makes pods or images (`create`) creates the data
 * dir and its log; the others read a missing log as an empty one (and write to an existing one).
 */
export const withStage0 = async <T>(inv: Invocation, fn: (s: Stage0) => Promise<T>, { create = true } = {}): Promise<T> => {
  if (inv.debug) initDebug();
  const s = await openStage0(inv.dir, commandContext(undefined, inv.hostId), { debug: inv.debug, access: create ? 'write' : 'read', url: inv.store });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
};

/**
 * A pod that still exists (deleted ones are history, for `events` and `replay`), by UUID prefix. Verbs
 * act on this host's pods; `allHosts` (a verb that only reads, with --all-hosts) takes any host's.
 */
export const resolveLivePod = async (s: Stage0, input: string, { allHosts = false } = {}): Promise<string> =>
  podOf(s, await catchUpPodList(s.store), input, allHosts);

const podOf = (s: Stage0, rows: Map<string, PodListRow>, input: string, allHosts: boolean): string => {
  const uuid = matchPodUuid(rows.keys(), input);
  const { context } = rows.get(uuid)!;
  if (!allHosts && !ownsPod(s.hostId, context)) throw otherHostsPod(uuid, context.host);
  return uuid;
};

/** The UUIDs a verb acts on: its arguments, or the one in --uuid-file. */
export const uuidArgs = (positionals: string[], uuidFile: string | undefined): string[] => {
  let uuids = positionals;
  if (uuidFile !== undefined) {
    if (positionals.length > 0) throw new PodlogError('EUSAGE', 'give either UUIDs or --uuid-file, not both');
    try {
      uuids = [readFileSync(uuidFile, 'utf8').trim()];
    } catch (e) {
      throw new PodlogError('EUSAGE', `--uuid-file: ${(e as Error).message}`);
    }
  }
  // Refused before the data dir is opened, as rkt does, so a typo creates nothing.
  if (uuids.length === 0 || uuids.some((u) => u.trim() === '')) throw new PodlogError('EUSAGE', 'UUID cannot be empty');
  return uuids;
};

/** Acts on each pod named (rkt's stop and rm): a pod's failure is reported and the others go on. */
export const forEachPod = async (s: Stage0, inputs: string[], verb: string, act: (uuid: string) => Promise<void>): Promise<number> => {
  let failed = 0;
  const rows = await catchUpPodList(s.store);
  for (const input of inputs) {
    try {
      await act(podOf(s, rows, input, false));
    } catch (e) {
      process.stderr.write(`podlog: ${verb} ${input}: ${(e as Error).message}\n`);
      failed++;
    }
  }
  return failed ? 254 : 0;
};

/** What a user said about a pod when it was made (--user-annotation, --user-label). */
export interface PodUserMetadata {
  userAnnotations: Record<string, string>;
  userLabels: Record<string, string>;
}

const stringMap = (v: unknown): Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string')) : {};

export const NO_USER_METADATA: PodUserMetadata = { userAnnotations: {}, userLabels: {} };

/**
 * A pod's annotations and labels, from its pod manifest (the log does not hold them); undefined
 * while the manifest is not written (the pod is being prepared) and once it is gone (deleted).
 */
export const podUserMetadata = (dataDir: string, uuid: string): PodUserMetadata | undefined => {
  let manifest: { userAnnotations?: unknown; userLabels?: unknown };
  try {
    manifest = JSON.parse(readFileSync(podPaths(podDir(dataDir, uuid)).manifest, 'utf8')) as typeof manifest;
  } catch {
    return undefined;
  }
  return { userAnnotations: stringMap(manifest?.userAnnotations), userLabels: stringMap(manifest?.userLabels) };
};

/** The labels and annotations the log holds for a pod (PrepareRequested schema 4), or undefined for an older pod. */
export const recordedUserMetadata = (c: Pick<PodContext, 'userLabels' | 'userAnnotations'>): PodUserMetadata | undefined =>
  c.userLabels === undefined && c.userAnnotations === undefined ? undefined : { userLabels: c.userLabels ?? {}, userAnnotations: c.userAnnotations ?? {} };

/** One --filter: podman's label=KEY[=VALUE], and the same for annotations. */
export interface PodFilter {
  kind: 'label' | 'annotation';
  key: string;
  value?: string;
}

export const parsePodFilters = (values: string[]): PodFilter[] =>
  values.map((f) => {
    const eq = f.indexOf('=');
    const kind = f.slice(0, eq);
    const [key, ...value] = f.slice(eq + 1).split('=');
    if (eq === -1 || (kind !== 'label' && kind !== 'annotation') || key === '') {
      throw new PodlogError('EUSAGE', `--filter: ${JSON.stringify(f)} is not label=KEY[=VALUE] or annotation=KEY[=VALUE]`);
    }
    return { kind, key: key!, ...(value.length > 0 ? { value: value.join('=') } : {}) };
  });

/** Whether a pod passes every filter: the key is there, with the value when one is given. */
export const matchesFilters = (meta: PodUserMetadata, filters: PodFilter[]): boolean =>
  filters.every(({ kind, key, value }) => {
    const map = kind === 'label' ? meta.userLabels : meta.userAnnotations;
    return Object.hasOwn(map, key) && (value === undefined || map[key] === value);
  });
