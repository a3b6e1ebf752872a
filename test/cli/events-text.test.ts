/**
 * What the events table prints of the log's own text: control characters escaped wherever they come
 * from (a file name, a command line), and a failure's message in view without --wide.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventTable, fieldsText } from '../../src/cli/event-view.js';
import type { RecordedEvent } from '../../src/store/port.js';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, podlogBin } from '../stage0/podlog.js';

const d = dataDir();
/** A file name with what a terminal would act on: ESC and a colour, a newline, DEL, and C1's CSI. */
const odd = join(d.dir, 'images', '\x1b[41mX\nY\x7fZ\u009b31m.aci');
const failedUuidFile = join(d.dir, 'uuid-of-the-failed-run');
let failed = '';

test.before(() => {
  mkdirSync(join(d.dir, 'images'));
  copyFileSync(aciPath('busybox-gzip'), odd);
  const fetched = d.podlog(['fetch', '--insecure-options=image', odd]);
  if (fetched.status !== 0) throw new Error(`podlog fetch exited ${fetched.status}: ${fetched.stderr}`);
  const r = d.podlog(['run', '--uuid-file-save', failedUuidFile, aciPath('busybox-gzip')], { PODLOG_FAIL_AT: 'effect:prepareOverlay' });
  if (r.status !== 254) throw new Error(`a run whose overlay fails exits 254, not ${r.status}: ${r.stderr}`);
  failed = readFileSync(failedUuidFile, 'utf8').trim();
});
test.after.always(() => d.cleanup());

/** podlog as a pipe sees it (no colour). */
const events = (args: string[]) => {
  const { FORCE_COLOR: _force, NO_COLOR: _no, ...inherited } = process.env;
  const r = spawnSync(podlogBin, ['--dir', d.dir, 'events', ...args], { encoding: 'utf8', env: inherited });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter((l) => l !== '') };
};

const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
const columns = (line: string): number => [...line].length;

test('a file name with control characters is printed escaped, in the table and --wide, and no row breaks', (t) => {
  const recorded = events(['--json']).stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string; meta: { command: string[] } });
  const fetchCommand = recorded.find((e) => e.meta.command.includes(odd))!.meta.command;
  for (const args of [[], ['--wide']]) {
    const table = events(args);
    t.is(table.status, 0, table.stderr);
    t.false(CONTROL.test(table.stdout), `no control character reaches the terminal (${args.join(' ')})`);
    const [, ...body] = table.lines;
    const rows = body.filter((l) => !l.startsWith('── ') && !/^ {10}↳ /.test(l));
    t.true(rows.every((l) => /^ *\d+ {2}\d\d:\d\d:/.test(l)), `every line is a header, a row or a failure's message (${args.join(' ')}):\n${rows.join('\n')}`);
    t.is(rows.length, recorded.length, 'a row per event');
    if (args.length === 0) for (const line of table.lines) t.true(columns(line) <= 100, line);
  }
  const wide = events(['--wide']).stdout;
  t.true(wide.includes(`source=${join(d.dir, 'images')}/\\x1b[41mX\\nY\\x7fZ\\u009b31m.aci`), 'the whole name, escaped');
  // The header's command line is one bash reads back as the command's argv.
  const header = wide.split('\n').find((l) => l.startsWith('── fetch '))!;
  const typed = header.slice(header.indexOf(' UTC: ') + ' UTC: '.length);
  t.true(typed.includes(`$'${join(d.dir, 'images')}/\\x1b[41mX\\nY\\x7fZ\\u009b31m.aci'`), typed);
  const argv = spawnSync('bash', ['-c', `printf '%s\\0' ${typed}`], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } }).stdout.split('\0').slice(0, -1);
  t.deepEqual(argv, fetchCommand);
});

/** An event as the log holds it, for the view alone. */
const event = (type: string, data: Record<string, unknown>, command = ['run']): RecordedEvent =>
  ({
    position: 7, stream: 'pod-0123abcd-0000-4000-8000-000000000000', version: 3, type, schema: 1, data,
    meta: { id: 'e', time: '2026-12-02T10:00:00.000Z', host: 'h', hostId: 'h', pid: 1, user: 'root', command, correlationId: 'c' },
  }) as RecordedEvent;

test('escapes come before cuts: a cut value never ends in half an escape sequence', (t) => {
  const value = `${'x'.repeat(22)}\x1b[41mred`;
  t.is(fieldsText(event('OverlayPrepareRequested', { source: value }), false), `source=${'x'.repeat(22)}\\…`);
  t.is(fieldsText(event('OverlayPrepareRequested', { source: value }), true), `source=${'x'.repeat(22)}\\x1b[41mred`);
  t.is(fieldsText(event('OverlayPrepareRequested', { nested: { a: 'b\u009b' } }), true), 'nested={"a":"b\\u009b"}', 'in JSON too');
  const row = eventTable({ wide: false, colour: false, hostId: 'h', allHosts: false })(event('Odd\x1b]0;title\x07', { a: '\n' }, ['run', '\x1b[2J']));
  t.false(row.some((l) => CONTROL.test(l) || l.includes('\n')), row.join('\n'));
  t.regex(row[1]!, /Odd\\x1b\]0;title\\x07 +a=\\n$/);
});

test("a failure's message is on a line of its own under its row, without --wide", (t) => {
  const table = events(['--pod', failed]);
  t.is(table.status, 0, table.stderr);
  const at = table.lines.findIndex((l) => /\d {2}EffectFailed /.test(l));
  t.not(at, -1, table.stdout);
  t.regex(table.lines[at]!, /EffectFailed +effect=prepareOverlay code=EINJECTED$/, 'the row keeps the other fields');
  t.regex(table.lines[at + 1]!, /^ {10}↳ effect prepareOverlay failed: injected by PODLOG_FAIL_AT$/);
  const aborted = table.lines.findIndex((l) => /\d {2}PrepareAborted$/.test(l));
  t.regex(table.lines[aborted + 1]!, /^ {10}↳ EINJECTED: effect prepareOverlay failed: injected by PODLOG_FAIL_AT$/, 'its reason in full');
  for (const line of table.lines) t.true(columns(line) <= 100, line);
  // A long message is cut at the end only, and a PrepareAborted's reason is shown the same way.
  const reason = `the image ${'y'.repeat(200)} was refused`;
  const lines = eventTable({ wide: false, colour: false, hostId: 'h', allHosts: false })(event('PrepareAborted', { reason }));
  t.is(lines.length, 3);
  t.is(lines[2], `${' '.repeat(10)}↳ ${reason.slice(0, 100 - 13)}…`);
  t.is(columns(lines[2]!), 100);
  const wide = events(['--pod', failed, '--wide']).lines;
  t.deepEqual(wide.filter((l) => l.includes('injected by PODLOG_FAIL_AT')).map((l) => l.trim().split(/\s+/)[4]), ['EffectFailed', 'PrepareAborted'], '--wide keeps them in their rows');
  t.false(wide.some((l) => l.includes('↳')));
});
