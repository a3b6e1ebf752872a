/**
 * `podlog timeline` as a person sees it: the HTML page (and the SVG alone) opened in headless Chromium,
 * for one pod of a real run and for 200 pods of a log written through the store. The screenshot must not
 * be blank, and the DOM Chromium built must hold one row per pod and the legend. The PNGs are kept in a
 * directory of their own (its path is in the test's log) for a person to look at.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** What Chromium measures of a page laid out in its 1400 px window: the page's width, each row's label and exit code. */
interface Measured {
  pageWidth: number;
  svgRight: number;
  rows: Array<{ uuid: string; label: string; labelRight: number; plotLeft: number; exit?: string; exitRight?: number }>;
}

/** `page` with a script that measures it (and without the CSP that forbids scripts), opened in Chromium. */
const measure = (page: string): Measured => {
  const probe = page.replace(/\.html$/, '.measured.html');
  const script = `<script>
    const svg = document.querySelector('svg.timeline'), box = svg.getBoundingClientRect();
    const rows = [...document.querySelectorAll('g.pod-row')].map((g) => {
      const label = g.querySelector('text.label'), exit = g.querySelector('text.exit-code'), bars = [...g.querySelectorAll('rect[class^="s-"]')];
      const right = (e) => e.getBoundingClientRect().right - box.left;
      return { uuid: g.dataset.uuid, label: label.firstChild.textContent, labelRight: right(label), plotLeft: Math.min(...bars.map((b) => b.getBoundingClientRect().left - box.left)),
        ...(exit ? { exit: exit.textContent, exitRight: right(exit) } : {}) };
    });
    const out = document.createElement('pre');
    out.id = 'measured';
    out.textContent = JSON.stringify({ pageWidth: document.documentElement.scrollWidth, svgRight: box.right, rows });
    document.body.append(out);
  </script>`;
  writeFileSync(probe, readFileSync(page, 'utf8').replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, '').replace('</body>', `${script}</body>`));
  const json = /<pre id="measured">([^<]*)<\/pre>/.exec(dumpDom(probe))?.[1];
  if (json === undefined) throw new Error('the measuring script wrote nothing');
  return JSON.parse(json.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as Measured;
};

browserTest('long app names and exit 137: labels cut to their column with the state kept, exit codes inside the chart, a page as wide as the window', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-timeline-long-'));
  try {
    const app = 'frontend-proxy-and-backend-aggregator-with-a-very-long-name-indeed';
    const { uuids } = await writeSyntheticLog(dir, 10, { hostId: HOST, app, code: 137 });
    const page = join(dir, 'long.html');
    timeline(dir, ['--host-id', HOST, 'timeline', '--output', page]);
    const dom = look(t, page, 'long-names');
    t.deepEqual(rowsOf(dom), uuids);
    const m = measure(page);
    t.true(m.pageWidth <= 1400, `the page is ${m.pageWidth} px wide in a 1400 px window`);
    t.is(m.rows.length, uuids.length);
    for (const row of m.rows) {
      t.true(row.label.startsWith(`${row.uuid.slice(0, 8)} `), row.label);
      t.true(row.label.includes('…'), `the apps are cut: ${row.label}`);
      t.true(row.labelRight <= row.plotLeft, `${row.label}: ends at ${row.labelRight} px, its bars start at ${row.plotLeft} px`);
      if (row.exit !== undefined) t.true(row.exitRight! <= m.svgRight, `${row.exit} ends at ${row.exitRight} px, the chart at ${m.svgRight} px`);
    }
    // Pod 1 exited (synthetic.ts SHAPES) and is not collected: its label keeps its state and code, its exit code is drawn at the edge.
    const exited = m.rows.find((r) => r.uuid === uuids[1])!;
    t.regex(exited.label, / · exited \(exit 137\)$/);
    t.is(exited.exit, 'exit 137');
    t.true(dom.includes(`apps ${app}`), "the row's hover title has the apps whole");
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
