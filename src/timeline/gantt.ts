/**
 * A timeline as a Gantt chart in SVG: a row per pod (its short UUID, apps, state and exit code), a bar
 * per state it was in, coloured by state, with a legend; failed effects, the reconciler's answers and
 * non-zero exits marked on the row; a time axis in the unit the span calls for; every bar and mark
 * with a hover title giving the event behind it. Intents are left to the trace: drawn here they would
 * smear every row. Rows shrink as pods are added (24 px for up to 125, 10 px from 300 on, labels in 8 px
 * type there), so 1 pod and 500 both read. Rows and the legend carry stable markers (class="pod-row" data-uuid, class="legend").
 */
import { RKT_STATE_NAMES, type PodStateName } from '../../machines/pod.js';
import { esc, iso } from './markup.js';
import type { Mark, PodLine, Recorder, StateSlice, Timeline } from './model.js';
import { humanDuration, ticks } from './time-axis.js';

const WIDTH = 1400;
const LABEL = 300;
/** Room right of the plot for a pod's `exit NNN` after its last bar. */
const RIGHT = 64;
/** Left margin of a row's label, and the gap between it and the plot. */
const LABEL_X = 8;
const LABEL_GAP = 8;
const PLOT = WIDTH - LABEL - RIGHT;
const TOP = 96;
const BOTTOM = 28;

/** Colours people can tell apart, warm while the pod is on its way, grey once it is over. */
const COLOURS: Record<Exclude<PodStateName, 'embryo'>, string> = {
  preparing: '#f2b134',
  prepared: '#6fa8dc',
  running: '#3c9d4e',
  exited: '#8e8e8e',
  abortedPrepare: '#d9534f',
  exitedGarbage: '#b9b9b9',
  garbage: '#c9b8a6',
  deleting: '#8d6e63',
  deleted: '#4a4a4a',
};

const STYLE = [
  'text{font-family:DejaVu Sans,Verdana,sans-serif;fill:#222}',
  '.title{font-size:15px;font-weight:bold}.sub{font-size:12px;fill:#555}',
  '.legend text{font-size:12px}.axis text{font-size:11px;fill:#444}.grid{stroke:#ddd;stroke-width:1}',
  '.stripe{fill:#f4f6f8}.label{fill:#222}.open{stroke:#222;stroke-dasharray:2 2}',
  '.failure{fill:#c62828;stroke:#fff;stroke-width:.5}.reconciler{fill:#6a1b9a;stroke:#fff;stroke-width:.5}.exit{fill:#111}',
  ...Object.entries(COLOURS).map(([state, colour]) => `.s-${state}{fill:${colour}}`),
].join('');

/** Row height by the number of rows: 24 px for up to 125 rows, then about 3,000 px in all, 10 px at least (8 px labels). */
const rowHeight = (rows: number): number => Math.max(10, Math.min(24, Math.floor(3000 / Math.max(rows, 1))));

const num = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/**
 * Hover titles are markup: only their parts from the log are escaped (the whole of each of a large
 * chart's 80,000 titles went through esc), and a recorder's text, shared by its command's events, once.
 */
const recorderTexts = new WeakMap<Recorder, string>();
const recorderText = (r: Recorder): string => {
  let text = recorderTexts.get(r);
  if (text === undefined) recorderTexts.set(r, (text = esc(`pid ${r.pid} (${r.verb})`)));
  return text;
};

const sliceTitle = (short: string, s: StateSlice): string =>
  `${short}: ${RKT_STATE_NAMES[s.state]} for ${humanDuration(s.end - s.start)}${s.open ? ', still' : ''}\n` +
  `from ${iso(s.start)} to ${iso(s.end)}${s.open ? " (the timeline's end)" : ''}\n` +
  `entered by ${esc(s.event)} (position ${s.position}, version ${s.version}), recorded by ${recorderText(s.recorder)}`;

