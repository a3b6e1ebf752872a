/**
 * `podlog timeline` as a person sees it: the HTML page (and the SVG alone) opened in headless Chromium,
 * for one pod of a real run and for 200 pods of a log written through the store. The screenshot must not
 * be blank, and the DOM Chromium built must hold one row per pod and the legend. The PNGs are kept in a
 * directory of their own (its path is in the test's log) for a person to look at.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, podlogBin } from '../stage0/podlog.js';
import { dumpDom, hasChromium, screenshot } from './chromium.js';
import { brightnessVariance, readPng } from './png.js';
import { writeSyntheticLog } from './synthetic.js';

const HOST = 'synthetic-host';
const pictures = mkdtempSync(join(tmpdir(), 'podlog-timeline-pictures-'));
// Chromium is in debian-packages.txt; a machine without it cannot say anything about the page.
const browserTest = hasChromium() ? test : test.skip;
if (!hasChromium()) console.warn('timeline pages not opened: /usr/bin/chromium is absent (debian-packages.txt installs it)');

const rowsOf = (dom: string): string[] => [...dom.matchAll(/<g class="pod-row" data-uuid="([^"]+)"/g)].map((m) => m[1]!);

/** Opens `page`: its screenshot (kept as `name`.png) is not blank, and its DOM is returned. */
const look = (t: ExecutionContext, page: string, name: string): string => {
  const png = join(pictures, `${name}.png`);
  screenshot(page, png);
  t.log(`screenshot: ${png}`);
  const variance = brightnessVariance(readPng(png));
  // A blank page is 0; a page of text alone is a few dozen; bars of colour are in the hundreds.
  t.true(variance > 100, `the screenshot's brightness variance is ${variance.toFixed(1)}`);
  const dom = dumpDom(page);
  t.false(dom.includes('parsererror'), 'the page parses');
  t.true(/<g class="legend"/.test(dom), 'the legend is there');
  for (const state of ['preparing', 'prepared', 'running', 'exited', 'deleted']) t.true(dom.includes(`>${state}</text>`), `the legend names ${state}`);
  return dom;
};

const timeline = (dir: string, args: string[]): void => {
  const r = spawnSync(podlogBin, ['--dir', dir, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`timeline ${args.join(' ')}: ${r.status} ${r.stderr}`);
};

browserTest('one pod of a real run: one row, its exit code in the label, and a page that is not blank', (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', aciPath('busybox-gzip'), '--exec', '/bin/sh', '--', '-c', 'exit 3']);
    t.is(r.status, 3, r.stderr);
    const [pod] = d.pods();
    const page = join(d.dir, 'one.html');
    timeline(d.dir, ['timeline', '--format', 'html', '--output', page]);
    const html = readFileSync(page, 'utf8');
    t.false(/<script|\bsrc=|\bhref=|url\(|@import/i.test(html), 'the page loads nothing');
    const dom = look(t, page, 'one-pod');
    t.deepEqual(rowsOf(dom), [pod!.uuid]);
    t.regex(dom, new RegExp(`${pod!.uuid.slice(0, 8)} busybox · exited \\(exit 3\\)`));
  } finally {
    d.cleanup();
  }
});

browserTest('200 pods: a row each in the order they were made, rows compressed, and the SVG alone opens too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-timeline-200-'));
  try {
    const { uuids } = await writeSyntheticLog(dir, 200, { hostId: HOST });
    const page = join(dir, 'many.html');
    timeline(dir, ['--host-id', HOST, 'timeline', '--output', page]);
    const dom = look(t, page, '200-pods');
    t.deepEqual(rowsOf(dom), uuids);
    const svg = join(dir, 'many.svg');
    timeline(dir, ['--host-id', HOST, 'timeline', '--format', 'svg', '-o', svg]);
    t.deepEqual(rowsOf(look(t, svg, '200-pods-svg')), uuids);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

browserTest("an app's name is text, never markup: a hostile one shows as written and adds no element", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-timeline-hostile-'));
  try {
    const hostile = '<img src=x onerror=alert(1)>&"\'';
    const { uuids } = await writeSyntheticLog(dir, 3, { hostId: HOST, app: hostile });
    const svg = join(dir, 'hostile.svg');
    timeline(dir, ['--host-id', HOST, 'timeline', '--format', 'svg', '-o', svg]);
    const dom = dumpDom(svg);
    t.false(dom.includes('parsererror'), 'the SVG is well-formed XML');
    t.false(/<img/i.test(dom));
    t.deepEqual(rowsOf(dom), uuids);
    t.true(dom.includes('&lt;img src=x onerror=alert(1)&gt;'), 'the name is shown as written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without a log the page still says so: no pods, and the legend', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-timeline-empty-'));
  try {
    const r = spawnSync(podlogBin, ['--dir', join(dir, 'none'), 'timeline', '--format', 'svg'], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /podlog timeline: 0 pods/);
    t.regex(r.stdout, /class="legend"/);
    t.deepEqual(rowsOf(r.stdout), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
