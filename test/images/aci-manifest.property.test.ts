/**
 * The ACI image manifest parser under generated input: valid manifests come back field for field;
 * mutated ones (a field removed, replaced by a value of any type, size or depth, or added; bytes cut
 * or changed) are refused with an EBADMANIFEST PodlogError that names the field whenever the schema
 * says they must be, and nothing but a PodlogError is ever thrown.
 */
import test from 'ava';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { PodlogError } from '../../src/errors.js';
import { parseImageManifest } from '../../src/images/aci-manifest.js';
import { breaksSchema, mutate, mutation, toText, type Json, type Path, type Schema } from './json-mutations.js';

// Drawn from small pools mostly: fast-check's general string arbitraries cost more than a parse.
const segment = fc.constantFrom('a', 'b', '0', 'x9', 'example', 'com');
const joined = (separators: string[]): fc.Arbitrary<string> =>
  fc.tuple(segment, fc.array(fc.tuple(fc.constantFrom(...separators), segment), { maxLength: 2 })).map(([head, rest]) => head + rest.flat().join(''));
const acIdentifier = joined(['-', '.', '_', '~', '/']);
const acName = joined(['-']);
const envName = fc.tuple(fc.constantFrom('A', '_', 'path', 'X'), fc.constantFrom('', '1', '.b', '-c', '_D')).map(([a, b]) => a + b);
const text = fc.oneof(
  { arbitrary: fc.constantFrom('', 'a', 'x y', '/bin/sh', '\u00e9', '\u65e5\u672c', '\u0000', '\ud800', '\u{1f600}', '"\\'), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 8 }), weight: 1 },
);
const nonEmpty = text.filter((s) => s !== '');
const pairs = (names: fc.Arbitrary<string>): fc.Arbitrary<Array<{ name: string; value: string }>> =>
  fc.uniqueArray(fc.record({ name: names, value: text }), { selector: (p) => p.name, maxLength: 3 });

const app = fc.record(
  {
    exec: fc.array(text, { maxLength: 4 }),
    user: nonEmpty,
    group: nonEmpty,
    supplementaryGIDs: fc.array(fc.nat({ max: 2 ** 32 - 1 }), { maxLength: 3 }),
    workingDirectory: text.map((s) => `/${s}`),
    environment: fc.array(fc.record({ name: envName, value: text }), { maxLength: 3 }),
    eventHandlers: fc.subarray(['pre-start', 'post-stop']).chain((names) =>
      fc.tuple(...names.map((name) => fc.record({ name: fc.constant(name), exec: fc.array(text, { maxLength: 3 }) }))),
    ),
    mountPoints: fc.array(fc.record({ name: acName, path: text, readOnly: fc.boolean() }, { requiredKeys: ['name', 'path'] }), { maxLength: 3 }),
    ports: fc.array(
      fc.record(
        { name: acName, protocol: fc.constantFrom('tcp', 'udp'), port: fc.nat({ max: 65535 }), count: fc.nat({ max: 100 }), socketActivated: fc.boolean() },
        { requiredKeys: ['name', 'protocol', 'port'] },
      ),
      { maxLength: 3 },
    ),
    isolators: fc.array(fc.record({ name: acIdentifier, value: fc.constantFrom<unknown>(null, 1, 'x', [], { max: 2 }) }), { maxLength: 2 }),
  },
  { requiredKeys: ['user', 'group'] },
);

const manifest: fc.Arbitrary<Json> = fc
  .record(
    {
      acKind: fc.constant('ImageManifest'),
      acVersion: fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99)).map((v) => v.join('.')),
      name: acIdentifier,
      labels: pairs(acIdentifier.filter((n) => n !== 'name')),
      app,
      dependencies: fc.array(
        fc.record(
          { imageName: acIdentifier, imageID: fc.constantFrom('sha512-0', `sha512-${'ab'.repeat(64)}`), labels: pairs(acIdentifier.filter((n) => n !== 'name')), size: fc.nat() },
          { requiredKeys: ['imageName'] },
        ),
        { maxLength: 3 },
      ),
      pathWhitelist: fc.array(text, { maxLength: 3 }),
      annotations: pairs(acIdentifier),
    },
    { requiredKeys: ['acKind', 'acVersion', 'name'] },
  )
  // Plain objects, as JSON.parse gives them.
  .map((m) => JSON.parse(JSON.stringify(m)) as Json);

