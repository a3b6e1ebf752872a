/**
 * Generated command lines for the run verbs, built from the real flag table (RUN_VERB_FLAGS): each
 * flag with values that are valid and values that are not, among images, app arguments, `--`, `---`,
 * `-h` and junk. The files the flags name (env files, stage1 images, UUID files) are real ones in a
 * world directory of the test's own.
 */
import fc from 'fast-check';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_VERB_FLAGS, type FlagSpec, type RunVerb } from '../../src/cli/run-flags.js';
import { ENTRYPOINTS } from '../../src/stage0/stage1.js';
import { stage1Path } from '../../src/native.js';
import { aciPath } from '../helpers/fixtures.js';

export interface World {
  dir: string;
  image: string;
  /**
   * Values of each flag taking one, those podlog takes and those it refuses: every one is an input
   * podlog can judge without running a pod.
   */
  values: Record<string, { ok: string[]; bad: string[] }>;
  cleanup(): void;
}

/** A stage1 image directory: the real binary under rootfs/, or one of the ways it can be broken. */
const stage1Dir = (root: string, kind: 'good' | 'no-manifest' | 'not-json' | 'no-gc' | 'no-binary' | 'not-executable'): string => {
  const dir = join(root, `stage1-${kind}`);
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  if (kind === 'no-manifest') return dir;
  if (kind === 'not-json') {
    writeFileSync(join(dir, 'manifest'), '{ not json');
    return dir;
  }
  const names = Object.entries(ENTRYPOINTS).filter(([name]) => kind !== 'no-gc' || name !== 'gc');
  const verb: Record<string, string> = { run: 'init', enter: 'enter', gc: 'gc', stop: 'stop', netns: 'netns' };
  writeFileSync(
    join(dir, 'manifest'),
    JSON.stringify({ acKind: 'ImageManifest', name: 'test/stage1', annotations: names.map(([name, annotation]) => ({ name: annotation, value: `/stage1 ${verb[name]}` })) }),
  );
  if (kind === 'good') symlinkSync(stage1Path(), join(dir, 'rootfs', 'stage1'));
  if (kind === 'not-executable') {
    writeFileSync(join(dir, 'rootfs', 'stage1'), '#!/bin/sh\n');
    chmodSync(join(dir, 'rootfs', 'stage1'), 0o644);
  }
  return dir;
};

