/** `podlog events` as people read it, after one real `podlog run`: a table that fits, its formats, its colours. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, podlogBin } from '../stage0/podlog.js';

const d = dataDir();
const uuidFile = join(d.dir, 'uuid-of-the-run');
let uuid = '';

test.before(() => {
  const r = d.podlog(['run', '--uuid-file-save', uuidFile, aciPath('busybox-gzip'), '--exec', '/bin/sh', '--', '-c', 'exit 0']);
  if (r.status !== 0) throw new Error(`podlog run exited ${r.status}: ${r.stderr}`);
  uuid = readFileSync(uuidFile, 'utf8').trim();
});
test.after.always(() => d.cleanup());

/** podlog as a pipe sees it: without a colour setting of the test's own environment, unless given one. */
const events = (args: string[], env: Record<string, string> = {}) => {
  const { FORCE_COLOR: _force, NO_COLOR: _no, ...inherited } = process.env;
  const r = spawnSync(podlogBin, ['--dir', d.dir, 'events', ...args], { encoding: 'utf8', env: { ...inherited, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter((l) => l !== '') };
};

const jsonLines = (stdout: string): Array<{ type: string; meta: { command: string[] } }> =>
  stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

const ESCAPE = '\x1b[';

test('the table of one run fits 100 columns, and says which command recorded it once, by its verb', (t) => {
  const recorded = jsonLines(events(['--pod', uuid, '--format', 'ndjson']).stdout);
  t.true(recorded.length >= 12, 'a whole run');
  const table = events(['--pod', uuid]);
  t.is(table.status, 0, table.stderr);
  for (const line of table.lines) t.true([...line].length <= 100, `${[...line].length} columns: ${line}`);
  const [header, ...body] = table.lines;
  t.regex(header!, /^POSITION {2}TIME +POD +VER {2}TYPE +DETAILS$/);
  const groups = body.filter((l) => l.startsWith('── '));
  t.deepEqual(groups.length, 1, 'one command recorded the run');
  t.regex(groups[0]!, /^── run · pid \d+ · \d{4}-\d{2}-\d{2} UTC ──$/);
  t.deepEqual(body.filter((l) => !l.startsWith('── ')).map((l) => l.trim().split(/\s+/)[4]), recorded.map((e) => e.type), 'a row per event, in order');
  t.false(table.stdout.includes(uuidFile), 'no row repeats the command line');
  t.regex(table.stdout, new RegExp(`${uuid.slice(0, 8)} +\\d+ {2}PodExited +code=0\\n`));
});

test('--wide shows every field in full and the whole command line, once per command', (t) => {
  const wide = events(['--pod', uuid, '--wide']);
  t.is(wide.status, 0, wide.stderr);
  const commandLines = wide.lines.filter((l) => l.includes(uuidFile));
  t.is(commandLines.length, 1);
  t.regex(commandLines[0]!, /^── run · pid \d+ · .* UTC: --dir \S+ run --uuid-file-save \S+ \S+busybox-gzip\.aci --exec \/bin\/sh -- -c 'exit 0'$/);
  const imageId = (jsonLines(events(['--pod', uuid, '--json']).stdout).find((e) => e.type === 'ImageRenderRequested') as unknown as { data: { image: string } })
    .data.image;
  t.true(wide.stdout.includes(`image=${imageId}`), 'the whole image id');
  t.false(events(['--pod', uuid]).stdout.includes(imageId), 'shortened in the table');
});

test('--format json is one array of the events --format ndjson prints a line each, and --json is --format ndjson', (t) => {
  const ndjson = events(['--pod', uuid, '--format', 'ndjson']);
  const json = events(['--pod', uuid, '--format', 'json']);
  t.is(json.status, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), jsonLines(ndjson.stdout));
  t.is(events(['--pod', uuid, '--json']).stdout, ndjson.stdout);
  const none = events(['--type', 'NoSuchEvent', '--format', 'json']);
  t.deepEqual(JSON.parse(none.stdout), [], 'a JSON document even when nothing matched');
  t.is(events(['--type', 'NoSuchEvent', '--format', 'ndjson']).stdout, '');
});

test('FORCE_COLOR colours each type by its kind; a pipe gets no colour', (t) => {
  const plain = events(['--pod', uuid]);
  t.false(plain.stdout.includes(ESCAPE));
  const coloured = events(['--pod', uuid], { FORCE_COLOR: '1' });
  const codeOf = (type: string): string => {
    const row = coloured.lines.find((l) => l.includes(`${type}${ESCAPE}`));
    if (row === undefined) throw new Error(`no coloured ${type} row`);
    return row.slice(row.indexOf(ESCAPE), row.indexOf(type));
  };
  t.not(codeOf('PrepareRequested'), codeOf('PodCreated'), 'an intent and an outcome');
  t.is(codeOf('PrepareRequested'), codeOf('ImageRenderRequested'), 'two intents');
  t.not(codeOf('PodExited'), codeOf('PodCreated'), 'an observation and an outcome');
  const width = (l: string): number => [...l.replace(/\x1b\[\d+m/g, '')].length;
  t.deepEqual(coloured.lines.map(width), plain.lines.map(width), 'colour takes no column');
  t.is(events(['--pod', uuid], { FORCE_COLOR: '0' }).stdout, plain.stdout);
  t.false(events(['--pod', uuid, '--json'], { FORCE_COLOR: '1' }).stdout.includes(ESCAPE), 'JSON is never coloured');
});

test('a format that cannot be printed, or an argument, is refused by name', (t) => {
  for (const [args, message] of [
    [['--follow', '--format', 'json'], /--follow .*--format json is one array.*use --format ndjson/],
    [['--format', 'yaml'], /--format: unknown format "yaml" \(table, json, ndjson\)/],
    [['--json', '--format', 'table'], /--json is --format ndjson; it cannot go with --format table/],
    [['--wide', '--format', 'json'], /--wide is for the table/],
    [['5f3a'], /events takes no arguments \("5f3a"\): name a pod with --pod UUID/],
  ] as const) {
    const r = events([...args]);
    t.is(r.status, 254, args.join(' '));
    t.regex(r.stderr, message);
    t.is(r.stdout, '', 'and nothing is printed');
  }
});
