/**
 * An app's resource isolators (appc `resource/memory`, `resource/cpu`, `os/linux/cpu-shares`,
 * `os/linux/oom-score-adj`), from its image or from rkt's per-app --memory, --cpu, --cpu-shares and
 * --oom-score-adj. Quantities are Kubernetes' (appc's): `128M` is 128×10⁶ bytes, `128Mi` 128×2²⁰,
 * `500m` half a core. stage1 applies them (crates/stage1/src/cgroups.rs) and reads only the canonical
 * forms written here: memory in bytes, CPU in millicores.
 */
import { PodlogError } from '../errors.js';

export const MEMORY = 'resource/memory';
export const CPU = 'resource/cpu';
export const CPU_SHARES = 'os/linux/cpu-shares';
export const OOM_SCORE_ADJ = 'os/linux/oom-score-adj';

const SUFFIXES: ReadonlyMap<string, number> = new Map([
  ['', 1], ['m', 1e-3], ['k', 1e3], ['M', 1e6], ['G', 1e9], ['T', 1e12], ['P', 1e15], ['E', 1e18],
  ['Ki', 2 ** 10], ['Mi', 2 ** 20], ['Gi', 2 ** 30], ['Ti', 2 ** 40], ['Pi', 2 ** 50], ['Ei', 2 ** 60],
]);
const QUANTITY = /^(\d+(?:\.\d*)?|\.\d+)(?:[eE](\d+)|([a-zA-Z]*))$/;

/** A Kubernetes quantity as a number of units (`1.5Gi` → 1610612736); undefined if it is not one. */
export const parseQuantity = (text: string): number | undefined => {
  const m = QUANTITY.exec(text);
  if (!m) return undefined;
  const scale = m[2] !== undefined ? 10 ** Number(m[2]) : SUFFIXES.get(m[3]!);
  return scale === undefined ? undefined : Number(m[1]) * scale;
};

/** Docker's and podman's floor: below it a process hardly starts, and the limit is a mistake. */
const MIN_MEMORY = 6 * 2 ** 20;
/** The kernel's smallest CFS quota is 1 ms of a 100 ms period. */
const MIN_MILLICORES = 10;

type Fail = (what: string) => PodlogError;

/** A memory limit in bytes, as stage1 reads it. */
export const memoryBytes = (text: string, fail: Fail): string => {
  const bytes = parseQuantity(text);
  if (bytes === undefined) throw fail(`${JSON.stringify(text)} is not a quantity (e.g. 512M, 1Gi, 268435456)`);
  const whole = Math.ceil(bytes);
  if (whole < MIN_MEMORY) throw fail(`${JSON.stringify(text)} is below the minimum memory limit of 6 MiB`);
  if (!Number.isSafeInteger(whole)) throw fail(`${JSON.stringify(text)} is too large`);
  return String(whole);
};

/** A CPU limit in millicores, as stage1 reads it (`250m`). */
export const cpuMillicores = (text: string, fail: Fail): string => {
  const cores = parseQuantity(text);
  if (cores === undefined) throw fail(`${JSON.stringify(text)} is not a quantity of cores (e.g. 500m, 2)`);
  const milli = Math.ceil(cores * 1000 - 1e-9);
  if (milli < MIN_MILLICORES) throw fail(`${JSON.stringify(text)} is below the minimum CPU limit of ${MIN_MILLICORES}m (a CFS quota of 1 ms per 100 ms)`);
  if (!Number.isSafeInteger(milli)) throw fail(`${JSON.stringify(text)} is too large`);
  return `${milli}m`;
};

/** An integer within bounds, as appc's LinuxCPUShares and LinuxOOMScoreAdj check it. */
export const boundedInt = (value: unknown, min: number, max: number, fail: Fail): number => {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw fail(`${JSON.stringify(value)} is not an integer from ${min} to ${max}`);
  return value;
};

/** `{limit, request}` of a resource isolator, with its limit canonical; a request is kept as given (stage1 ignores it). */
const resourceValue = (value: unknown, canonical: (text: string, fail: Fail) => string, fail: Fail): Record<string, string> => {
  const v = value as { limit?: unknown; request?: unknown } | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail('its value must be an object {"limit": QUANTITY}');
  for (const key of Object.keys(v)) if (!['limit', 'request', 'default'].includes(key)) throw fail(`unknown field ${JSON.stringify(key)} (limit, request, default)`);
  if ((v as { default?: unknown }).default !== undefined && typeof (v as { default?: unknown }).default !== 'boolean') throw fail('"default" must be true or false');
  if (v.request !== undefined && (typeof v.request !== 'string' || parseQuantity(v.request) === undefined)) throw fail(`request ${JSON.stringify(v.request)} is not a quantity`);
  if (v.limit !== undefined && typeof v.limit !== 'string') throw fail(`limit ${JSON.stringify(v.limit)} is not a quantity string`);
  return { ...v, ...(v.limit !== undefined ? { limit: canonical(v.limit, fail) } : {}) } as Record<string, string>;
};

/** A resource isolator without a limit asks for nothing stage1 applies (a request is a scheduler's hint). */
export const limitless = (i: { name: string; value: unknown }): boolean =>
  (i.name === MEMORY || i.name === CPU) && (i.value as { limit?: unknown } | null)?.limit === undefined;

/** Each resource isolator's check, which returns its value in the form stage1 reads. */
export const RESOURCE_ISOLATORS: ReadonlyMap<string, (value: unknown, fail: Fail) => unknown> = new Map<string, (value: unknown, fail: Fail) => unknown>([
  [MEMORY, (v, fail) => resourceValue(v, memoryBytes, fail)],
  [CPU, (v, fail) => resourceValue(v, cpuMillicores, fail)],
  [CPU_SHARES, (v, fail) => boundedInt(v, 2, 262144, fail)],
  [OOM_SCORE_ADJ, (v, fail) => boundedInt(v, -1000, 1000, fail)],
]);
