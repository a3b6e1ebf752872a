/** `npm run docs`: the library's API documentation builds, and every part of the public API has a doc comment. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/fixtures.js';

test('typedoc builds the API docs of stage0, watch, the subscriptions and the store port, without a warning', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'podlog-docs-'));
  try {
    // typedoc.json as `npm run docs` reads it, into a directory of the test's own.
    const r = spawnSync(join(repoRoot, 'node_modules', '.bin', 'typedoc'), ['--out', out], { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    const log = `${r.stdout}${r.stderr}`;
    t.is(r.status, 0, log);
    t.notRegex(log, /\[error\]/);
    // An undocumented export, or a type the API names that the docs leave out, is a warning.
    t.deepEqual(log.split('\n').filter((l) => l.includes('[warning]')), [], 'every part of the public API is documented');
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    for (const module of ['stage0', 'api/watch', 'api/subscribe', 'store/port']) t.true(index.includes(`>${module}<`), module);
    // A comment reaches its page: watch's says how it ends.
    t.regex(readFileSync(join(out, 'functions', 'api_watch.watch.html'), 'utf8'), /never\s+completes by itself/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
