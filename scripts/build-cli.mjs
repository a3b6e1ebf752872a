// Builds the CLI that bin/podlog runs: src/cli/main.ts and everything it imports bundled by esbuild
// into one minified CommonJS script, dist/cli/podlog.cjs, and V8's code cache for it.
//
// Why: Node 20 spent most of a short command's time resolving, reading and compiling ~80 ES modules
// one by one. One script is read once; CommonJS lets esbuild keep each module's body, and the
// built-ins it requires, unevaluated until first used (a verb's dynamic import() becomes such a lazy
// init), so `list` loads neither stage1's nor the image store's code. The code cache is made by
// running a few commands that fail harmlessly on a scratch data dir, so that what they compiled
// (option parsing, the store, the machine, the fold, prepare's checks) is cached too.
//
// The TypeScript sources stay the truth: tsc type-checks them (`npm run typecheck`) and the tests run
// them through tsx; npm ci (postinstall) and npm test (pretest) build this bundle.
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import loader from '../bin/cli-loader.cjs';

const { bundlePath, codeCachePath, loadCli } = loader;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Built beside dist/cli and renamed into it file by file: a podlog started meanwhile (tests running
// while a build runs) reads the old script or the new one, never a missing or half-written one; a
// code cache that does not match its script is rejected by V8 and only costs the compile.
const staging = `${dirname(bundlePath)}.build-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile: join(staging, basename(bundlePath)),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // import() of a built-in (node:http in the metadata client) becomes a lazy require: the script runs
  // in vm.Script, which has no loader for a dynamic import.
  supported: { 'dynamic-import': false },
  minify: true,
  // NODE_OPTIONS=--enable-source-maps gives a --debug stack in the sources' terms.
  sourcemap: 'linked',
  // pg may load pg-native from its own package; better-sqlite3 is told where its addon is (sqlite.ts).
  // The api-service's framework and metrics are required from node_modules when that verb runs: bundled,
  // they were more than half of the script that every other command reads.
  external: ['pg', 'fastify', '@fastify/swagger', 'prom-client'],
  // src/native.ts finds the repository from its own URL.
  define: { 'import.meta.url': '__podlogBundleUrl' },
  banner: { js: 'const __podlogBundleUrl=require("node:url").pathToFileURL(__filename).href;' },
  logLevel: 'warning',
});

mkdirSync(dirname(bundlePath), { recursive: true });
// The old cache goes first; it would be ignored anyway (its header names the old bundle's file).
rmSync(codeCachePath, { force: true });
for (const file of readdirSync(staging)) renameSync(join(staging, file), join(dirname(bundlePath), file));
rmSync(staging, { recursive: true, force: true });

const { cli, script, cacheHeader } = loadCli({ cache: false });
const scratch = mkdtempSync(join(tmpdir(), 'podlog-build-'));
const quiet = process.stdout.write;
process.stdout.write = () => true;
try {
  const data = join(scratch, 'data');
  for (const argv of [
    ['--help'],
    ['list', '--dir', data],
    ['status', '--dir', data, '00000000'],
    ['events', '--dir', data],
    ['prepare', '--dir', data, '--net=none', join(scratch, 'missing.aci')],
    ['run', '--dir', data, '--net=none', join(scratch, 'missing.aci')],
  ]) {
    await cli.main(argv).catch(() => undefined);
  }
} finally {
  process.stdout.write = quiet;
  rmSync(scratch, { recursive: true, force: true });
}
writeFileSync(`${codeCachePath}.${process.pid}`, Buffer.concat([Buffer.from(cacheHeader), script.createCachedData()]));
renameSync(`${codeCachePath}.${process.pid}`, codeCachePath);
