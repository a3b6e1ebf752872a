// Builds the Rust half from source: the napi-rs addon and the stage1 binary, into build/.
// Runs on `npm ci` (postinstall). PODLOG_SKIP_NATIVE=1 skips it on machines without Rust.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.PODLOG_SKIP_NATIVE === '1') {
  console.log('podlog: PODLOG_SKIP_NATIVE=1, not building the Rust crates');
  process.exit(0);
}
// A shared target dir keeps fresh clones (CI) from recompiling every dependency.
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache', 'podlog-target');
const env = { ...process.env, CARGO_TARGET_DIR: targetDir };
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`podlog: ${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
    process.exit(1);
  }
};
run('cargo', ['build', '--release', '--locked', '-p', 'podlog-stage1']);
const out = join(root, 'build');
mkdirSync(out, { recursive: true });
// napi build writes build/podlog-native.node and regenerates the addon's committed TypeScript
// declarations (crates/podlog-native/index.d.ts, which src/native.ts imports), no JS loader.
run(join(root, 'node_modules', '.bin', 'napi'), [
  'build', '--release', '--manifest-path', 'crates/podlog-native/Cargo.toml',
  '--config-path', 'crates/podlog-native/napi.json', '--target-dir', targetDir,
  '--output-dir', 'build', '--dts', '../crates/podlog-native/index.d.ts', '--', '--locked',
]);
// Copied beside and renamed over: a running pod's stage1 keeps its old binary (no ETXTBSY).
copyFileSync(join(targetDir, 'release', 'podlog-stage1'), join(out, '.podlog-stage1.new'));
renameSync(join(out, '.podlog-stage1.new'), join(out, 'podlog-stage1'));
if (!existsSync(join(out, 'podlog-stage1'))) process.exit(1);
console.log(`podlog: built ${out}/podlog-native.node and ${out}/podlog-stage1`);
