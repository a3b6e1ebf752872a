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
import type { Mark, PodLine, Recorder, Timeline } from './model.js';

const US_PER_MS = 1000;

/** A pod's track name: its short UUID and its apps, as list shows them. */
export const trackName = (pod: PodLine): string => `${pod.uuid.slice(0, 8)} ${pod.apps.join(',') || '-'}`;

/** Hosts by id, numbered in the order their first pod appears (a trace's pid must be a number). */
const hostNumbers = (pods: PodLine[]): Map<string, number> => {
  const numbers = new Map<string, number>();
  for (const p of pods) if (!numbers.has(p.host ?? '')) numbers.set(p.host ?? '', numbers.size + 1);
  return numbers;
};

const recorded = (r: Recorder) => ({ pid: r.pid, verb: r.verb });

const instant = (m: Mark, ts: number, pid: number, tid: number): string =>
  JSON.stringify({
    name: m.type,
    cat: m.reconciler === undefined ? m.kind : `${m.kind},reconciler`,
    ph: 'i',
    s: 't',
    ts,
    pid,
    tid,
    args: { position: m.position, version: m.version, ...m.details, ...(m.reconciler === undefined ? {} : { reconciler: m.reconciler }), ...recorded(m.recorder) },
  });

export const traceOf = (timeline: Timeline): string => {
  const origin = timeline.start;
  const us = (ms: number): number => Math.round((ms - origin) * US_PER_MS);
  const events: string[] = [];
  const hosts = hostNumbers(timeline.pods);
  for (const [host, pid] of hosts) {
    events.push(JSON.stringify({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: host === '' ? 'host (not recorded)' : `host ${host}` } }));
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
      events.push(
        JSON.stringify({
          name: RKT_STATE_NAMES[s.state],
          cat: 'state',
          ph: 'X',
          ts,
          dur: end - ts,
          pid,
          tid,
          args: {
            state: RKT_STATE_NAMES[s.state],
            event: s.event,
            position: s.position,
            version: s.version,
            ...recorded(s.recorder),
            ...(s.open ? { open: true } : {}),
            ...(j + 1 === pod.slices.length && pod.exitCode !== undefined ? { exitCode: pod.exitCode } : {}),
            ...(j + 1 === pod.slices.length && pod.broken !== undefined ? { broken: pod.broken } : {}),
          },
        }),
      );
    }
    for (const m of pod.marks) events.push(instant(m, us(m.time), pid, tid));
  }
  const otherData = JSON.stringify({ origin: new Date(origin).toISOString(), generator: 'podlog timeline' });
  return `{"traceEvents":[\n${events.join(',\n')}\n],"displayTimeUnit":"ms","otherData":${otherData}}\n`;
};
