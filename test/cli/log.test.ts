/** The event log as a user handles it: no secrets in it, owner-only files, and `log compact`. */
import test from 'ava';
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, podlogBin } from '../stage0/podlog.js';

interface Logged {
  stream: string;
  type: string;
  version: number;
  position: number;
  data: Record<string, unknown>;
  meta: { time: string; command: string[] };
}

const IMAGE = aciPath('busybox-gzip');

/** podlog on a data dir the test names (dataDir() makes its own). */
const podlogIn = (dir: string, args: string[]) => spawnSync(podlogBin, ['--dir', dir, ...args], { encoding: 'utf8', timeout: 60_000 });

/** A path in a fresh temp dir, which `fn` may create; the temp dir is removed after. */
const inFreshParent = (fn: (dir: string, parent: string) => void): void => {
  const parent = mkdtempSync(join(tmpdir(), 'podlog-log-'));
  try {
    fn(join(parent, 'data'), parent);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
};

test('secrets given to --set-env and --environment are in the pod manifest but nowhere in the log', (t) => {
  const d = dataDir();
  try {
    const uuidFile = join(d.dir, 'uuid');
    const r = d.podlog([
      'run', '--uuid-file-save', uuidFile, '--set-env=X=secret-value-123', '--set-env', 'Y=secret-value-456',
      IMAGE, '--environment=Z=secret-value-789', '--exec', '/bin/true',
    ]);
    t.is(r.status, 0, r.stderr);
    const uuid = readFileSync(uuidFile, 'utf8').trim();
    const manifest = d.podlog(['cat-manifest', uuid]);
    t.is(manifest.status, 0, manifest.stderr);
    for (const secret of ['secret-value-123', 'secret-value-456', 'secret-value-789']) t.true(manifest.stdout.includes(secret), secret);

    for (const args of [['events', '--json'], ['events'], ['replay', uuid, '--json']]) {
      const shown = d.podlog(args);
      t.is(shown.status, 0, shown.stderr);
      t.notRegex(shown.stdout, /secret-value/, args.join(' '));
    }
    t.false(readFileSync(join(d.dir, 'events.db')).includes('secret-value'), 'not in the file either');
    const [first] = d.events(uuid) as unknown as Logged[];
    t.deepEqual(first!.meta.command.filter((a) => a.includes('=') && !a.startsWith('--uuid')), [
      '--set-env=X=<redacted>', '--set-env=Y=<redacted>', '--environment=Z=<redacted>',
    ]);
  } finally {
    d.cleanup();
  }
});

test('a data dir made by run is 0700 and its log 0600', (t) => {
  inFreshParent((dir) => {
    const r = podlogIn(dir, ['run', IMAGE, '--exec', '/bin/true']);
    t.is(r.status, 0, r.stderr);
    t.is(statSync(dir).mode & 0o777, 0o700);
    const logs = readdirSync(dir).filter((f) => f.startsWith('events.db'));
    t.true(logs.includes('events.db'));
    for (const f of logs) t.is(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  });
});

test('log compact: a deleted pod leaves one tombstone; the live pod, the images, list and every position are untouched', (t) => {
  const d = dataDir();
  try {
    const all = (): Logged[] => d.events() as unknown as Logged[];
    const uuidOf = (args: string[]): string => {
      const file = join(d.dir, `uuid-${args[0]}`);
      const r = d.podlog([args[0]!, '--uuid-file-save', file, ...args.slice(1)]);
      t.true(r.status === 0 || r.status === 3, r.stderr);
      return readFileSync(file, 'utf8').trim();
    };
    // The kept pod's events come before and after the deleted pod's.
    const kept = uuidOf(['prepare', IMAGE, '--exec', '/bin/true']);
    const gone = uuidOf(['run', IMAGE, '--exec', '/bin/sh', '--', '-c', 'exit 3']);
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    t.is(d.podlog(['run-prepared', kept]).status, 0);
    const goneEvents = d.events(gone) as unknown as Logged[];
    const deleted = goneEvents.at(-1)!;
    t.is(deleted.type, 'PodDeleted');
    const before = { others: all().filter((e) => e.stream !== `pod-${gone}`), list: d.podlog(['list', '--format', 'json']).stdout };
    t.true(before.others.some((e) => e.type === 'ImageImported'));

    const notYet = d.podlog(['log', 'compact', '--deleted-before', '1h']);
    t.is(notYet.status, 0, notYet.stderr);
    t.is(notYet.stdout, 'compact: 0 pod(s) compacted, 0 events removed\n');

    const compact = d.podlog(['log', 'compact']);
    t.is(compact.status, 0, compact.stderr);
    t.log(compact.stdout.trim());
    const n = goneEvents.length;
    t.regex(compact.stdout, new RegExp(
      `^compacted pod ${gone} \\(deleted ${deleted.meta.time}\\): ${n - 1} events removed\\n` +
        `compact: 1 pod\\(s\\) compacted, ${n - 1} events removed; log (\\d+) → (\\d+) bytes\\n$`,
    ));

    t.deepEqual(d.events(gone), [{
      ...deleted, type: 'PodCompacted', data: { deletedAt: deleted.meta.time, compactedEvents: n },
    }], 'the tombstone has the PodDeleted\'s stream, version, position and metadata');
    t.deepEqual(all().filter((e) => e.stream !== `pod-${gone}`), before.others, 'every other event as it was, at its position');
    t.is(d.podlog(['list', '--format', 'json']).stdout, before.list);
    // The pod list rebuilt from the compacted log (a new podlog's projection schema would do that) is the same.
    const db = new Database(join(d.dir, 'events.db'));
    db.exec('DELETE FROM projection_rows; DELETE FROM projections');
    db.close();
    const rebuilt = d.podlog(['list', '--format', 'json']);
    t.is(rebuilt.stderr, '', 'no pod is broken');
    t.is(rebuilt.stdout, before.list);
    const replay = d.podlog(['replay', gone]);
    t.is(replay.status, 0, replay.stderr);
    t.regex(replay.stdout, new RegExp(`^pod ${gone} at version ${n} of ${n}: deleted\\n`));
    const before1 = d.podlog(['replay', gone, '--at', '1']);
    t.is(before1.status, 254, 'the versions before the tombstone are gone, not an embryo');
    t.regex(before1.stderr, /was compacted by podlog log compact: only version \d+ \(its tombstone\) is left/);
    const tombstone = d.podlog(['events', '--pod', gone.slice(0, 8)]);
    t.regex(tombstone.stdout, /PodCompacted/);

    const again = d.podlog(['log', 'compact']);
    t.is(again.stdout, 'compact: 0 pod(s) compacted, 0 events removed\n');
    // The log goes on: new events get the positions after the last one ever written.
    const head = Math.max(...all().map((e) => e.position));
    t.is(d.podlog(['rm', kept]).status, 0);
    const fresh = all().filter((e) => e.position > head);
    t.true(fresh.length > 0);
    t.deepEqual(fresh.map((e) => e.position), fresh.map((_, i) => head + 1 + i));
  } finally {
    d.cleanup();
  }
});

test('log needs its subcommand; compact on a data dir without a log creates nothing', (t) => {
  inFreshParent((dir, parent) => {
    const none = podlogIn(dir, ['log']);
    t.is(none.status, 254);
    t.regex(none.stderr, /log: give a subcommand/);
    const bad = podlogIn(dir, ['log', 'compact', '--deleted-before', 'soon']);
    t.is(bad.status, 254);
    t.regex(bad.stderr, /--deleted-before: invalid duration "soon"/);
    const empty = podlogIn(dir, ['log', 'compact']);
    t.is(empty.status, 0, empty.stderr);
    t.is(empty.stdout, 'compact: 0 pod(s) compacted, 0 events removed\n');
    t.deepEqual(readdirSync(parent), []);
  });
});

test("log compact keeps an image's last use, which the image index had not saved yet", (t) => {
  const d = dataDir();
  try {
    const lastUsed = () => (JSON.parse(d.podlog(['image', 'list', '--format', 'json']).stdout) as Array<{ lastUsed: string }>)[0]!.lastUsed;
    t.is(d.podlog(['run', IMAGE, '--exec', '/bin/true']).status, 0);
    // The second run's ImageRendered is the image's last use; the index reads it from the log, unsaved.
    t.is(d.podlog(['run', IMAGE, '--exec', '/bin/true']).status, 0);
    const used = (d.events() as unknown as Logged[]).filter((e) => e.type === 'ImageRendered').at(-1)!.meta.time;
    t.is(lastUsed(), used);
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    const compact = d.podlog(['log', 'compact']);
    t.is(compact.status, 0, compact.stderr);
    t.false((d.events() as unknown as Logged[]).some((e) => e.type === 'ImageRendered'), 'the uses are gone from the log');
    t.is(lastUsed(), used, 'image list (and image gc) still see the last use');
  } finally {
    d.cleanup();
  }
});

test('a pod removed while the pod list still held its row, then compacted: list shows the others, and no error', (t) => {
  const d = dataDir();
  try {
    const [a, b] = [join(d.dir, 'a'), join(d.dir, 'b')];
    for (const file of [a, b]) t.is(d.podlog(['run', `--uuid-file-save=${file}`, IMAGE, '--exec', '/bin/true']).status, 0);
    const [first, second] = [a, b].map((f) => readFileSync(f, 'utf8').trim());
    // rm catches the list up before it deletes, not after: the list's row of the first pod is from before.
    t.is(d.podlog(['rm', first!]).status, 0);
    t.is(d.podlog(['log', 'compact']).status, 0);
    const list = d.podlog(['list', '--format=json']);
    t.is(list.stderr, '');
    t.deepEqual((JSON.parse(list.stdout) as Array<{ uuid: string }>).map((p) => p.uuid), [second]);
    t.regex(d.podlog(['replay', first!]).stdout, /deleted/);
  } finally {
    d.cleanup();
  }
});
