/**
 * Headless Chromium (Debian's `chromium`, debian-packages.txt) opening a page as a person's browser would:
 * a screenshot of it, and the DOM it built. Each call has a profile directory of its own, and the flags
 * keep it from reaching for the network (background updates, sync, QUIC), which this machine cannot.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = (): boolean => existsSync(CHROMIUM);

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--window-size=1400,900',
];

const chromium = (args: string[], page: string): string => {
  const profile = mkdtempSync(join(tmpdir(), 'podlog-chromium-'));
  try {
    const r = spawnSync(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, ...args, pathToFileURL(page).href], { encoding: 'utf8', timeout: 90_000, maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`chromium ${args.join(' ')}: exit ${r.status} ${r.signal ?? ''}: ${r.stderr.slice(-2000)}`);
    return r.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
};

/** Writes a PNG of the page's first 1400 × 900 pixels to `png`. */
export const screenshot = (page: string, png: string): void => {
  chromium([`--screenshot=${png}`], page);
  if (!existsSync(png)) throw new Error(`chromium wrote no screenshot of ${page}`);
};

/** The page's DOM as Chromium built it, serialised. */
export const dumpDom = (page: string): string => chromium(['--dump-dom'], page);
