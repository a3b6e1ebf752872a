/** Verbs that make no pod or image create nothing, and agree that a data dir without a log is an empty one. */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podlogBin } from '../stage0/podlog.js';

const LEGEND = 'UUID  APP  IMAGE NAME  STATE  CREATED  STARTED  NETWORKS\n';
const EVENTS_HEADER = /^ *POSITION {2}TIME +POD +VER {2}TYPE +DETAILS\n$/;

/** Every read verb against `dir`, as a user types them: empty answers, and "no matches" for a UUID. */
const readsNothing = (t: ExecutionContext, dir: string): void => {
  const podlog = (...args: string[]) => spawnSync(podlogBin, ['--dir', dir, ...args], { encoding: 'utf8' });
  const empty = (args: string[], stdout: string | RegExp): void => {
    const r = podlog(...args);
    t.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stderr, '', args.join(' '));
    if (typeof stdout === 'string') t.is(r.stdout, stdout, args.join(' '));
    else t.regex(r.stdout, stdout, args.join(' '));
  };
  empty(['list'], LEGEND);
  empty(['list', '--no-legend'], '');
  empty(['list', '--format', 'json'], '[]\n');
  empty(['events'], EVENTS_HEADER);
  empty(['events', '--json'], '');
  empty(['events', '--json', '--type', 'PodStarted', '--from-position', '3'], '');
  for (const verb of ['status', 'replay', 'cat-manifest', 'enter', 'run-prepared']) {
    const r = podlog(verb, '0123abcd');
    t.is(r.status, 254, verb);
    t.is(r.stderr, 'podlog: no matches found for "0123abcd"\n', verb);
  }
  // Verbs that change pods but make none: nothing to act on, and nothing created for it.
  for (const verb of ['stop', 'rm']) {
    const r = podlog(verb, '0123abcd');
    t.is(r.status, 254, verb);
    t.is(r.stderr, `podlog: ${verb} 0123abcd: no matches found for "0123abcd"\n`, verb);
  }
  empty(['gc'], '');
};

test('a data dir that does not exist: read verbs answer empty, and it still does not exist', (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'podlog-read-'));
  try {
    const dir = join(parent, 'not', 'yet');
    readsNothing(t, dir);
    t.deepEqual(readdirSync(parent), []);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('an empty data dir, or one with an empty log file: read verbs answer empty and leave it as it was', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-read-'));
  try {
    readsNothing(t, dir);
    t.deepEqual(readdirSync(dir), []);
    // A 0-byte log (a writer killed before it initialised the file) is an empty log too, left untouched.
    writeFileSync(join(dir, 'events.db'), '');
    readsNothing(t, dir);
    t.deepEqual(readdirSync(dir), ['events.db']);
    t.is(statSync(join(dir, 'events.db')).size, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