const markTitle = (m: Mark): string => {
  let title = `${esc(m.type)}${m.reconciler === undefined ? '' : ` (reconciler: ${m.reconciler})`} at ${iso(m.time)}\n` + `position ${m.position}, version ${m.version}, recorded by ${recorderText(m.recorder)}`;
  for (const key in m.details) title += `\n${esc(key)}=${esc(String(m.details[key]))}`;
  return title;
};

/**
 * Advance widths in em of DejaVu Sans (the chart's first font; Verdana, its fallback, is as wide), by
 * character class, each rounded up: enough to keep a label out of the plot without measuring it.
 */
const NARROW = /[ ijlftrI.,:;'|!()[\]{}·\-]/;
const WIDE = /[mwMW@%…—]/;
const emOf = (c: string): number => (NARROW.test(c) ? 0.42 : WIDE.test(c) ? 1.02 : /[A-Z]/.test(c) ? 0.78 : 0.66);
/** ASCII's, looked up: a chart of 10,000 rows measures half a million characters. */
const ASCII_EM = Float64Array.from({ length: 128 }, (_, code) => emOf(String.fromCharCode(code)));
const textWidth = (text: string, size: number): number => {
  let em = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    em += code < 128 ? ASCII_EM[code]! : emOf(text[i]!);
  }
  return em * size;
};

/**
 * A row's label, at most `width` px wide in `size` px type: the short UUID and the final state (and exit
 * code) are always whole; the apps are cut with … to fit (the row's hover title has them all).
 */
const podLabel = (pod: PodLine, size = 12, width = LABEL - LABEL_X - LABEL_GAP): string => {
  const head = `${pod.uuid.slice(0, 8)} `;
  const tail = ` · ${RKT_STATE_NAMES[pod.state]}${pod.exitCode === undefined ? '' : ` (exit ${pod.exitCode})`}${pod.broken === undefined ? '' : ' · broken'}`;
  const apps = pod.apps.join(',') || '-';
  const room = width - textWidth(head + tail, size);
  if (textWidth(apps, size) <= room) return head + apps + tail;
  let cut = '';
  for (const c of apps) {
    if (textWidth(`${cut}${c}…`, size) > room) break;
    cut += c;
  }
  return `${head}${cut}…${tail}`;
};

const podTitle = (pod: PodLine): string =>
  [
    `pod ${pod.uuid}`,
    `host ${pod.host ?? '(not recorded)'}`,
    `apps ${pod.apps.join(', ') || '-'}`,
    `state ${RKT_STATE_NAMES[pod.state]}${pod.exitCode === undefined ? '' : `, exit code ${pod.exitCode}`}`,
    ...(pod.broken === undefined ? [] : [`broken: ${pod.broken}`]),
  ].join('\n');

/** A failure is a triangle pointing down at its time, a reconciler's answer a diamond, a non-zero exit a bar. */
const markShape = (m: Mark, x: number, h: number): string | undefined => {
  const r = Math.max(3, h / 2 - 1);
  const mid = h / 2;
  // Most marks (intents, zero exits) are not drawn: their titles are not written either.
  const title = (): string => `<title>${markTitle(m)}</title>`;
  if (m.kind === 'failure') return `<path class="failure" d="M${num(x - r)} ${num(mid - r)}H${num(x + r)}L${num(x)} ${num(mid + r)}Z">${title()}</path>`;
  if (m.reconciler !== undefined) return `<path class="reconciler" d="M${num(x)} ${num(mid - r)}L${num(x + r)} ${num(mid)}L${num(x)} ${num(mid + r)}L${num(x - r)} ${num(mid)}Z">${title()}</path>`;
  if (m.kind === 'observation' && typeof m.details.code === 'number' && m.details.code !== 0) {
    return `<rect class="exit" x="${num(x - 1)}" y="0" width="2" height="${h}">${title()}</rect>`;
  }
  return undefined;
};

