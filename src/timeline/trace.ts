/**
 * A timeline as Chrome Trace Event JSON (`{"traceEvents": [...]}`), which Perfetto UI and
 * chrome://tracing open as it is: a process per host, a thread (track) per pod, one complete (`X`)
 * slice per state the pod was in, and instant (`i`) events for its intents, observations, failures and
 * the reconciler's answers.
 *
 * Times are µs after the timeline's start (its ISO time is in otherData.origin): both viewers show
 * times from the trace's first event anyway, and small numbers keep the file small. Perfetto reads JSON
 * traces on a best-effort basis and wants the slices of a track to nest; a pod's states follow each other,
 * but the log's times have millisecond resolution, so states entered within one millisecond would share
 * a start. Each slice therefore starts at least 1 µs after the one before it on its track and ends where
 * the next begins: none overlaps another, and none hides a zero-length one.
 */
import { RKT_STATE_NAMES } from '../../machines/pod.js';
import type { Mark, PodLine, Recorder, StateSlice, Timeline } from './model.js';

const US_PER_MS = 1000;

/** A pod's track name: its short UUID and its apps, as list shows them. */
export const trackName = (pod: PodLine): string => `${pod.uuid.slice(0, 8)} ${pod.apps.join(',') || '-'}`;

/** Hosts by id, numbered in the order their first pod appears (a trace's pid must be a number). */
const hostNumbers = (pods: PodLine[]): Map<string, number> => {
  const numbers = new Map<string, number>();
  for (const p of pods) if (!numbers.has(p.host ?? '')) numbers.set(p.host ?? '', numbers.size + 1);
  return numbers;
};

/**
 * Events are written as text, not through JSON.stringify of an object each: a trace of 10,000 pods has
 * 200,000 of them, and building and spreading their objects took most of its time. Strings from the log
 * still go through JSON.stringify (quoting); numbers are numbers.
 */
const str = JSON.stringify;

const OWN_KEYS = new Set(['position', 'version', 'pid', 'verb']);

/**
 * The args every event carries: where it is in the log and who recorded it, then its own fields (one
 * named like those, PodStarted's pid, as `data.pid`: a JSON object's keys are one each).
 */
const args = (position: number, version: number, r: Recorder, fields: Record<string, string | number | boolean>): string => {
  let text = `{"position":${position},"version":${version},"pid":${r.pid},"verb":${str(r.verb)}`;
  for (const key in fields) text += `,${str(OWN_KEYS.has(key) ? `data.${key}` : key)}:${str(fields[key])}`;
  return `${text}}`;
};

const instant = (m: Mark, ts: number, pid: number, tid: number): string => {
  const fields = m.reconciler === undefined ? m.details : { ...m.details, reconciler: m.reconciler };
  const cat = m.reconciler === undefined ? m.kind : `${m.kind},reconciler`;
  return `{"name":${str(m.type)},"cat":"${cat}","ph":"i","s":"t","ts":${ts},"pid":${pid},"tid":${tid},"args":${args(m.position, m.version, m.recorder, fields)}}`;
};

const slice = (pod: PodLine, s: StateSlice, last: boolean, ts: number, dur: number, pid: number, tid: number): string => {
  const name = str(RKT_STATE_NAMES[s.state]);
  const fields: Record<string, string | number | boolean> = { state: RKT_STATE_NAMES[s.state], event: s.event };
  if (s.open) fields.open = true;
  if (last && pod.exitCode !== undefined) fields.exitCode = pod.exitCode;
  if (last && pod.broken !== undefined) fields.broken = pod.broken;
  return `{"name":${name},"cat":"state","ph":"X","ts":${ts},"dur":${dur},"pid":${pid},"tid":${tid},"args":${args(s.position, s.version, s.recorder, fields)}}`;
};

export const traceOf = (timeline: Timeline): string => {
  const origin = timeline.start;
  const us = (ms: number): number => Math.round((ms - origin) * US_PER_MS);
  // Each pod's events are joined into one flat string at once: 200,000 event strings kept apart until
  // the end outlived the young generation, and collecting them took as long as writing them.
  const pods: string[] = [];
  const events: string[] = [];
  const hosts = hostNumbers(timeline.pods);
  for (const [host, pid] of hosts) {
    pods.push(JSON.stringify({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: host === '' ? 'host (not recorded)' : `host ${host}` } }));
  }
  for (const [i, pod] of timeline.pods.entries()) {
    const pid = hosts.get(pod.host ?? '')!;
    const tid = i + 1;
    events.push(JSON.stringify({ name: 'thread_name', ph: 'M', pid, tid, args: { name: trackName(pod) } }));
    events.push(JSON.stringify({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: i } }));
    const starts: number[] = [];
    for (const s of pod.slices) starts.push(Math.max(us(s.start), (starts.at(-1) ?? -Infinity) + 1));
    for (const [j, s] of pod.slices.entries()) {
      const ts = starts[j]!;
      const end = j + 1 < starts.length ? starts[j + 1]! : Math.max(ts, us(s.end));
      events.push(slice(pod, s, j + 1 === pod.slices.length, ts, end - ts, pid, tid));
    }
    for (const m of pod.marks) events.push(instant(m, us(m.time), pid, tid));
    pods.push(events.join(',\n'));
    events.length = 0;
  }
  const otherData = JSON.stringify({ origin: new Date(origin).toISOString(), generator: 'podlog timeline' });
  return `{"traceEvents":[\n${pods.join(',\n')}\n],"displayTimeUnit":"ms","otherData":${otherData}}\n`;
};
