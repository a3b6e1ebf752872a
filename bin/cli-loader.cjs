/**
 * Loads the bundled CLI (dist/cli/podlog.cjs, built from src/ by scripts/build-cli.mjs) with the V8
 * code cache made beside it at build time. Node 20 keeps no compiled code between runs, and compiling
 * the bundle was a fifth of a short command's time. A cache V8 rejects (another Node or V8 version,
 * other flags) is ignored: the script compiles from source as it would without one.
 */
'use strict';
// CommonJS (bin/package.json), as bin/podlog: an ES module entry would start Node's ESM loader,
// which costs more than the rest of `podlog list` does.
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const bundlePath = join(__dirname, '..', 'dist', 'cli', 'podlog.cjs');
const codeCachePath = `${bundlePath}.cache`;

const readCache = () => {
  try {
    return readFileSync(codeCachePath);
  } catch {
    return undefined;
  }
};

/** The CLI's exports (`run`, `main`), and the compiled script (the build makes the cache from it). */
const loadCli = ({ cache = true } = {}) => {
  let source;
  try {
    source = readFileSync(bundlePath, 'utf8');
  } catch (e) {
    throw new Error(`podlog: ${bundlePath} is missing (${e.code}): build it with npm run build:ts`);
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundlePath,
    cachedData: cache ? readCache() : undefined,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
  return { cli: module.exports, script };
};

module.exports = { bundlePath, codeCachePath, loadCli };
