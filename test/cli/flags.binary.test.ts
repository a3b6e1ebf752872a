/**
 * Generated `podlog run` command lines through the real binary (a fixed seed, so the same ones every
 * time): the exit is 0, the app's code, or 254 with one line `podlog: …` and no stack trace; a 254
 * leaves no pod behind, since every such vector fails on its input only.
 */
import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podlogBin } from '../stage0/podlog.js';
import { makeWorld, runVector } from './flag-arbitraries.js';

const world = makeWorld();
test.after.always(() => world.cleanup());

test('generated run command lines: 0, the app\'s code, or one line of refusal with no pod', (t) => {
  const vectors = fc.sample(runVector(world), { seed: 16, numRuns: 20 });
  const outcomes = new Map<string, number>();
  for (const { argv, code } of vectors) {
    const dir = join(mkdtempSync(join(tmpdir(), 'podlog-fuzz-')), 'data');
    try {
      const r = spawnSync(podlogBin, ['--dir', dir, ...argv], { encoding: 'utf8', timeout: 60_000 });
      const what = `podlog ${argv.join(' ')} → ${r.status}: ${r.stderr}`;
      t.false(/^ {4}at /m.test(r.stderr), `a stack trace: ${what}`);
      t.true(r.status === 0 || r.status === code || r.status === 254, what);
      if (r.status === 254) {
        t.regex(r.stderr, /^podlog: [^\n]+\n$/, what);
        t.deepEqual(existsSync(join(dir, 'pods')) ? readdirSync(join(dir, 'pods')) : [], [], `a pod was created: ${what}`);
      }
      const outcome = r.status === 254 ? 'refused' : r.stdout.startsWith('Usage:') ? 'usage' : 'ran';
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  }
  t.log(`${vectors.length} generated command lines through bin/podlog: ${[...outcomes].map(([o, n]) => `${n} ${o}`).join(', ')}`);
});