export const makeWorld = (): World => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-flags-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const envFiles = [file('env-ok', 'A=1\n# a comment\n\nB=two=2\n'), file('env-no-equals', 'A=1\nNOEQUALS\n'), file('env-bad-name', '1X=y\n'), join(dir, 'missing'), dir];
  const stage1 = (['good', 'no-manifest', 'not-json', 'no-gc', 'no-binary', 'not-executable'] as const).map((k) => stage1Dir(dir, k));
  mkdirSync(join(dir, 'out'));
  return {
    dir,
    image: aciPath('busybox-gzip'),
    values: {
      exec: { ok: ['/bin/true'], bad: [''] },
      name: { ok: ['app', 'web-1'], bad: ['Bad_Name', ''] },
      user: { ok: ['0'], bad: [''] },
      group: { ok: ['0'], bad: [''] },
      'working-dir': { ok: ['/'], bad: ['relative'] },
      environment: { ok: ['K=v', 'K='], bad: ['NOEQUALS', '=v', '1X=y'] },
      'caps-retain': { ok: ['CAP_NET_BIND_SERVICE,CAP_KILL'], bad: ['CAP_FLY', '', 'net_bind_service'] },
      // Given with --caps-retain for one app it is refused, so it is never among the valid flags.
      'caps-remove': { ok: [], bad: ['CAP_FLY', 'chown'] },
      memory: { ok: ['64M', '1Gi'], bad: ['1k', 'lots', ''] },
      cpu: { ok: ['500m', '1'], bad: ['5m', 'fast', ''] },
      'cpu-shares': { ok: ['512'], bad: ['1', 'x'] },
      // Lowering it needs CAP_SYS_RESOURCE, which root may not have: stage1 would refuse it.
      'oom-score-adj': { ok: ['500'], bad: ['2000', 'x'] },
      seccomp: { ok: ['mode=remove,errno=EPERM,keyctl', 'mode=retain,@podlog/default-whitelist'], bad: ['remove,mkdir', 'mode=remove', 'mode=remove,notasyscall'] },
      'uuid-file-save': { ok: [join(dir, 'out', 'uuid')], bad: [join(dir, 'no-such-dir', 'uuid'), join(dir, 'out'), ''] },
      'set-env': { ok: ['A=1', 'B=x=y'], bad: ['NOEQUALS', '=x', '1X=y'] },
      'set-env-file': { ok: envFiles.slice(0, 1), bad: envFiles.slice(1) },
      'pod-manifest': { ok: [], bad: [join(dir, 'env-ok')] },
      port: { ok: [], bad: ['http:8080', 'http', 'http:0', 'Bad:80'] },
      'user-annotation': { ok: ['k=v'], bad: ['NOEQUALS', '=v'] },
      'user-label': { ok: ['team=infra'], bad: ['NOEQUALS'] },
      'stage1-path': { ok: stage1.slice(0, 1), bad: [...stage1.slice(1), join(dir, 'missing'), ''] },
      volume: { ok: ['data,kind=empty', `h,kind=host,source=${dir}`], bad: ['data,kind=tmpfs', 'data', '', 'h,kind=host,source=relative'] },
      mount: { ok: ['volume=data,target=/data', 'volume=h,target=/h'], bad: ['volume=data', 'target=/x', 'volume=data,target=../x', ''] },
      'insecure-options': { ok: ['none', 'seccomp', 'all-run', 'none,paths', 'image', 'http,tls', 'all'], bad: ['ondisk', 'bogus', '', 'pubkey'] },
      // default and named networks run CNI plugins: test/stage0/workload-network.test.ts has them.
      net: { ok: ['host', 'none'], bad: ['host,none', 'cni-net', 'host:x', '', 'lan:IP'] },
      'local-config': { ok: [dir], bad: [''] },
      'net-plugins-dir': { ok: [dir], bad: [''] },
      hostname: { ok: ['pod-1', 'a.b.c'], bad: ['bad_host', '-x', '', 'x'.repeat(65), 'a..b'] },
      dns: { ok: ['host', 'none', 'default', '192.0.2.1', '2001:db8::53'], bad: ['not-an-ip', '', 'host,none'] },
      'dns-search': { ok: ['example.com'], bad: ['bad_name', 'a..b', ''] },
      'dns-opt': { ok: ['ndots:2', 'rotate'], bad: ['ndots 2', 'Rotate', ''] },
      'dns-domain': { ok: ['example.com'], bad: ['-x', 'a b'] },
      'hosts-entry': { ok: ['host', '10.0.0.1=db', '10.0.0.2=a,b.example'], bad: ['not-an-ip=db', '10.0.0.1=', '10.0.0.1=bad_name', 'junk'] },
      'uuid-file': { ok: [envFiles[0]!], bad: [join(dir, 'missing')] },
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
};

const tokens = (...t: string[]): string[] => t;

/** Bool flags: --flag=false is the value every verb takes, so it comes most often. */
const BOOL_FORMS = (name: string): string[][] => [`--${name}=false`, `--${name}=false`, `--${name}`, `--${name}=true`, `--${name}=maybe`].map((t) => [t]);

/**
 * One flag as a user types it: --flag=V, --flag V, a bare --flag (bool, or missing its value: it then
 * takes the next token as its value, as rkt's flags do), a bad bool.
 */
const flagGroup = (name: string, spec: FlagSpec, values: fc.Arbitrary<string>, bare: boolean): fc.Arbitrary<string[]> =>
  spec.takes === 'bool'
    ? fc.constantFrom(...BOOL_FORMS(name))
    : fc.oneof(
        { weight: 4, arbitrary: values.map((v) => [`--${name}=${v}`]) },
        { weight: 4, arbitrary: values.map((v) => [`--${name}`, v]) },
        ...(bare ? [{ weight: 1, arbitrary: fc.constant<string[]>([`--${name}`]) }] : []),
      );

/** Junk a user (or a script gone wrong) might type; in process, also any string at all. */
const JUNK = ['--', '---', '-', '-h', '--help', '--bogus', '--constructor', '--__proto__', '--toString', '=', '--=x', '-x', ''];

export interface VectorOptions {
  /** Any string (NUL bytes, unicode) among the tokens and values: only in process, as argv cannot carry them all. */
  anyString: boolean;
}

/** A flag's values: those podlog takes three times as often as those it refuses, and any string in process. */
const valuesOf = (w: World, name: string, o: VectorOptions): fc.Arbitrary<string> => {
  const { ok, bad } = w.values[name] ?? { ok: [], bad: ['x'] };
  const known = fc.oneof(...(ok.length > 0 ? [{ weight: 3, arbitrary: fc.constantFrom(...ok) }] : []), { weight: 1, arbitrary: fc.constantFrom(...bad) });
  return o.anyString ? fc.oneof({ weight: 5, arbitrary: known }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) }) : known;
};

