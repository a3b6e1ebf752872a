/**
 * What every command pays before its work: bin/podlog runs the one bundled script npm builds from
 * src/, with V8's code cache for it, and a verb loads only the code it uses. Asserted on what the
 * process really loaded (Node's own module list), not on time: time belongs to bench/.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Script } from 'node:vm';
import { repoRoot } from '../helpers/fixtures.js';
import { podlogBin } from '../stage0/podlog.js';

const work = mkdtempSync(join(tmpdir(), 'podlog-startup-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

/** Node's built-in modules and the files a bin/podlog command loaded, and its result. */
const loaded = (args: string[]) => {
  const out = join(work, `loaded-${args.join('-').replace(/[^a-z0-9-]/gi, '_')}.json`);
  const probe = join(work, 'probe.cjs');
  writeFileSync(
    probe,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ builtins: process.moduleLoadList, files: Object.keys(require.cache) })));`,
  );
  const result = spawnSync(process.execPath, ['--require', probe, podlogBin, ...args], { encoding: 'utf8' });
  const { builtins, files } = JSON.parse(readFileSync(out, 'utf8')) as { builtins: string[]; files: string[] };
  // The probe itself is a file of the process too.
  files.splice(files.indexOf(probe), 1);
  return { result, builtins: new Set(builtins.map((m) => m.replace(/^NativeModule /, ''))), files };
};

test('list and status load neither stage1, networks, the metadata client nor the image store', (t) => {
  const data = join(work, 'data');
  for (const args of [['--dir', data, 'list'], ['--dir', data, 'status', '0123abcd']]) {
    const { result, builtins, files } = loaded(args);
    t.is(result.status, args.includes('list') ? 0 : 254, result.stderr);
    for (const unused of ['child_process', 'http', 'zlib', 'fs/promises']) t.false(builtins.has(unused), `${args.join(' ')} loaded ${unused}`);
    // The CLI is one script compiled by the loader, not a tree of modules resolved one by one:
    // besides the loader, only native addons are loaded as files (better-sqlite3's JavaScript is bundled).
    t.deepEqual(files.filter((f) => !f.endsWith('.node')).sort(), [join(repoRoot, 'bin', 'cli-loader.cjs'), podlogBin], args.join(' '));
  }
});

test("the bundle's code cache is accepted by this Node", (t) => {
  const { loadCli } = createRequire(import.meta.url)(join(repoRoot, 'bin', 'cli-loader.cjs')) as {
    loadCli: () => { script: Script; cli: Record<string, unknown> };
  };
  const { script, cli } = loadCli();
  t.false(script.cachedDataRejected, 'V8 rejected dist/cli/podlog.cjs.cache: the build made it with another Node');
  t.is(typeof cli.main, 'function');
});

test('run loads the metadata client only for pods run with --mds-register', (t) => {
  // `run --help` initialises the run verb's code without running anything.
  const { result, builtins } = loaded(['run', '--help']);
  t.is(result.status, 0, result.stderr);
  t.false(builtins.has('http'), 'the metadata client is loaded only for --mds-register');
});
