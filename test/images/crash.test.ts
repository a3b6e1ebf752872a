/**
 * The image verbs killed and failed at every step they pass, end to end through bin/podlog: `fetch` of
 * an ACI, of an OCI layout and of a second tag of a stored image, `image render` of an image whose
 * tree is damaged, `image verify` of an OCI image whose layer is damaged, `image rm` and `image gc`. For each point the verb dies by SIGKILL (PODLOG_CRASH_AT) or exits 254 naming the image
 * and the injected failure (PODLOG_FAIL_AT); then the store must tell the truth as the verbs see it
 * (every image the log lists has its whole content, every tree it records is there), and a user's next
 * steps must work: fetch again (the same id), render, run a pod of it, rm, gc, after which nothing of
 * it is left in the store and nothing was written outside the data dir but the render's target.
 *
 * The points are not listed by hand: a reference run of each verb, read through the image catalogue
 * and the store's table of effects (src/images/effects.ts), names them (before each event it records,
 * after each effect and the failure of each effect), and together they must cover every image event
 * type and every effect.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_EVENTS, IMAGE_STREAM_PREFIX, LAYER_STREAM_PREFIX, TREE_STREAM_PREFIX } from '../../src/events/images.js';
import { IMAGE_EFFECTS, type ImageEffect } from '../../src/images/effects.js';
import { catchUpImageIndex, type ImageIndex } from '../../src/images/index-projection.js';
import { readImage, treeHash } from '../../src/native.js';
import { openStore } from '../../src/store/open.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { aciPath, busyboxRootfs } from '../helpers/fixtures.js';
import { limit, podlogBin } from '../stage0/harness.js';
import { makeOciLayout, makeTaggedLayout, tarDir } from './helpers.js';

/** Each case starts a dozen node processes; more than three at once only makes all of them slow. */
const slot = limit(3);

