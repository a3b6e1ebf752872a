/**
 * --pod-manifest FILE (rkt's): the pod an appc pod manifest describes, checked whole before anything
 * exists; and the round trip: `cat-manifest` of a pod is a document a second `--pod-manifest` run
 * accepts, giving a pod with the same apps, environment, annotations and labels.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const work = mkdtempSync(join(tmpdir(), 'podlog-workload-manifest-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

let files = 0;
const manifestFile = (doc: unknown): string => {
  const file = join(work, `pod-${files++}.json`);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return file;
};

const sortedLines = (s: string): string[] => s.trim().split('\n').sort();

test('cat-manifest round trip: the same apps, environment, annotations and labels, and the same document', (t) => {
  const d = dataDir();
  try {
    const script = 'echo "$AC_APP_NAME $GREETING $SHARED $*"';
    const first = d.podlog([
      'run', '--set-env=SHARED=all', '--user-annotation=owner=ops', '--user-label=team=infra',
      busybox, '--name=hello', '--environment=GREETING=hi', '--exec', '/bin/sh', '--', '-c', script, 'sh', 'one', '---',
      busybox, '--name=bye', '--environment=GREETING=bye', '--exec', '/bin/sh', '--', '-c', script, 'sh', 'two',
    ]);
    t.is(first.status, 0, first.stderr);
    const [pod1] = d.pods();
    const printed = d.podlog(['cat-manifest', pod1!.uuid]).stdout;
    const again = d.podlog(['run', '--uuid-file-save', join(work, 'uuid'), '--pod-manifest', manifestFile(printed)]);
    t.is(again.status, 0, again.stderr);
    t.deepEqual(sortedLines(again.stdout), sortedLines(first.stdout));
    t.deepEqual(sortedLines(again.stdout), ['bye bye all two', 'hello hi all one']);
    const pod2 = d.pods().find((p) => p.uuid !== pod1!.uuid)!;
    t.deepEqual(JSON.parse(d.podlog(['cat-manifest', pod2.uuid]).stdout), JSON.parse(printed), 'cat-manifest prints the same document');
    t.deepEqual(pod2.apps.map((a) => a.name), ['hello', 'bye']);
    const status = JSON.parse(d.podlog(['status', '--format=json', pod2.uuid]).stdout);
    t.deepEqual([status.userAnnotations, status.userLabels], [{ owner: 'ops' }, { team: 'infra' }]);
  } finally {
    d.cleanup();
  }
});

test("a written pod manifest: an app without an app section runs its image's, one with its own runs that; prepare and run-prepared take it", (t) => {
  const d = dataDir();
  try {
    const id = d.podlog(['fetch', busybox]).stdout.trim();
    const doc = {
      acKind: 'PodManifest',
      acVersion: '0.8.11',
      apps: [
        { name: 'image-app', image: { id, name: 'podlog.test/busybox' } },
        { name: 'own', image: { id: id.slice(0, 20) }, app: { exec: ['/bin/sh', '-c', 'echo "own $X"; exit 4'], user: '0', group: '0', environment: [{ name: 'X', value: 'x' }] } },
      ],
      userLabels: { from: 'file' },
    };
    const uuid = d.podlog(['prepare', '--pod-manifest', manifestFile(doc)]).stdout.trim();
    const r = d.podlog(['run-prepared', uuid]);
    t.is(r.status, 4, r.stderr);
    t.is(r.stdout, 'own x\n');
    const written = JSON.parse(d.podlog(['cat-manifest', uuid]).stdout);
    t.is(written.apps[1].image.id, id, 'the id as it resolved');
    t.is(written.apps[0].app, undefined, "no app section: stage1 runs the image's");
    t.deepEqual(JSON.parse(d.podlog(['list', '--format=json', '--filter=label=from=file']).stdout).map((p: { uuid: string }) => p.uuid), [uuid]);
    const prepared = d.events(uuid).find((e) => e.type === 'PrepareRequested');
    t.false(JSON.stringify(prepared).includes('"x"'), 'environment values stay out of the log');
  } finally {
    d.cleanup();
  }
});

test('a pod manifest is checked whole, and conflicting flags refused, before anything exists', (t) => {
  const d = dataDir();
  try {
    const id = d.podlog(['fetch', busybox]).stdout.trim();
    const app = (over: Record<string, unknown> = {}) => ({ name: 'a', image: { id }, ...over });
    const pod = (over: Record<string, unknown> = {}) => ({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [app()], ...over });
    const cases: Array<[string[], RegExp]> = [
      [['run', '--pod-manifest', manifestFile(pod()), busybox], /conflicting flags set with --pod-manifest: an image/],
      [['prepare', '--set-env=A=1', '--inherit-env', `--pod-manifest=${manifestFile(pod())}`], /conflicting flags set with --pod-manifest: --set-env, --inherit-env/],
      [['run', '--pod-manifest', join(work, 'missing.json')], /--pod-manifest: cannot read .*missing\.json: ENOENT/],
      [['run', '--pod-manifest', manifestFile('{"acKind": ')], /--pod-manifest: cannot read .*: .*JSON/],
      [['run', '--pod-manifest', manifestFile(pod({ acKind: 'ImageManifest' }))], /acKind is "ImageManifest", expected "PodManifest"/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [] }))], /pod must contain at least one application/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app(), app()] }))], /multiple apps with same name a/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ name: 'Bad_Name' })] }))], /invalid app name format: "Bad_Name"/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ image: { name: 'x' } })] }))], /no image ID for app "a"/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ image: { id: busybox } })] }))], /image id ".*busybox-gzip\.aci" is not an image id/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ image: { id: `sha512-${'0'.repeat(64)}` } })] }))], /sha512-0{12}/],
      [['run', '--pod-manifest', manifestFile(pod({ userLabel: { a: 'b' } }))], /has no field "userLabel"/],
      [['run', '--pod-manifest', manifestFile(pod({ userLabels: { a: 1 } }))], /userLabels is not an object of strings/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ app: { exec: ['/bin/true'] } })] }))], /app "a": app\.user is required/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ app: { exec: [], user: '0' } })] }))], /app "a": app\.exec is empty/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ app: { exec: ['/bin/true'], user: '0', environment: [{ name: '1X', value: 'v' }] } })] }))], /app "a": app\.environment holds an invalid variable/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ app: { exec: ['/bin/true'], user: '0', environment: [{ name: 'X', value: 'a\0b' }] } })] }))], /NUL byte in the app section/],
      [['run', '--pod-manifest', manifestFile(pod({ volumes: [{ name: 'data', kind: 'tmpfs' }] }))], /volumes\[0\]: unrecognized volume type/],
      [['run', '--pod-manifest', manifestFile(pod({ apps: [app({ mounts: [{ volume: 'data', path: '/data' }] })] }))], /app "a": the mount on \/data: could not find volume data/],
      [['run', '--pod-manifest', manifestFile(pod({ annotations: [{ name: 'coreos.com/rkt/stage1/mutable', value: 'true' }] }))], /a mutable pod .* is not supported yet/],
    ];
    for (const [args, message] of cases) {
      const r = d.podlog(args);
      t.is(r.status, 254, `${args.join(' ')}: ${r.stderr}`);
      t.regex(r.stderr, /^podlog: [^\n]+\n$/, args.join(' '));
      t.regex(r.stderr, message, args.join(' '));
    }
    t.deepEqual(d.pods(), [], 'no pod was created');
  } finally {
    d.cleanup();
  }
});
