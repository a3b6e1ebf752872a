/**
 * The OCI image config under generated input: a valid config maps to the app docker2aci makes of it
 * (user and group, environment, entrypoint and command, working directory), which the ACI manifest
 * checks accept; a mutated one is refused with an EBADMANIFEST PodlogError naming the field whenever
 * a type is broken, and whatever is accepted maps and checks without anything thrown but a refusal.
 */
import test from 'ava';
import fc from 'fast-check';
import { PodlogError } from '../../src/errors.js';
import { parseImageManifest } from '../../src/images/aci-manifest.js';
import { manifestFromConfig, parseOciConfig } from '../../src/images/oci-config.js';
import { breaksSchema, mutate, mutation, toText, type Json, type Schema } from './json-mutations.js';

const word = fc.constantFrom('a', 'app', '1000', 'nobody', 'wheel', '0', '\u00e9t\u00e9');
const arg = fc.oneof({ arbitrary: fc.constantFrom('', '/bin/sh', '-c', 'echo $X', 'a b', '\u65e5\u672c'), weight: 4 }, { arbitrary: fc.string({ unit: 'binary', maxLength: 6 }), weight: 1 });
const envName = fc.constantFrom('PATH', 'A', '_x', 'a.b-c', '1BAD', 'BAD NAME', '');
const argv = fc.oneof(fc.constant(null), fc.array(arg, { maxLength: 3 }));

const config = fc.record(
  {
    architecture: fc.constantFrom('amd64', 'arm64', 'arm', '386', 'riscv64'),
    os: fc.constantFrom('linux', 'windows'),
    variant: fc.constantFrom('v6', 'v7', 'v8'),
    created: fc.constantFrom('2026-01-01T00:00:00Z'),
    author: word,
    config: fc.oneof(
      fc.constant(null),
      fc.record({
        User: fc.oneof(fc.constant(''), word, fc.tuple(word, word).map(([u, g]) => `${u}:${g}`), word.map((u) => `${u}:`), word.map((g) => `:${g}`)),
        Env: fc.oneof(fc.constant(null), fc.array(fc.tuple(envName, fc.option(arg)).map(([n, v]) => (v === null ? n : `${n}=${v}`)), { maxLength: 4 })),
        Entrypoint: argv,
        Cmd: argv,
        WorkingDir: fc.constantFrom('', '/', '/home/user', '/w\u00e9'),
        ExposedPorts: fc.oneof(fc.constant(null), fc.dictionary(fc.constantFrom('80/tcp', '53/udp', '8080', 'x/tcp'), fc.constant({}), { maxKeys: 3 })),
      }),
    ),
  },
  { requiredKeys: [] },
).map((c) => JSON.parse(JSON.stringify(c)) as Json);

const SCHEMA: Schema = {
  types: {
    '': 'object',
    architecture: 'string',
    os: 'string',
    variant: 'string',
    created: 'string',
    author: 'string',
    config: ['object', 'null'],
    'config.User': 'string',
    'config.Env': ['array', 'null'],
    'config.Env.*': 'string',
    'config.Entrypoint': ['array', 'null'],
    'config.Entrypoint.*': 'string',
    'config.Cmd': ['array', 'null'],
    'config.Cmd.*': 'string',
    'config.WorkingDir': 'string',
    'config.ExposedPorts': ['object', 'null'],
  },
  required: [],
};

const WHERE = 'layout: image config sha256:00';
const ENV_NAME = /^[A-Za-z_][A-Za-z_0-9.-]*$/;

/** The config parsed, mapped and checked as an import does; a refusal comes back, anything else is thrown. */
const importConfig = (text: string): ReturnType<typeof manifestFromConfig> | PodlogError => {
  try {
    const manifest = manifestFromConfig(parseOciConfig(JSON.parse(text), WHERE), 'example.com/image', 'latest');
    return parseImageManifest(JSON.stringify(manifest), 'layout');
  } catch (e) {
    if (e instanceof PodlogError && e.code === 'EBADMANIFEST' && e.exitCode === 254) return e;
    throw e;
  }
};

test('a valid config maps to its app as docker2aci maps it', (t) => {
  const numRuns = 5_000;
  fc.assert(
    fc.property(config, (c) => {
      const oci = c as { config?: Record<string, Json> | null };
      const cfg = oci.config ?? {};
      const m = manifestFromConfig(parseOciConfig(c, WHERE), 'example.com/image', undefined);
      const app = m.app!;
      const [user, group] = String(cfg.User ?? '').split(':');
      t.is(app.user, user || '0');
      // A user alone keeps no group: stage1 takes the user's groups from the image's /etc files.
      t.is(app.group, cfg.User ? group || undefined : '0');
      t.deepEqual(app.exec ?? [], [...((cfg.Entrypoint as string[] | null) ?? []), ...((cfg.Cmd as string[] | null) ?? [])]);
      t.is(app.workingDirectory, (cfg.WorkingDir as string | undefined) || '/');
      const env = ((cfg.Env as string[] | null) ?? []).map((kv) => [kv.split('=')[0]!, kv.includes('=') ? kv.slice(kv.indexOf('=') + 1) : '']);
      t.deepEqual(
        app.environment ?? [],
        env.filter(([n]) => ENV_NAME.test(n!)).map(([name, value]) => ({ name, value })),
      );
      // The manifest checks of an import accept what the mapping made.
      t.false(importConfig(JSON.stringify(c)) instanceof PodlogError);
    }),
    { numRuns, includeErrorInReport: true },
  );
  t.log(`${numRuns} configs`);
});

test('a mutated config is refused naming the field whenever its types are broken', (t) => {
  const numRuns = 15_000;
  let refused = 0;
  fc.assert(
    fc.property(config, mutation(Object.keys(SCHEMA.types).map((k) => k.split('.').at(-1)!)), (c, change) => {
      const { value, path } = mutate(c, change);
      const result = importConfig(toText(value));
      if (result instanceof PodlogError) {
        refused++;
        const field = path.filter((k) => typeof k === 'string').join('.');
        // Refused by the config check naming the field, or by the manifest checks after mapping.
        const named = result.message.startsWith(`${WHERE}: invalid image config: `)
          ? field === '' || result.message.includes(field.startsWith('config.') ? field : field.split('.')[0]!) || /the config is/.test(result.message)
          : result.message.startsWith('layout: invalid image manifest: ');
        if (!named) throw new Error(`the refusal does not name ${field}: ${result.message}`);
        return true;
      }
      if (breaksSchema(SCHEMA, change, path, value)) throw new Error(`accepted although ${change.kind} at ${path.join('.')} breaks the schema`);
      return true;
    }),
    { numRuns, includeErrorInReport: true },
  );
  t.log(`${numRuns} mutated configs: ${refused} refused, the others mapped`);
  t.pass();
});

test('configs of the wrong shape are refused by field, not thrown on', (t) => {
  for (const [field, c] of [
    ['config.User', { config: { User: 1000 } }],
    ['config.Env', { config: { Env: 'A=B' } }],
    ['config.Env', { config: { Env: [5] } }],
    ['config.Entrypoint', { config: { Entrypoint: '/bin/sh' } }],
    ['config.Cmd', { config: { Cmd: [['sh']] } }],
    ['config.ExposedPorts', { config: { ExposedPorts: ['80/tcp'] } }],
    ['os', { os: {} }],
    ['config', { config: 'x' }],
  ] as const) {
    const result = importConfig(JSON.stringify(c));
    t.true(result instanceof PodlogError && result.message.includes(`invalid image config: ${field} is `), `${field}: ${String(result)}`);
  }
});
