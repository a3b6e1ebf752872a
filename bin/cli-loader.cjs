/**
 * Loads the bundled CLI (dist/cli/podlog.cjs, built from src/ by scripts/build-cli.mjs) with the V8
 * code cache made beside it at build time. Node 20 keeps no compiled code between runs, and compiling
 * the bundle was a fifth of a short command's time. A cache V8 rejects (another Node or V8 version,
 * other flags) is ignored: the script compiles from source as it would without one.
 */
'use strict';
// CommonJS (bin/package.json), as bin/podlog: an ES module entry would start Node's ESM loader,
// which costs more than the rest of `podlog list` does.
const { closeSync, fstatSync, openSync, readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const bundlePath = join(__dirname, '..', 'dist', 'cli', 'podlog.cjs');
const codeCachePath = `${bundlePath}.cache`;

/**
 * Which file a cache was made from: V8 checks a cache only against the source's length, so a cache
 * left from another bundle of the same length would run that bundle's code. The cache file starts
 * with this line; a bundle is a new file (a new inode) each build.
 */
const identity = (stat) => `podlog-code-cache ${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}\n`;

/** The cache made from the bundle whose stat is `stat`, or undefined (none, or another bundle's). */
const readCache = (stat) => {
  let bytes;
  try {
    bytes = readFileSync(codeCachePath);
  } catch {
    return undefined;
  }
  const header = Buffer.from(identity(stat));
  return bytes.subarray(0, header.length).equals(header) ? bytes.subarray(header.length) : undefined;
};

/** The CLI's exports (`run`, `main`), the compiled script and the bundle's cache header (for the build). */
const loadCli = ({ cache = true } = {}) => {
  let source;
  let stat;
  try {
    const fd = openSync(bundlePath, 'r');
    try {
      stat = fstatSync(fd);
      source = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new Error(`podlog: cannot read ${bundlePath} (${e.code}): build it with npm run build:ts`);
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundlePath,
    cachedData: cache ? readCache(stat) : undefined,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
  return { cli: module.exports, script, cacheHeader: identity(stat) };
};

module.exports = { bundlePath, codeCachePath, loadCli };