const LABELS = { '*': 'object', '*.name': 'string', '*.value': 'string' } as const;
const under = (prefix: string, types: Record<string, Schema['types'][string]>): Schema['types'] =>
  Object.fromEntries(Object.entries(types).map(([k, v]) => [`${prefix}.${k}`, v]));

/** appc's ImageManifest, as far as types go: what a mutation must not break unnoticed. */
const SCHEMA: Schema = {
  types: {
    '': 'object',
    acKind: 'string',
    acVersion: 'string',
    name: 'string',
    labels: 'array',
    ...under('labels', LABELS),
    app: 'object',
    ...under('app', {
      exec: 'array',
      'exec.*': 'string',
      user: 'string',
      group: 'string',
      supplementaryGIDs: 'array',
      'supplementaryGIDs.*': 'number',
      workingDirectory: 'string',
      environment: 'array',
      ...under('environment', LABELS),
      eventHandlers: 'array',
      'eventHandlers.*': 'object',
      'eventHandlers.*.name': 'string',
      'eventHandlers.*.exec': 'array',
      'eventHandlers.*.exec.*': 'string',
      mountPoints: 'array',
      'mountPoints.*': 'object',
      'mountPoints.*.name': 'string',
      'mountPoints.*.path': 'string',
      'mountPoints.*.readOnly': 'boolean',
      ports: 'array',
      'ports.*': 'object',
      'ports.*.name': 'string',
      'ports.*.protocol': 'string',
      'ports.*.port': 'number',
      'ports.*.count': 'number',
      'ports.*.socketActivated': 'boolean',
      isolators: 'array',
      'isolators.*': 'object',
      'isolators.*.name': 'string',
    }),
    dependencies: 'array',
    'dependencies.*': 'object',
    'dependencies.*.imageName': 'string',
    'dependencies.*.imageID': 'string',
    'dependencies.*.labels': 'array',
    ...under('dependencies.*.labels', LABELS),
    'dependencies.*.size': 'number',
    pathWhitelist: 'array',
    'pathWhitelist.*': 'string',
    annotations: 'array',
    ...under('annotations', LABELS),
  },
  required: [
    'acKind',
    'acVersion',
    'name',
    'app.user',
    ...['labels', 'app.environment', 'dependencies.*.labels', 'annotations'].flatMap((f) => [`${f}.*.name`, `${f}.*.value`]),
    'app.eventHandlers.*.name',
    'app.eventHandlers.*.exec',
    'app.mountPoints.*.name',
    'app.mountPoints.*.path',
    'app.ports.*.name',
    'app.ports.*.protocol',
    'app.ports.*.port',
    'app.isolators.*.name',
    'dependencies.*.imageName',
  ],
};

/** How a refusal names the field at `path`: the app's fields by their dotted name, lists by their noun. */
const fieldName = (path: Path): RegExp => {
  const [top, second] = path;
  // A new root is refused as a whole or by its first missing field.
  if (top === undefined) return /not a JSON object|acKind|acVersion|\bname\b/;
  if (top === 'app') return typeof second === 'string' ? new RegExp(`app\\.${second}\\b`) : /\bapp\b/;
  const nouns: Record<string, RegExp> = { labels: /\blabel/, dependencies: /\bdependenc/, annotations: /\bannotation/ };
  return nouns[top] ?? new RegExp(`\\b${String(top)}\\b`);
};

const WHERE = 'image.aci';

/** The outcome of parsing `text`: the manifest, or the PodlogError (anything else is thrown on). */
const parse = (text: string): { ok: Json } | { refused: PodlogError } => {
  try {
    return { ok: parseImageManifest(text, WHERE) as unknown as Json };
  } catch (e) {
    if (e instanceof PodlogError && e.code === 'EBADMANIFEST' && e.exitCode === 254 && e.message.startsWith(`${WHERE}: invalid image manifest: `)) {
      return { refused: e };
    }
    throw e;
  }
};