/** The flags of the table a test wants (of a verb, of a scope), each as a group of tokens. */
const flagsWhere = (w: World, o: VectorOptions, keep: (spec: FlagSpec) => boolean, bare = true): fc.Arbitrary<string[]> =>
  fc.oneof(
    ...[...RUN_VERB_FLAGS]
      .filter(([, spec]) => keep(spec))
      // A flag that takes no value of ours yet (--port …) would end most command lines.
      .map(([name, spec]) => ({ weight: spec.takes === 'value' && w.values[name]?.ok.length === 0 ? 1 : 4, arbitrary: flagGroup(name, spec, valuesOf(w, name, o), bare) })),
  );

const junk = (o: VectorOptions): fc.Arbitrary<string[]> =>
  (o.anyString ? fc.oneof(fc.constantFrom(...JUNK), fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 8 })) : fc.constantFrom(...JUNK)).map((t) => [t]);

/** App arguments: `--`, words that look like flags, and mostly the `---` that ends them. */
const appArgs = fc
  .tuple(fc.array(fc.constantFrom('-h', '--help', '--exec', 'x', '--', '-c'), { maxLength: 3 }), fc.nat(3))
  .map(([args, end]) => tokens('--', ...args, ...(end > 0 ? ['---'] : [])));

/**
 * A command line of `verb`: mostly shaped as the grammar wants it (pod flags, then each image with
 * its flags and arguments, then pod flags), sometimes with junk or another verb's flags put in
 * anywhere, sometimes any sequence of tokens at all.
 */
export const anyRunArgv = (w: World, o: VectorOptions, verb: RunVerb): fc.Arbitrary<string[]> => {
  // app add's pod comes first; app sandbox takes no image, so mostly none is given.
  const lead: fc.Arbitrary<string[]> = verb === 'app-add' ? fc.oneof(fc.uuid(), fc.constantFrom('0123abcd', '')).map((u) => [u]) : fc.constant([]);
  const images = verb === 'app-sandbox' ? { minLength: 0, maxLength: 1 } : { minLength: 1, maxLength: 2 };
  const podFlags = fc.array(flagsWhere(w, o, (s) => s.scope !== 'app' && s.verbs.includes(verb)), { maxLength: 3 });
  const image = verb === 'run-prepared' ? fc.oneof(fc.constantFrom('0123abcd', ''), fc.uuid()) : fc.constantFrom(w.image, w.image, '0123abcd', '');
  const appFlags = verb === 'run-prepared' || verb === 'app-sandbox' ? fc.constant([]) : fc.array(flagsWhere(w, o, (s) => s.scope !== 'pod' && s.verbs.includes(verb)), { maxLength: 3 });
  const app = fc.tuple(image, appFlags, verb === 'run-prepared' ? fc.constant(null) : fc.option(appArgs, { freq: 3 }));
  const shaped = fc
    .tuple(lead, podFlags, fc.array(app, images), podFlags)
    .map(([first, before, apps, after]) => [...first, ...before.flat(), ...apps.flatMap(([img, flags, args]) => [img, ...flags.flat(), ...(args ?? [])]), ...after.flat()]);
  const stray = fc.oneof(junk(o), flagsWhere(w, o, (s) => !s.verbs.includes(verb)));
  const noisy = fc
    .tuple(shaped, fc.array(fc.tuple(fc.nat(), stray), { minLength: 1, maxLength: 2 }))
    .map(([argv, inserts]) => inserts.reduce((a, [at, group]) => [...a.slice(0, at % (a.length + 1)), ...group, ...a.slice(at % (a.length + 1))], argv));
  const loose = fc.array(fc.oneof(flagsWhere(w, o, () => true), fc.constant([w.image]), appArgs, junk(o)), { maxLength: 10 }).map((groups) => groups.flat());
  return fc.oneof({ weight: 5, arbitrary: shaped }, { weight: 2, arbitrary: noisy }, { weight: 1, arbitrary: loose });
};

