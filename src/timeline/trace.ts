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
const trackName = (pod: PodLine): string => `${pod.uuid.slice(0, 8)} ${pod.apps.join(',') || '-'}`;

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
 * What a trace writes more than once, written once: a name (event types, states: a few dozen), a field's
 * quoted key, a recorder's `"pid":…,"verb":…` (one recorder per command, shared by its events).
 */
class Quoted {
  private readonly names = new Map<string, string>();
  private readonly keys = new Map<string, string>();
  private readonly recorders = new Map<Recorder, string>();

  name(name: string): string {
    let quoted = this.names.get(name);
    if (quoted === undefined) this.names.set(name, (quoted = str(name)));
    return quoted;
  }

  /** A field of the event: one named like args' own (PodStarted's pid) as `data.pid`, a JSON object's keys being one each. */
  key(name: string): string {
    let quoted = this.keys.get(name);
    if (quoted === undefined) this.keys.set(name, (quoted = str(OWN_KEYS.has(name) ? `data.${name}` : name)));
    return quoted;
  }

  recorder(r: Recorder): string {
    let text = this.recorders.get(r);
    if (text === undefined) this.recorders.set(r, (text = `"pid":${r.pid},"verb":${str(r.verb)}`));
    return text;
  }

  /** The args every event carries: where it is in the log and who recorded it, then its own fields (`fields`, written by the caller). */
  args(position: number, version: number, r: Recorder, fields: string): string {
    return `{"position":${position},"version":${version},${this.recorder(r)}${fields}}`;
  }

  fields(fields: Record<string, string | number | boolean>): string {
    let text = '';
    for (const key in fields) text += `,${this.key(key)}:${str(fields[key])}`;
    return text;
  }
}

const instant = (q: Quoted, m: Mark, ts: number, pid: number, tid: number): string => {
  const fields = m.reconciler === undefined ? q.fields(m.details) : `${q.fields(m.details)},${q.key('reconciler')}:${str(m.reconciler)}`;
  const cat = m.reconciler === undefined ? m.kind : `${m.kind},reconciler`;
  return `{"name":${q.name(m.type)},"cat":"${cat}","ph":"i","s":"t","ts":${ts},"pid":${pid},"tid":${tid},"args":${q.args(m.position, m.version, m.recorder, fields)}}`;
};

const slice = (q: Quoted, pod: PodLine, s: StateSlice, last: boolean, ts: number, dur: number, pid: number, tid: number): string => {
  const name = q.name(RKT_STATE_NAMES[s.state]);
  let fields = `,"state":${name},"event":${q.name(s.event)}`;
  if (s.open) fields += ',"open":true';
  if (last && pod.exitCode !== undefined) fields += `,"exitCode":${pod.exitCode}`;
  if (last && pod.broken !== undefined) fields += `,"broken":${str(pod.broken)}`;
  return `{"name":${name},"cat":"state","ph":"X","ts":${ts},"dur":${dur},"pid":${pid},"tid":${tid},"args":${q.args(s.position, s.version, s.recorder, fields)}}`;
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
  const q = new Quoted();
  for (const [i, pod] of timeline.pods.entries()) {
    const pid = hosts.get(pod.host ?? '')!;
    const tid = i + 1;
    events.push(`{"name":"thread_name","ph":"M","pid":${pid},"tid":${tid},"args":{"name":${str(trackName(pod))}}}`);
    events.push(`{"name":"thread_sort_index","ph":"M","pid":${pid},"tid":${tid},"args":{"sort_index":${i}}}`);
    // Each slice starts where it began, or 1 µs after the one before it; it ends where the next starts.
    const { slices } = pod;
    let ts = slices.length === 0 ? 0 : us(slices[0]!.start);
    for (let j = 0; j < slices.length; j++) {
      const s = slices[j]!;
      const last = j + 1 === slices.length;
      const end = last ? Math.max(ts, us(s.end)) : Math.max(us(slices[j + 1]!.start), ts + 1);
      events.push(slice(q, pod, s, last, ts, end - ts, pid, tid));
      ts = end;
    }
    for (const m of pod.marks) events.push(instant(q, m, us(m.time), pid, tid));
    pods.push(events.join(',\n'));
    events.length = 0;
  }
  const otherData = JSON.stringify({ origin: new Date(origin).toISOString(), generator: 'podlog timeline' });
  return `{"traceEvents":[\n${pods.join(',\n')}\n],"displayTimeUnit":"ms","otherData":${otherData}}\n`;
};
