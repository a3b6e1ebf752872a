/**
 * `podlog trust`: rkt's trust verb over the keystore of src/images/trust/keystore.ts. rkt showed each
 * key's fingerprint and asked before trusting it; podlog is run by scripts, so it asks nothing and
 * prints the fingerprints it trusted (stdout, one a line) for the script to compare with the signer's.
 */
import { readFileSync } from 'node:fs';
import { PodlogError } from '../../errors.js';
import { DEFAULT_LOCAL_CONFIG, localConfigOf } from '../../images/policy.js';
import { checkPrefix, normalFingerprint, readPublicKeys, readStoredKey, removeKey, storeKeys, trustedKeys, type NewKey } from '../../images/trust/keystore.js';
import { loadKeys } from '../../images/trust/pgp.js';
import { out, str, type Command, type Values } from '../command.js';
import { table } from '../table.js';

const localConfig = (values: Values): string => localConfigOf(str(values, 'local-config'));

/** --prefix or --root: '' for root; undefined when neither is given. */
const scope = (values: Values): string | undefined => {
  const prefix = str(values, 'prefix');
  if (prefix !== undefined && values.root === true) throw new PodlogError('EUSAGE', 'trust: --prefix and --root exclude each other');
  if (values.root === true) return '';
  return prefix === undefined ? undefined : checkPrefix(prefix);
};

const shown = (fpr: string): string => fpr.toUpperCase();
const forWhat = (prefix: string): string => (prefix === '' ? 'every image (root)' : `images named ${prefix} or ${prefix}/…`);

const add = async (values: Values, files: string[]): Promise<number> => {
  const prefix = scope(values);
  if (prefix === undefined) throw new PodlogError('EUSAGE', 'trust: give --prefix=NAME (the images the key vouches for) or --root (every image)');
  if (files.length === 0) throw new PodlogError('EUSAGE', 'trust: give the public key file(s) to trust');
  // Every file is read and checked before anything is written: a bad one among them stores nothing.
  const keys: NewKey[] = [];
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new PodlogError('ENOENT', `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    keys.push(...(await readPublicKeys(bytes, file)));
  }
  const stored = storeKeys(localConfig(values), prefix, keys);
  keys.forEach((k, i) => {
    process.stderr.write(`trusted ${shown(k.fingerprint)} (${k.userIds.join(', ') || 'no user id'}) for ${forWhat(prefix)}: ${stored[i]!.file}\n`);
    out(shown(k.fingerprint));
  });
  return 0;
};

const list = async (values: Values): Promise<number> => {
  const format = str(values, 'format') ?? 'table';
  if (format !== 'table' && format !== 'json') throw new PodlogError('EUSAGE', `--format: ${JSON.stringify(format)} is not table or json`);
  const keys = await loadKeys(trustedKeys(localConfig(values)), readStoredKey);
  const rows = keys.map((k) => ({ prefix: k.prefix, root: k.prefix === '', fingerprint: shown(k.fingerprint), userIds: k.key.getUserIDs(), file: k.file }));
  if (format === 'json') out(JSON.stringify(rows));
  else if (values['no-legend'] !== true || rows.length > 0) {
    out(table(values['no-legend'] === true ? null : ['PREFIX', 'FINGERPRINT', 'USER IDS'], rows.map((r) => [r.root ? '(root)' : r.prefix, r.fingerprint, r.userIds.join(', ')])));
  }
  return 0;
};

const rm = (values: Values, fingerprints: string[]): number => {
  if (fingerprints.length === 0) throw new PodlogError('EUSAGE', 'trust rm: give the fingerprint(s) of the keys to remove');
  const dir = localConfig(values);
  const prefix = scope(values);
  const wanted = fingerprints.map(normalFingerprint);
  const keys = trustedKeys(dir);
  const missing = wanted.filter((f) => !keys.some((k) => k.fingerprint === f && (prefix === undefined || k.prefix === prefix)));
  if (missing.length > 0) {
    throw new PodlogError('ENOENT', `trust rm: no key ${missing.map(shown).join(', ')} is trusted${prefix === undefined ? '' : ` for ${forWhat(prefix)}`} in ${dir}`);
  }
  for (const f of wanted) {
    for (const k of removeKey(dir, f, prefix)) process.stderr.write(`removed ${shown(f)}, trusted for ${forWhat(k.prefix)}\n`);
  }
  return 0;
};

export const trust: Command = {
  usage: [
    'podlog trust (--prefix=NAME | --root) [--local-config=DIR] KEY.asc...',
    'podlog trust list [--local-config=DIR] [--format=table|json] [--no-legend]',
    'podlog trust rm [--prefix=NAME | --root] [--local-config=DIR] FINGERPRINT...',
  ].join('\n       ') + [
    '',
    '',
    'A key trusted for a prefix vouches for the images named NAME or NAME/...; a root key for every image.',
    'Keys are trusted without a question (rkt asked to review each fingerprint; podlog is for scripts):',
    "the fingerprints trusted are printed, one a line, to compare with the signer's.",
    "--skip-fingerprint-review is accepted for rkt's scripts and changes nothing.",
    'With no key trusted, images are accepted unchecked (the log says so); with any, every image fetched',
    'must be signed by a key trusted for its name, unless --insecure-options=image.',
  ].join('\n'),
  options: {
    prefix: { type: 'string', value: 'NAME', description: 'trust the keys for images named NAME or NAME/...' },
    root: { type: 'boolean', default: false, description: 'trust the keys for every image' },
    'local-config': { type: 'string', value: 'DIR', description: 'where trusted keys are kept', shownDefault: DEFAULT_LOCAL_CONFIG },
    'skip-fingerprint-review': { type: 'boolean', default: false, description: "accepted for rkt's scripts; changes nothing" },
    format: { type: 'string', value: 'table|json', description: 'list: how to print the keys', shownDefault: 'table' },
    'no-legend': { type: 'boolean', default: false, description: 'list: no header line' },
  },
  examples: ['podlog trust --prefix=example.com/app key.asc', 'podlog trust list', 'podlog trust rm --root FINGERPRINT'],
  subcommands: ['list', 'rm'],
  run: async ({ values, positionals }) => {
    const [first, ...rest] = positionals;
    if (first === 'list') {
      if (rest.length > 0 || str(values, 'prefix') !== undefined || values.root === true) throw new PodlogError('EUSAGE', 'usage: podlog trust list [--local-config=DIR] [--format=table|json] [--no-legend]');
      return list(values);
    }
    if (str(values, 'format') !== undefined || values['no-legend'] === true) throw new PodlogError('EUSAGE', 'trust: --format and --no-legend are for trust list');
    if (first === 'rm') return rm(values, rest);
    return add(values, positionals);
  },
};