/**
 * A command line of `podlog app` other than `sandbox` (which runs a pod): a sub-verb (or junk),
 * a UUID, and the sub-verbs' own flags with good and bad values, in any order.
 */
export const appVerbArgv = (w: World): fc.Arbitrary<string[]> => {
  const subverb = fc.constantFrom('add', 'start', 'stop', 'rm', 'list', 'status', 'frobnicate', '', '--help');
  const flag = fc.oneof(
    fc.constantFrom(['--app=web'], ['--app', 'web'], ['--app='], ['--app'], ['--force'], ['--force=maybe'], ['--format=json'], ['--format', 'yaml'], ['--no-legend'], ['--bogus']),
    flagsWhere(w, { anyString: false }, (s) => s.verbs.includes('app-add')),
  );
  const word = fc.oneof(fc.uuid(), fc.constantFrom('0123abcd', '', w.image, '--', '---'));
  return fc
    .tuple(subverb, fc.array(fc.oneof(flag, word.map((x) => [x])), { maxLength: 6 }))
    .map(([verb, rest]) => ['app', verb, ...rest.flat()]);
};

/** A flag of run with a value it takes: a bool one false (--inherit-env either way), a value one from the ok list. */
const validRunFlag = (w: World, scopes: ReadonlyArray<FlagSpec['scope']>): fc.Arbitrary<string[]> =>
  fc.oneof(
    ...[...RUN_VERB_FLAGS]
      .filter(([name, s]) => s.verbs.includes('run') && scopes.includes(s.scope) && (s.takes === 'bool' || w.values[name]!.ok.length > 0))
      .map(([name, s]) => (s.takes === 'bool' ? fc.constant<string[]>([`--${name}=${name === 'inherit-env'}`]) : fc.constantFrom(...w.values[name]!.ok).map((v) => [`--${name}=${v}`]))),
  );

/**
 * A `run` whose every failure is the input's: one busybox app that runs /bin/true or exits with a
 * code, among flags either all valid or generated as they come; `code` is what the app exits with.
 */
export const runVector = (w: World): fc.Arbitrary<{ argv: string[]; code: number }> => {
  const o = { anyString: false };
  // No bare value flag: one that takes the next token (--exec --net=host) is judged by stage1 only, in a pod.
  const anyFlags = fc.array(fc.oneof({ weight: 8, arbitrary: flagsWhere(w, o, (s) => s.verbs.includes('run'), false) }, { weight: 1, arbitrary: junk(o) }), { maxLength: 4 });
  // Before the image, only pod flags; after the app's arguments, its own flags too.
  const validFlags = (scopes: ReadonlyArray<FlagSpec['scope']>) => fc.array(validRunFlag(w, scopes), { maxLength: 3 });
  const app = fc.oneof(
    fc.constant({ tail: tokens('--exec', '/bin/true'), code: 0 }),
    fc.integer({ min: 0, max: 9 }).map((code) => ({ tail: tokens('--exec', '/bin/sh', '--', '-c', `exit ${code}`, '-h', '---'), code })),
  );
  return fc
    .oneof(fc.tuple(validFlags(['pod']), app, validFlags(['pod', 'app'])), fc.tuple(anyFlags, app, anyFlags))
    .map(([before, { tail, code }, after]) => ({ argv: ['run', ...before.flat(), w.image, ...tail, ...after.flat()], code }));
};
