/**
 * An app's seccomp filter as appc says it (`os/linux/seccomp-retain-set`, `-remove-set`:
 * `{"set": ["@group" | "syscall", …], "errno": "EPERM"}`), from its image or from rkt's per-app
 * `--seccomp mode=retain|remove,[errno=NAME,]ENTRY,…`. stage1 compiles it with libseccomp
 * (docs/stage1.md lists the groups and the default filter an app without one gets).
 */
import { constants } from 'node:os';
import { PodlogError } from '../errors.js';
import { unknownSeccompEntries } from '../native.js';

export const SECCOMP_RETAIN = 'os/linux/seccomp-retain-set';
export const SECCOMP_REMOVE = 'os/linux/seccomp-remove-set';

type Fail = (what: string) => PodlogError;

/** The isolator's value, checked: a non-empty set of known groups and syscalls, and a known errno. */
export const checkSeccompValue = (value: unknown, fail: Fail): { set: string[]; errno?: string } => {
  const v = value as { set?: unknown; errno?: unknown } | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail('its value must be an object {"set": [...], "errno": NAME}');
  for (const key of Object.keys(v)) if (key !== 'set' && key !== 'errno') throw fail(`unknown field ${JSON.stringify(key)} (set, errno)`);
  const { set, errno } = v;
  if (!Array.isArray(set) || set.length === 0 || !set.every((e) => typeof e === 'string')) throw fail('"set" must be a non-empty list of syscall names and @groups');
  if (errno !== undefined && errno !== '' && (typeof errno !== 'string' || !Object.hasOwn(constants.errno, errno))) {
    throw fail(`unknown errno ${JSON.stringify(errno)} (a name such as EPERM, ENOSYS, EACCES)`);
  }
  const unknown = unknownSeccompEntries(set as string[]);
  if (unknown.length > 0) throw fail(`unknown syscall or group ${unknown.map((e) => JSON.stringify(e)).join(', ')}`);
  return { set: set as string[], ...(typeof errno === 'string' && errno !== '' ? { errno } : {}) };
};

/** rkt's --seccomp: `mode=` once, `errno=` at most once, the rest the set (checked with the app's other flags). */
export const parseSeccompFlag = (text: string): { mode: 'retain' | 'remove'; set: string[]; errno?: string } => {
  const fail = (what: string) => new PodlogError('EUSAGE', `--seccomp ${text}: ${what}`);
  let mode: string | undefined;
  let errno: string | undefined;
  const set: string[] = [];
  for (const part of text.split(',')) {
    if (part.startsWith('mode=')) {
      if (mode !== undefined) throw fail('mode= is given twice');
      mode = part.slice('mode='.length);
    } else if (part.startsWith('errno=')) {
      if (errno !== undefined) throw fail('errno= is given twice');
      errno = part.slice('errno='.length);
    } else if (part !== '') set.push(part);
  }
  if (mode !== 'retain' && mode !== 'remove') throw fail(`needs mode=retain or mode=remove${mode !== undefined ? ` (not ${JSON.stringify(mode)})` : ''}`);
  return { mode, set, ...(errno !== undefined ? { errno } : {}) };
};
