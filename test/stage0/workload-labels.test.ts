/**
 * Annotations and labels (rkt's --user-annotation and --user-label): in the pod manifest, shown by
 * `status --format json` and `list --format json`, and podman's `--filter label=KEY[=VALUE]` (and
 * `annotation=`) choosing the pods `list` shows and the pods whose events `events` shows.
 */
import test from 'ava';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir } from './podlog.js';

const busybox = aciPath('busybox-gzip');

interface ListedJson {
  uuid: string;
  user_annotations: Record<string, string>;
  user_labels: Record<string, string>;
}

/** Three pods: web (team=infra, tier=web), db (team=infra, tier=db), and one with neither. */
const threePods = (d: ReturnType<typeof dataDir>): { web: string; db: string; plain: string } => {
  const prepare = (flags: string[]) => {
    const r = d.podlog(['prepare', ...flags, busybox]);
    if (r.status !== 0) throw new Error(r.stderr);
    return r.stdout.trim();
  };
  return {
    web: prepare(['--user-label=team=infra', '--user-label', 'tier=web', '--user-annotation=owner=ops@example.org', '--user-annotation=note=a=b, c']),
    db: prepare(['--user-label=team=infra', '--user-label=tier=db']),
    plain: prepare([]),
  };
};

test('annotations and labels are in the pod manifest and in status and list as JSON', (t) => {
  const d = dataDir();
  try {
    const { web, plain } = threePods(d);
    const manifest = JSON.parse(d.podlog(['cat-manifest', web]).stdout);
    t.deepEqual(manifest.userAnnotations, { owner: 'ops@example.org', note: 'a=b, c' });
    t.deepEqual(manifest.userLabels, { team: 'infra', tier: 'web' });
    const status = JSON.parse(d.podlog(['status', '--format=json', web]).stdout);
    t.deepEqual([status.userAnnotations, status.userLabels], [manifest.userAnnotations, manifest.userLabels]);
    t.deepEqual(JSON.parse(d.podlog(['status', '--format', 'json', plain]).stdout).userLabels, {});
    const listed = JSON.parse(d.podlog(['list', '--format=json']).stdout) as ListedJson[];
    t.deepEqual(listed.find((p) => p.uuid === web)?.user_labels, { team: 'infra', tier: 'web' });
    t.deepEqual(listed.find((p) => p.uuid === web)?.user_annotations, { owner: 'ops@example.org', note: 'a=b, c' });
    t.deepEqual(listed.find((p) => p.uuid === plain)?.user_annotations, {});
  } finally {
    d.cleanup();
  }
});

test('list --filter: label=KEY, label=KEY=VALUE and annotation=, every filter must hold', (t) => {
  const d = dataDir();
  try {
    const { web, db } = threePods(d);
    const uuids = (...filters: string[]) =>
      (JSON.parse(d.podlog(['list', '--format=json', ...filters.map((f) => `--filter=${f}`)]).stdout) as ListedJson[]).map((p) => p.uuid).sort();
    t.deepEqual(uuids('label=team'), [web, db].sort());
    t.deepEqual(uuids('label=tier=db'), [db]);
    t.deepEqual(uuids('label=team=infra', 'label=tier=web'), [web]);
    t.deepEqual(uuids('label=tier=web', 'label=tier=db'), []);
    t.deepEqual(uuids('annotation=note=a=b, c'), [web]);
    t.deepEqual(uuids('label=owner'), [], 'an annotation is not a label');
    const text = d.podlog(['list', '--full', '--no-legend', '--filter', 'label=tier=db']).stdout;
    t.true(text.startsWith(db) && !text.includes(web), text);
  } finally {
    d.cleanup();
  }
});

test("events --filter shows the matching pods' events from their first, a deleted pod's too (its labels are in the log)", (t) => {
  const d = dataDir();
  try {
    const { web, db, plain } = threePods(d);
    const streams = (filter: string) =>
      new Set(d.podlog(['events', '--json', `--filter=${filter}`]).stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).stream as string));
    const firstTypes = d.podlog(['events', '--json', '--filter=label=tier=web']).stdout.trim().split('\n').map((l) => JSON.parse(l).type);
    t.is(firstTypes[0], 'PrepareRequested', "a pod's history from its first event");
    t.is(firstTypes.at(-1), 'PodPrepared');
    t.deepEqual([...streams('label=team')].sort(), [`pod-${web}`, `pod-${db}`].sort());
    t.is(d.podlog(['rm', db]).status, 0);
    t.deepEqual([...streams('label=team')].sort(), [`pod-${web}`, `pod-${db}`].sort(), 'a deleted pod is matched by the labels its PrepareRequested holds');
    t.is(d.podlog(['events', '--json', '--filter=label=tier=db']).stdout.trim().split('\n').map((l) => JSON.parse(l).type).at(-1), 'PodDeleted');
    t.false(streams('label=team').has(`pod-${plain}`));
    t.is(d.podlog(['events', '--filter=label=nobody']).stdout.trim().split('\n').length, 1, 'the header alone');
  } finally {
    d.cleanup();
  }
});

test('a malformed --filter, --user-label or --user-annotation is refused by name', (t) => {
  const d = dataDir();
  try {
    for (const [args, message] of [
      [['list', '--filter=tier=web'], /--filter: "tier=web" is not label=KEY\[=VALUE\] or annotation=KEY\[=VALUE\]/],
      [['list', '--filter=label='], /--filter: "label=" is not label=KEY/],
      [['events', '--filter=label'], /--filter: "label" is not label=KEY/],
      [['run', '--user-label=team', busybox], /--user-label: "team" is not NAME=VALUE/],
      [['prepare', '--user-annotation==x', busybox], /--user-annotation: "=x" is not NAME=VALUE/],
    ] as const) {
      const r = d.podlog([...args]);
      t.is(r.status, 254, args.join(' '));
      t.regex(r.stderr, message);
    }
    t.deepEqual(d.pods(), []);
  } finally {
    d.cleanup();
  }
});