interface Ran {
  pid: number;
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `podlog --dir DATA ...args` as a user runs it, with no fault asked for unless `env` says so. */
const podlog = (data: string, args: string[], env: Record<string, string> = {}): Promise<Ran> =>
  new Promise((resolve) => {
    const { PODLOG_CRASH_AT: _c, PODLOG_FAIL_AT: _f, ...clean } = process.env;
    const child = execFile(podlogBin, ['--dir', data, ...args], { env: { ...clean, ...env } }, (error, stdout, stderr) => {
      const ended = error as (Error & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
      resolve({
        pid: child.pid!,
        status: ended ? (typeof ended.code === 'number' ? ended.code : null) : 0,
        signal: ended?.signal ?? null,
        stdout,
        stderr,
      });
    });
  });

const ok = async (data: string, args: string[]): Promise<string> => {
  const r = await podlog(data, args);
  if (r.status !== 0) throw new Error(`podlog ${args.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
};

const listed = async (data: string): Promise<string[]> =>
  (JSON.parse(await ok(data, ['image', 'list', '--format', 'json'])) as Array<{ id: string }>).map((i) => i.id);

/** The image events in a data dir's log, and the index they fold to. */
const readLog = async (data: string): Promise<{ events: RecordedEvent[]; index: ImageIndex }> => {
  const store = await openStore(data);
  try {
    const events = (await store.readAll()).filter((e) => [IMAGE_STREAM_PREFIX, TREE_STREAM_PREFIX, LAYER_STREAM_PREFIX].some((p) => e.stream.startsWith(p)));
    return { events, index: await catchUpImageIndex(store) };
  } finally {
    await store.close();
  }
};

const entries = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

// The inputs, built once and never written to: the ACI fixture and an OCI layout of the same rootfs.
const inputs = mkdtempSync(join(tmpdir(), 'podlog-image-crash-in-'));
const aci = aciPath('busybox-gzip');
const ociLayout = join(inputs, 'busybox-oci');
makeOciLayout(ociLayout, { layers: [{ tar: tarDir(busyboxRootfs, join(inputs, 'busybox.tar')) }] });
// The same image (one manifest) tagged v2, in a layout of its own: fetched after ociLayout, a second name of it.
const secondTag = join(inputs, 'second-tag', 'busybox-oci');
makeTaggedLayout(secondTag, { v2: { layers: [{ tar: join(inputs, 'busybox.tar') }] } });
const fingerprint = (): string => {
  const h = createHash('sha256');
  for (const f of [aci, ...readdirSync(join(ociLayout, 'blobs', 'sha256')).map((n) => join(ociLayout, 'blobs', 'sha256', n)), join(ociLayout, 'index.json')]) {
    h.update(f).update(readFileSync(f));
  }
  return h.digest('hex');
};
const inputsBefore = fingerprint();

/** A data dir with one image fetched (its tree rendered on fetch), copied for each case that needs one. */
const fetchedTemplate = async (source: string): Promise<{ data: string; id: string }> => {
  const data = join(mkdtempSync(join(tmpdir(), 'podlog-image-crash-template-')), 'data');
  return { data, id: (await ok(data, ['fetch', source])).trim() };
};
const [aciTemplate, ociTemplate] = await Promise.all([fetchedTemplate(aci), fetchedTemplate(ociLayout)]);

/** A fresh sandbox: `root/data` is the data dir, and nothing but it and render targets may appear in root. */
interface Sandbox {
  root: string;
  data: string;
}

const sandbox = (): Sandbox => {
  const root = mkdtempSync(join(tmpdir(), 'podlog-image-crash-'));
  return { root, data: join(root, 'data') };
};

const copyOf = (template: string, s: Sandbox): void => {
  const cp = spawnSync('cp', ['-a', template, s.data]);
  if (cp.status !== 0) throw new Error(`cp: ${cp.stderr.toString()}`);
};

interface Verb {
  name: string;
  /** What a user fetches to get the image, and its id. */
  source: string;
  id: string;
  /** Brings the sandbox to where the verb starts. */
  setup: (s: Sandbox) => void;
  args: (s: Sandbox) => string[];
}

/** A copy of `template` whose first tree (or rendered layer) has its /etc/hostname changed. */
const damagedCopy = (template: string, dir: 'tree' | 'layers') => (s: Sandbox): void => {
  copyOf(template, s);
  const entries = join(s.data, 'cas', dir);
  writeFileSync(join(entries, readdirSync(entries)[0]!, 'rootfs', 'etc', 'hostname'), 'damaged\n');
};

const VERBS: Verb[] = [
  { name: 'fetch ACI', source: aci, id: aciTemplate.id, setup: () => {}, args: () => ['fetch', aci] },
  { name: 'fetch OCI layout', source: ociLayout, id: ociTemplate.id, setup: () => {}, args: () => ['fetch', ociLayout] },
  { name: 'fetch OCI layout under a second tag', source: secondTag, id: ociTemplate.id, setup: (s) => copyOf(ociTemplate.data, s), args: () => ['fetch', secondTag] },
  {
    name: 'image render (damaged tree)',
    source: aci,
    id: aciTemplate.id,
    setup: damagedCopy(aciTemplate.data, 'tree'),
    args: (s) => ['image', 'render', aciTemplate.id, join(s.root, 'target')],
  },
  {
    name: 'image verify (damaged layer)',
    source: ociLayout,
    id: ociTemplate.id,
    setup: damagedCopy(ociTemplate.data, 'layers'),
    args: () => ['image', 'verify', ociTemplate.id],
  },
  { name: 'image rm', source: aci, id: aciTemplate.id, setup: (s) => copyOf(aciTemplate.data, s), args: () => ['image', 'rm', aciTemplate.id] },
  // Of an OCI image: its tree, the image and its layer go, which covers every removal.
  { name: 'image gc', source: ociLayout, id: ociTemplate.id, setup: (s) => copyOf(ociTemplate.data, s), args: () => ['image', 'gc', '--grace-period=0s'] },
];

/** The types of the image events `pid` recorded, in order. */
const recordedBy = (events: RecordedEvent[], pid: number): string[] => events.filter((e) => e.meta.pid === pid).map((e) => e.type);

interface Point {
  /** The variable and its value: PODLOG_CRASH_AT=before-outcome:T | after-effect:E, or PODLOG_FAIL_AT=effect:E. */
  env: 'PODLOG_CRASH_AT' | 'PODLOG_FAIL_AT';
  at: string;
}

/** The effects recorded before they are done (effects.ts): a removal cut short leaves only unclaimed files. */
const RECORDED_FIRST: readonly ImageEffect[] = ['removeImage', 'removeTree', 'removeLayer'];

/** How many events a verb that recorded `reference` has recorded when it dies at `at`. */
const recordedAt = (reference: string[], at: string): number => {
  const [where, name] = at.split(':') as [string, string];
  if (where === 'before-outcome') return reference.indexOf(name);
  const effect = name as ImageEffect;
  return reference.indexOf(IMAGE_EFFECTS[effect]) + (RECORDED_FIRST.includes(effect) ? 1 : 0);
};

const isSubsequence = (part: string[], whole: string[]): boolean => {
  let i = 0;
  for (const x of whole) if (x === part[i]) i++;
  return i === part.length;
};

const effectsRecordedBy = (types: string[]): ImageEffect[] =>
  (Object.keys(IMAGE_EFFECTS) as ImageEffect[]).filter((e) => types.includes(IMAGE_EFFECTS[e]));

/** The fault points a run that recorded `types` passes: before each event, after and in each effect. */
const pointsOf = (types: string[]): Point[] => [
  ...[...new Set(types)].map((t): Point => ({ env: 'PODLOG_CRASH_AT', at: `before-outcome:${t}` })),
  ...effectsRecordedBy(types).flatMap((e): Point[] => [
    { env: 'PODLOG_CRASH_AT', at: `after-effect:${e}` },
    { env: 'PODLOG_FAIL_AT', at: `effect:${e}` },
  ]),
];

// The references: each verb run once, uninterrupted.
const references = new Map<Verb, string[]>(
  await Promise.all(
    VERBS.map((verb) =>
      slot(async (): Promise<[Verb, string[]]> => {
        const s = sandbox();
        try {
          verb.setup(s);
          const r = await podlog(s.data, verb.args(s));
          if (r.status !== 0) throw new Error(`reference ${verb.name}: exit ${r.status ?? r.signal}: ${r.stderr}`);
          return [verb, recordedBy((await readLog(s.data)).events, r.pid)];
        } finally {
          rmSync(s.root, { recursive: true, force: true });
        }
      }),
    ),
  ),
);
const CASES = VERBS.flatMap((verb) => pointsOf(references.get(verb)!).map((point) => ({ verb, point })));

test.after.always('the inputs are as they were, and the templates go', (t) => {
  t.is(fingerprint(), inputsBefore);
  for (const dir of [inputs, join(aciTemplate.data, '..'), join(ociTemplate.data, '..')]) rmSync(dir, { recursive: true, force: true });
});

test('the points cover every image event type and every effect of the store', (t) => {
  t.deepEqual(Object.fromEntries([...references].map(([v, types]) => [v.name, types])), {
    'fetch ACI': ['ImageImported', 'TreeRendered', 'ImageVerified'],
    'fetch OCI layout': ['LayerRendered', 'ImageImported', 'TreeRendered', 'ImageVerified'],
    'fetch OCI layout under a second tag': ['ImageTagged'],
    'image render (damaged tree)': ['TreeDamaged', 'TreeRendered'],
    'image verify (damaged layer)': ['LayerDamaged', 'LayerRendered', 'TreeRendered'],
    'image rm': ['ImageRemoved'],
    'image gc': ['TreeRemoved', 'ImageRemoved', 'LayerRemoved'],
  });
  const at = new Set(CASES.map((c) => `${c.point.env}=${c.point.at}`));
  for (const type of Object.keys(IMAGE_EVENTS)) t.true(at.has(`PODLOG_CRASH_AT=before-outcome:${type}`), type);
  for (const effect of RECORDED_FIRST) t.true(Object.hasOwn(IMAGE_EFFECTS, effect));
  for (const effect of Object.keys(IMAGE_EFFECTS)) {
    t.true(at.has(`PODLOG_CRASH_AT=after-effect:${effect}`), effect);
    t.true(at.has(`PODLOG_FAIL_AT=effect:${effect}`), effect);
  }
  t.log(`${CASES.length} (verb, point, fault) cases: ${CASES.filter((c) => c.point.env === 'PODLOG_CRASH_AT').length} crashes, ${CASES.filter((c) => c.point.env === 'PODLOG_FAIL_AT').length} failures`);
});

/**
 * What the log claims is there: every image it lists has its whole content (an ACI that reads back to
 * its id, an OCI image whose manifest and layers match their digests) and its manifest; every tree it
 * records is in the tree store, and with `hashes`, matches the hash recorded for it.
 */
const assertClaimsHold = async (t: ExecutionContext, s: Sandbox, when: string, { hashes = false } = {}): Promise<ImageIndex> => {
  const { index } = await readLog(s.data);
  const cas = join(s.data, 'cas');
  for (const image of index.images.values()) {
    t.true(existsSync(join(cas, 'imageManifest', image.id)), `${when}: ${image.id} has its manifest`);
    if (image.format === 'aci') {
      t.is((await readImage(join(cas, 'blob', image.id))).key, image.id, `${when}: the stored ACI reads back to its id`);
      continue;
    }
    const manifest = readFileSync(join(cas, 'oci', image.id, 'manifest.json'));
    t.is(`sha512-${createHash('sha512').update(manifest).digest('hex').slice(0, 64)}`, image.id, `${when}: the OCI manifest is the image's`);
    const layers = (JSON.parse(manifest.toString()) as { layers: Array<{ digest: string }> }).layers;
    t.deepEqual(
      layers.map((l) => `sha256:${createHash('sha256').update(readFileSync(join(cas, 'layer-blob', l.digest.replace(':', '-')))).digest('hex')}`),
      layers.map((l) => l.digest),
      `${when}: every layer blob is stored whole`,
    );
  }
  for (const layer of index.layers.values()) {
    const dir = join(cas, 'layers', layer.key);
    t.true(existsSync(join(dir, 'rendered')) && existsSync(join(dir, 'rootfs')), `${when}: layer ${layer.key} is there`);
    if (hashes) t.is(await treeHash(dir), layer.hash, `${when}: layer ${layer.key} is whole`);
  }
  for (const tree of index.trees.values()) {
    const dir = join(cas, 'tree', tree.treeStoreId);
    t.true(existsSync(join(dir, 'rendered')) && existsSync(join(dir, tree.layers ? 'layers' : 'rootfs')), `${when}: tree ${tree.treeStoreId} is there`);
    if (hashes && !tree.layers) t.is(await treeHash(dir), tree.hash, `${when}: tree ${tree.treeStoreId} is whole`);
  }
  return index;
};

const runCase = async (t: ExecutionContext, verb: Verb, point: Point): Promise<void> => {
  const s = sandbox();
  try {
    verb.setup(s);
    const eventsBefore = existsSync(s.data) ? (await readLog(s.data)).events.length : 0;
    const faulted = await podlog(s.data, verb.args(s), { [point.env]: point.at });
    if (point.env === 'PODLOG_CRASH_AT') {
      t.is(faulted.signal, 'SIGKILL', `the verb should have died; it exited ${faulted.status}: ${faulted.stderr}`);
    } else {
      t.is(faulted.status, 254, faulted.stderr);
      t.true(faulted.stderr.includes(`effect ${point.at.slice('effect:'.length)} failed: injected by PODLOG_FAIL_AT`), faulted.stderr);
      t.true(faulted.stderr.includes(verb.id) || faulted.stderr.includes(verb.source), `the message names the image: ${faulted.stderr}`);
    }

    // The log names only what happened: a crashed verb recorded its reference up to the point, a failed
    // one a part of it without the effect that failed (but the removal it recorded first).
    const reference = references.get(verb)!;
    const { events } = await readLog(s.data);
    const recorded = recordedBy(events, faulted.pid);
    t.is(events.length - eventsBefore, recorded.length, 'only the faulted verb recorded anything');
    if (point.env === 'PODLOG_CRASH_AT') {
      t.deepEqual(recorded, reference.slice(0, recordedAt(reference, point.at)));
    } else {
      const effect = point.at.slice('effect:'.length) as ImageEffect;
      t.true(isSubsequence(recorded, reference), recorded.join(', '));
      t.is(recorded.includes(IMAGE_EFFECTS[effect]), RECORDED_FIRST.includes(effect), recorded.join(', '));
    }
    t.false(existsSync(join(s.root, 'target')), 'a render cut short leaves no target');
    const index = await assertClaimsHold(t, s, 'after the fault');
    t.deepEqual((await listed(s.data)).sort(), [...index.images.keys()].sort(), 'image list shows what the log claims');

    // A user's next steps: fetch again (the same id), render, run a pod of it, then rm and gc.
    t.is((await ok(s.data, ['fetch', verb.source])).trim(), verb.id, 'fetch again gives the same id');
    t.true((await assertClaimsHold(t, s, 'after fetching again')).images.has(verb.id));
    await ok(s.data, ['image', 'render', verb.id, join(s.root, 'rendered')]);
    t.true(existsSync(join(s.root, 'rendered', 'rootfs', 'bin', 'busybox')) && existsSync(join(s.root, 'rendered', 'manifest')), 'render wrote the tree');
    await assertClaimsHold(t, s, 'after render', { hashes: true });
    const run = await podlog(s.data, ['run', verb.id, '--exec', '/bin/sh', '--', '-c', 'exit 3']);
    t.is(run.status, 3, `a pod of the image runs: ${run.stderr}`);
    await ok(s.data, ['gc', '--grace-period=0s']);
    await ok(s.data, ['image', 'rm', verb.id]);
    const gc = await ok(s.data, ['image', 'gc', '--grace-period=0s']);

    // Nothing of it is left, and nothing was written beside the data dir but the render's target.
    t.deepEqual((await readLog(s.data)).index.images.size, 0, gc);
    const cas = join(s.data, 'cas');
    for (const dir of ['blob', 'imageManifest', 'oci', 'layer-blob', 'layers', 'tree', 'tmp', 'unsynced', 'files']) t.deepEqual(entries(join(cas, dir)), [], `cas/${dir} is empty after image gc`);
    t.deepEqual(readdirSync(s.root).sort(), ['data', 'rendered']);
  } finally {
    rmSync(s.root, { recursive: true, force: true });
  }
};

for (const { verb, point } of CASES) {
  test(`${verb.name}: ${point.env}=${point.at}`, (t) => slot(() => runCase(t, verb, point)));
}
