/**
 * Mutations of JSON documents for the parsers' property tests: a key removed, a value replaced or a
 * key added, anywhere in the document, with values of every JSON type and size, deep nesting
 * included; and a declared schema (the type each field must have) that tells which mutations a
 * parser must refuse.
 */
import fc from 'fast-check';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Path = Array<string | number>;

/** Stands for an array nested `n` deep: too deep to build as a value and hand to JSON.stringify. */
const DEEP = '\u0000deep:';

/** The document's text, with deep nesting spliced in where `deep` values stand. */
export const toText = (v: Json): string =>
  JSON.stringify(v).replace(/"\\u0000deep:(\d+)"/g, (_, n: string) => `${'['.repeat(Number(n))}1${']'.repeat(Number(n))}`);

/** Values of every JSON type, including ones a careless parser chokes on: huge, unicode, deep. */
export const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, weight: 24 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 12 }), weight: 8 },
  { arbitrary: fc.constantFrom<Json>('', '/', 'ImageManifest', '0.8.11', 'a', 'A B', '1000:1000', 'sha512-', null, true, [], {}), weight: 8 },
  { arbitrary: fc.constantFrom<Json>(-1, 0, 1.5, 2 ** 32, Number.MAX_SAFE_INTEGER + 2, 1e308), weight: 4 },
  // Big ones cost more than the rest of a case: rarer.
  { arbitrary: fc.integer({ min: 1, max: 1 << 16 }).map((n) => 'x'.repeat(n)), weight: 1 },
  // Deeper than JSON.stringify can print (about 10,000 on Node 20's default stack).
  { arbitrary: fc.integer({ min: 1_000, max: 30_000 }).map((n) => `${DEEP}${n}`), weight: 1 },
);

export type Mutation =
  | { kind: 'remove'; at: number }
  | { kind: 'replace'; at: number; value: Json }
  | { kind: 'add'; at: number; key: string; value: Json };

/** `keys`: names the documents use, so that added keys often land on real fields. */
export const mutation = (keys: readonly string[]): fc.Arbitrary<Mutation> => {
  const at = fc.nat();
  const key = fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 }));
  return fc.oneof(
    fc.record({ kind: fc.constant('remove' as const), at }),
    fc.record({ kind: fc.constant('replace' as const), at, value: hostileValue }),
    fc.record({ kind: fc.constant('add' as const), at, key, value: hostileValue }),
  );
};

/** Every path in `v`, the root's (empty) first. */
const paths = (v: Json, here: Path = []): Path[] => {
  const children: Array<[string | number, Json]> = Array.isArray(v)
    ? v.map((c, i): [number, Json] => [i, c])
    : v !== null && typeof v === 'object'
      ? Object.entries(v)
      : [];
  return [here, ...children.flatMap(([k, c]) => paths(c, [...here, k]))];
};

const at = (v: Json, path: Path): Json => path.reduce<Json>((node, k) => (node as Record<string | number, Json>)[k]!, v);

const isObject = (v: Json): v is { [key: string]: Json } => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Applies `m` to a copy of `doc`; returns it and the path of the node the mutation changed. */
export const mutate = (doc: Json, m: Mutation): { value: Json; path: Path } => {
  const value = structuredClone(doc);
  const all = paths(value);
  if (m.kind === 'add') {
    const objects = all.filter((p) => isObject(at(value, p)));
    const path = objects[m.at % objects.length]!;
    (at(value, path) as Record<string, Json>)[m.key] = m.value;
    return { value, path: [...path, m.key] };
  }
  if (m.kind === 'replace') {
    const path = all[m.at % all.length]!;
    if (path.length === 0) return { value: m.value, path };
    (at(value, path.slice(0, -1)) as Record<string | number, Json>)[path.at(-1)!] = m.value;
    return { value, path };
  }
  const below = all.slice(1);
  if (below.length === 0) return { value, path: [] };
  const path = below[m.at % below.length]!;
  const parent = at(value, path.slice(0, -1));
  if (Array.isArray(parent)) parent.splice(path.at(-1) as number, 1);
  else delete (parent as Record<string, Json>)[path.at(-1) as string];
  return { value, path };
};

export type JsonType = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';

export const typeOf = (v: Json): JsonType =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'string' && v.startsWith(DEEP) ? 'array' : (typeof v as JsonType);

/**
 * A document's declared types: `'a.*.b'` is field b of every element of list a. A field listed in
 * `required` must be present where its parent is.
 */
export interface Schema {
  types: Record<string, JsonType | JsonType[]>;
  required: string[];
}

/** `path` as the schema spells it; `undefined` for a key the schema cannot name (an empty one). */
const pattern = (path: Path): string | undefined =>
  path.includes('') ? undefined : path.map((k) => (typeof k === 'number' ? '*' : k)).join('.');

/** Whether the mutation broke a declared type or removed a required field: a parser must refuse it. */
export const breaksSchema = (schema: Schema, m: Mutation, path: Path, mutated: Json): boolean => {
  const p = pattern(path);
  if (p === undefined) return false;
  if (m.kind === 'remove') return schema.required.includes(p);
  if (!Object.hasOwn(schema.types, p)) return false;
  const declared = schema.types[p]!;
  const type = typeOf(m.kind === 'replace' ? m.value : at(mutated, path));
  return !([declared].flat() as JsonType[]).includes(type);
};