const legend = (): string => {
  const items: string[] = [];
  let x = 0;
  const item = (swatch: string, text: string): void => {
    items.push(`<g transform="translate(${x},0)">${swatch}<text x="16" y="11">${esc(text)}</text></g>`);
    x += 24 + text.length * 7;
  };
  for (const [state, name] of Object.entries(RKT_STATE_NAMES)) {
    if (state !== 'embryo') item(`<rect class="s-${state}" width="12" height="12"/>`, name);
  }
  item('<path class="failure" d="M0 1H12L6 12Z"/>', 'effect failed');
  item('<path class="reconciler" d="M6 0L12 6L6 12L0 6Z"/>', 'reconciler');
  item('<rect class="exit" x="5" width="2" height="12"/>', 'non-zero exit');
  return `<g class="legend" transform="translate(10,36)">${items.join('')}</g>`;
};

export const ganttSvg = (timeline: Timeline): string => {
  const { pods, start } = timeline;
  const span = Math.max(1, timeline.end - start);
  const h = rowHeight(pods.length);
  const height = TOP + pods.length * h + BOTTOM;
  const x = (t: number): number => LABEL + ((t - start) / span) * PLOT;
  const font = Math.min(12, h - 2);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    `<style>${STYLE}</style>`,
    `<text class="title" x="10" y="20">podlog timeline: ${pods.length} ${pods.length === 1 ? 'pod' : 'pods'}</text>`,
    `<text class="sub" x="${LABEL}" y="20">${pods.length === 0 ? `no pod of the log matches${timeline.end > start ? ` from ${iso(start)} to ${iso(timeline.end)}` : ''}` : esc(`${iso(start)} to ${iso(start + span)} (${humanDuration(span)}); times on the axis are after the start`)}</text>`,
    legend(),
  ];
  const axis: string[] = [];
  // An empty timeline without a window is an instant: no axis. With one, its window's.
  for (const tick of pods.length === 0 && timeline.end <= start ? [] : ticks(span)) {
    const tx = num(x(start + tick.offset));
    axis.push(`<line class="grid" x1="${tx}" x2="${tx}" y1="${TOP - 4}" y2="${height - BOTTOM + 4}"/>`);
    axis.push(`<text x="${tx}" y="${TOP - 8}" text-anchor="middle">${tick.label}</text>`, `<text x="${tx}" y="${height - BOTTOM + 18}" text-anchor="middle">${tick.label}</text>`);
  }
  parts.push(`<g class="axis">${axis.join('')}</g>`);
  for (const [i, pod] of pods.entries()) {
    const row: string[] = [`<g class="pod-row" data-uuid="${esc(pod.uuid)}" data-state="${pod.state}" transform="translate(0,${TOP + i * h})">`];
    if (i % 2 === 1) row.push(`<rect class="stripe" width="${WIDTH}" height="${h}"/>`);
    row.push(`<text class="label" x="${LABEL_X}" y="${num(h / 2 + font * 0.36)}" font-size="${font}">${esc(podLabel(pod, font))}<title>${esc(podTitle(pod))}</title></text>`);
    const short = esc(pod.uuid.slice(0, 8));
    for (const s of pod.slices) {
      const x0 = x(s.start);
      // A state held for less than a pixel (an exit recorded as the pod was collected) still shows.
      const w = Math.max(1, x(s.end) - x0);
      row.push(`<rect class="s-${s.state}${s.open ? ' open' : ''}" x="${num(x0)}" y="1" width="${num(w)}" height="${h - 2}"><title>${sliceTitle(short, s)}</title></rect>`);
    }
    const last = pod.slices.at(-1);
    if (pod.exitCode !== undefined && last !== undefined) {
      // After the last bar, or, where that would run past the chart's edge (a long exit code), inside it.
      const text = `exit ${pod.exitCode}`;
      const at = Math.min(x(last.end) + 4, WIDTH - 2 - textWidth(text, font));
      row.push(`<text class="exit-code" x="${num(at)}" y="${num(h / 2 + font * 0.36)}" font-size="${font}">${text}</text>`);
    }
    for (const m of pod.marks) {
      const shape = markShape(m, x(m.time), h);
      if (shape !== undefined) row.push(shape);
    }
    row.push('</g>');
    parts.push(row.join(''));
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
};
