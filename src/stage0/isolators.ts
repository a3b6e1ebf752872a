/**
 * An app's isolators (appc's per-app limits and security settings): its image's, with the per-app
 * flags in place of the image's of the same kind (rkt's prepareIsolators: the command line wins),
 * each checked and written in the form stage1 reads. An isolator podlog does not apply stays in the
 * pod manifest and is named in a warning and in PodPrepared: the ACE must say which it ignored.
 */
import { PodlogError } from '../errors.js';
import type { ImageApp } from '../images/aci-manifest.js';
import { seccompEntriesStage1Needs } from '../native.js';
import { checkCapValue, REMOVE_SET, RETAIN_SET } from './capabilities.js';
import type { AppConfig } from './config.js';
import { CPU, CPU_SHARES, limitless, MEMORY, OOM_SCORE_ADJ, RESOURCE_ISOLATORS } from './resources.js';
import { checkSeccompValue, SECCOMP_REMOVE, SECCOMP_RETAIN } from './seccomp.js';

export type Isolator = NonNullable<ImageApp['isolators']>[number];
type Fail = (what: string) => PodlogError;

export const NO_NEW_PRIVILEGES = 'os/linux/no-new-privileges';

/** What podlog applies, each with the check that gives its value as stage1 reads it. */
const APPLIED: ReadonlyMap<string, (value: unknown, fail: Fail) => unknown> = new Map<string, (value: unknown, fail: Fail) => unknown>([
  ...RESOURCE_ISOLATORS,
  [RETAIN_SET, checkCapValue],
  [REMOVE_SET, checkCapValue],
  [SECCOMP_RETAIN, checkSeccompValue],
  [SECCOMP_REMOVE, checkSeccompValue],
  [NO_NEW_PRIVILEGES, (v, fail) => {
    if (typeof v !== 'boolean') throw fail(`${JSON.stringify(v)} is not true or false`);
    return v;
  }],
]);

/** Isolators that say one thing together (appc's Conflicts): an app has at most one of each group, and a flag replaces the group. */
const KINDS: ReadonlyArray<readonly string[]> = [[RETAIN_SET, REMOVE_SET], [SECCOMP_RETAIN, SECCOMP_REMOVE]];
const kindOf = (name: string): readonly string[] => KINDS.find((k) => k.includes(name)) ?? [name];

/** The isolators an app's flags ask for, unchecked (appIsolators checks them). */
const flagIsolators = (app: AppConfig): Isolator[] => [
  ...(app.capsRetain !== undefined ? [{ name: RETAIN_SET, value: { set: app.capsRetain } }] : []),
  ...(app.capsRemove !== undefined ? [{ name: REMOVE_SET, value: { set: app.capsRemove } }] : []),
  ...(app.memory !== undefined ? [{ name: MEMORY, value: { limit: app.memory } }] : []),
  ...(app.cpu !== undefined ? [{ name: CPU, value: { limit: app.cpu } }] : []),
  ...(app.cpuShares !== undefined ? [{ name: CPU_SHARES, value: app.cpuShares }] : []),
  ...(app.oomScoreAdj !== undefined ? [{ name: OOM_SCORE_ADJ, value: app.oomScoreAdj }] : []),
  ...(app.seccomp !== undefined ? [{ name: app.seccomp.mode === 'retain' ? SECCOMP_RETAIN : SECCOMP_REMOVE, value: { set: app.seccomp.set, ...(app.seccomp.errno !== undefined ? { errno: app.seccomp.errno } : {}) } }] : []),
];

/** rkt's flag for each isolator, for messages about a flag's value. */
const FLAG: ReadonlyMap<string, string> = new Map([
  [RETAIN_SET, '--caps-retain'], [REMOVE_SET, '--caps-remove'], [MEMORY, '--memory'], [CPU, '--cpu'],
  [CPU_SHARES, '--cpu-shares'], [OOM_SCORE_ADJ, '--oom-score-adj'], [SECCOMP_RETAIN, '--seccomp'], [SECCOMP_REMOVE, '--seccomp'],
]);

/** The checked isolators in place: each applied one in stage1's form, the others as they are. */
/** The addon's answer for a remove set, once per set and process: it builds the filter (about 1 ms), and every run asks. */
const neededBySet = new Map<string, string[]>();
const stage1Needs = (set: string[]): string[] => {
  const key = JSON.stringify(set);
  let needed = neededBySet.get(key);
  if (needed === undefined) neededBySet.set(key, (needed = seccompEntriesStage1Needs(set)));
  return needed;
};

const checked = (isolators: Isolator[], fail: (i: Isolator) => Fail): Isolator[] => {
  for (const kind of KINDS) {
    const present = kind.filter((name) => isolators.some((i) => i.name === name));
    if (present.length > 1) throw fail(isolators.find((i) => i.name === present[1])!)(`${present.join(' and ')} cannot both be set`);
  }
  const out = isolators.map((i, n) => {
    const check = APPLIED.get(i.name);
    if (check === undefined) return i;
    if (isolators.findIndex((j) => j.name === i.name) !== n) throw fail(i)('it is given twice');
    return { name: i.name, value: check(i.value, fail(i)) };
  });
  // Without no_new_privs stage1 loads the filter before it drops the app's privileges, with calls a remove set may deny.
  const removed = out.find((i) => i.name === SECCOMP_REMOVE);
  if (removed !== undefined && out.some((i) => i.name === NO_NEW_PRIVILEGES && i.value === false)) {
    const needed = stage1Needs((removed.value as { set: string[] }).set);
    if (needed.length > 0) throw fail(removed)(`it removes ${needed.join(', ')}, which stage1 calls after loading the filter when ${NO_NEW_PRIVILEGES} is false`);
  }
  return out;
};

/** An app's flags, checked before anything is resolved: a bad value is a usage error naming the flag. */
export const checkIsolatorFlags = (app: AppConfig): void => {
  if (app.capsRetain !== undefined && app.capsRemove !== undefined) {
    throw new PodlogError('EUSAGE', '--caps-retain and --caps-remove cannot both be given for one app');
  }
  checked(flagIsolators(app), (i) => (what) => new PodlogError('EUSAGE', `${FLAG.get(i.name)}: ${what}`));
};

/** The app section's isolators: the image's, with its flags' in place of the image's of their kind; undefined if none. */
export const appIsolators = (app: string, image: Isolator[] | undefined, config: AppConfig | undefined): Isolator[] | undefined => {
  const flags = config !== undefined ? flagIsolators(config) : [];
  const replaced = new Set(flags.flatMap((f) => kindOf(f.name)));
  const all = [...(image ?? []).filter((i) => !replaced.has(i.name)), ...flags];
  if (image === undefined && all.length === 0) return undefined;
  return checked(all, (i) => (what) => new PodlogError('EBADMANIFEST', `app ${app}: isolator ${i.name}: ${what}`));
};

/** The isolators of a pod's apps that podlog does not apply, by app (a resource isolator with only a request among them). */
export const ignoredIsolators = (apps: Array<{ name: string; app?: { isolators?: Isolator[] } }>): Array<{ app: string; name: string }> =>
  apps.flatMap((a) => (a.app?.isolators ?? []).filter((i) => !APPLIED.has(i.name) || limitless(i)).map((i) => ({ app: a.name, name: i.name })));
