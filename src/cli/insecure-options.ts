/**
 * rkt's --insecure-options: a comma-separated list of checks to turn off, some at fetch (image, http,
 * tls) and some at run (capabilities, paths, seccomp), with `all-fetch`, `all-run` and `all`. The run
 * verbs and `fetch` read the same list, so one spelling means one thing everywhere.
 */
import { PodlogError } from '../errors.js';
import type { FetchPolicy } from '../images/policy.js';
import { notYet, type InsecureOptions } from '../stage0/config.js';

export type FetchInsecurity = Pick<FetchPolicy, 'allowHttp' | 'skipTlsVerify' | 'skipImageVerify'>;

export interface Insecurity {
  run: InsecureOptions;
  fetch: FetchInsecurity;
}

type Switch = { run: keyof InsecureOptions } | { fetch: keyof FetchInsecurity };

const RUN: ReadonlyMap<string, Switch> = new Map([
  ['capabilities', { run: 'disableCapabilities' }],
  ['paths', { run: 'disablePaths' }],
  ['seccomp', { run: 'disableSeccomp' }],
]);
const FETCH: ReadonlyMap<string, Switch> = new Map([
  ['image', { fetch: 'skipImageVerify' }],
  ['http', { fetch: 'allowHttp' }],
  ['tls', { fetch: 'skipTlsVerify' }],
]);
const GROUPS: ReadonlyMap<string, readonly Switch[]> = new Map<string, readonly Switch[]>([
  ['all-run', [...RUN.values()]],
  ['all-fetch', [...FETCH.values()]],
  ['all', [...RUN.values(), ...FETCH.values()]],
  ...[...RUN, ...FETCH].map(([name, s]): [string, Switch[]] => [name, [s]]),
]);
/** rkt's options for what podlog does not have: the tree store is always checked, keys are never discovered. */
const ABSENT = new Set(['ondisk', 'pubkey']);

/** The checks `values` (each a name or a comma-separated list) turn off; `none` turns off nothing. */
export const parseInsecureOptions = (values: readonly string[]): Insecurity => {
  const off: Insecurity = {
    run: { disableCapabilities: false, disablePaths: false, disableSeccomp: false },
    fetch: { allowHttp: false, skipTlsVerify: false, skipImageVerify: false },
  };
  for (const v of values.flatMap((list) => list.split(','))) {
    if (v === 'none') continue;
    if (ABSENT.has(v)) throw notYet(`--insecure-options=${v}`);
    const switches = GROUPS.get(v);
    if (!switches) throw new PodlogError('EUSAGE', `--insecure-options: unknown option ${JSON.stringify(v)} (none, ${[...GROUPS.keys()].join(', ')})`);
    for (const s of switches) {
      if ('run' in s) off.run[s.run] = true;
      else off.fetch[s.fetch] = true;
    }
  }
  return off;
};