test('valid image manifests parse to what was written', (t) => {
  const numRuns = 5_000;
  fc.assert(
    fc.property(manifest, (m) => {
      const r = parse(JSON.stringify(m));
      return 'ok' in r && isDeepStrictEqual(r.ok, m);
    }),
    { numRuns, includeErrorInReport: true },
  );
  t.log(`${numRuns} manifests`);
  t.pass();
});

test('a mutated image manifest is refused naming the field whenever its types are broken', (t) => {
  const numRuns = 25_000;
  const keys = Object.keys(SCHEMA.types).map((k) => k.split('.').at(-1)!);
  let refused = 0;
  fc.assert(
    fc.property(manifest, mutation(keys), (m, change) => {
      const { value, path } = mutate(m, change);
      const r = parse(toText(value));
      if ('refused' in r) {
        refused++;
        if (!fieldName(path).test(r.refused.message)) throw new Error(`the refusal does not name ${path.join('.')}: ${r.refused.message}`);
        return true;
      }
      if (breaksSchema(SCHEMA, change, path, value)) throw new Error(`accepted although ${change.kind} at ${path.join('.')} breaks the schema`);
      return true;
    }),
    { numRuns, includeErrorInReport: true },
  );
  t.log(`${numRuns} mutated manifests: ${refused} refused, the others still valid`);
  t.pass();
});

test('an image manifest with bytes cut or changed is parsed or refused, never thrown on', (t) => {
  const numRuns = 10_000;
  const damage = fc.record({ cut: fc.nat(), set: fc.array(fc.tuple(fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), { maxLength: 4 }) });
  fc.assert(
    fc.property(manifest, damage, (m, { cut, set }) => {
      let text = JSON.stringify(m);
      for (const [i, c] of set) {
        const at = i % text.length;
        text = text.slice(0, at) + c + text.slice(at + 1);
      }
      parse(text.slice(0, cut % (text.length + 1)));
    }),
    { numRuns, includeErrorInReport: true },
  );
  t.log(`${numRuns} damaged manifests`);
  t.pass();
});

test('values nested too deep to print are still refused by name', (t) => {
  const deep = `${'['.repeat(100_000)}1${']'.repeat(100_000)}`;
  const base = '{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x"';
  for (const [field, text] of [
    ['acKind', `{"acKind":${deep}}`],
    ['label', `${base},"labels":[${deep}]}`],
    ['app.workingDirectory', `${base},"app":{"user":"0","group":"0","workingDirectory":${deep}}}`],
    ['dependencies', `${base},"dependencies":[${deep}]}`],
  ] as const) {
    const r = parse(text);
    t.true('refused' in r && r.refused.message.includes(field), field);
  }
});

test('fields read later with a type are checked at import, and a dependency\'s label is named as one', (t) => {
  const base = { acKind: 'ImageManifest', acVersion: '0.8.11', name: 'example.com/x' };
  for (const [field, m] of [
    ['app.supplementaryGIDs', { ...base, app: { user: '0', group: '0', supplementaryGIDs: ['wheel'] } }],
    ['app.supplementaryGIDs', { ...base, app: { user: '0', group: '0', supplementaryGIDs: [2 ** 32] } }],
    ['app.ports', { ...base, app: { user: '0', group: '0', ports: [{ name: 'http', protocol: 'tcp', port: '80' }] } }],
    ['app.mountPoints', { ...base, app: { user: '0', group: '0', mountPoints: [{ name: 'data', path: '/d', readOnly: 'yes' }] } }],
    ['annotation', { ...base, annotations: [{ name: 'created', value: 5 }] }],
    ['dependency', { ...base, dependencies: [{ imageName: 'example.com/dep', size: -1 }] }],
    ['dependency example.com/dep label name', { ...base, dependencies: [{ imageName: 'example.com/dep', labels: [{ name: '', value: '' }] }] }],
  ] as const) {
    const r = parse(JSON.stringify(m));
    t.true('refused' in r && r.refused.message.includes(field), `${field}: ${JSON.stringify(r)}`);
  }
});
