/**
 * rkt's `version`: what this podlog is made of (its own, stage1's and the addon's versions, the store
 * schema it writes) and what it can do. Every part is asked for its own version, so a stale build of
 * one shows; a part that is missing is named, and the verb exits 254 after printing the rest.
 */
import { spawnSync } from 'node:child_process';
import { PodlogError } from '../../errors.js';
import { keepUrl } from '../../events/metadata.js';
import { nativePath, nativeVersion, podlogVersion, stage1Path } from '../../native.js';
import { PG_SCHEMA_VERSION } from '../../store/postgres-schema.js';
import { probeFile, SCHEMA_VERSION } from '../../store/sqlite-schema.js';
import { out, type Command } from '../command.js';

/** Podlog's own, whichever stage1 and addon it runs with. */
const FEATURES = ['+sqlite', '+postgresql', '+appc', '+oci', '+docker-registry', '+openpgp-signatures', '+cni', '+metadata-service', '+api-service'];

const stage1Lines = (): { lines: string[]; missing?: string } => {
  const path = stage1Path();
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const [name, features] = r.status === 0 ? r.stdout.trim().split('\n') : [];
  if (name === undefined) return { lines: [`stage1 Version: unknown`], missing: `stage1 ${path} did not run: ${r.error?.message ?? (r.stderr.trim() || `exit ${r.status}`)}` };
  return { lines: [`stage1 Version: ${name.replace(/^podlog-stage1 /, '')} (${path})`, `stage1 Features: ${features?.replace(/^features: /, '') ?? ''}`] };
};

const addonLines = (): { lines: string[]; missing?: string } => {
  try {
    const v = nativeVersion();
    return { lines: [`addon Version: ${v.version} (${nativePath()})`, `addon Features: ${v.compressions.filter((c) => c !== 'none').map((c) => `+${c}`).join(' ')}`] };
  } catch (e) {
    return { lines: ['addon Version: unknown'], missing: (e as Error).message };
  }
};

/** The schema of the log this command would use, where that needs no server to answer. */
const logSchema = (url: string): string => {
  if (/^postgres(ql)?:\/\//.test(url)) return `${keepUrl(url)} (a server: not asked)`;
  if (!url.startsWith('sqlite:')) return `${JSON.stringify(url)} (not a store URL: sqlite:PATH or postgres://USER@HOST/DB)`;
  const file = url.slice('sqlite:'.length);
  try {
    const probe = probeFile(file);
    if (probe.kind === 'sqlite') return `${url} (schema version ${probe.userVersion})`;
    return `${url} (${probe.kind === 'wal' ? 'in use' : 'not created yet'})`;
  } catch (e) {
    return `${url} (${(e as Error).message})`;
  }
};

export const version: Command = {
  usage: 'podlog version',
  options: {},
  examples: ['podlog version', 'podlog --version'],
  run: async ({ positionals, store }) => {
    if (positionals.length > 0) throw new PodlogError('EUSAGE', 'version takes no arguments');
    const stage1 = stage1Lines();
    const addon = addonLines();
    out([
      `podlog Version: ${podlogVersion()}`,
      ...stage1.lines,
      ...addon.lines,
      `Store Schema Version: sqlite ${SCHEMA_VERSION}, postgresql ${PG_SCHEMA_VERSION}`,
      `Event Log: ${logSchema(store)}`,
      `Node Version: ${process.version}`,
      `Features: ${FEATURES.join(' ')}`,
    ].join('\n'));
    const missing = [stage1.missing, addon.missing].filter((m) => m !== undefined);
    for (const m of missing) process.stderr.write(`podlog: version: ${m}\n`);
    return missing.length > 0 ? 254 : 0;
  },
};
