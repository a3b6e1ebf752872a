/**
 * The Trace Event Format's essentials, as Perfetto and chrome://tracing need them from a JSON trace:
 * every event has a phase, numeric pid and tid, and (but metadata) a timestamp in µs; a complete slice
 * has a duration; metadata names every process and thread used; and the slices of one thread nest
 * (Perfetto reads a slice that starts inside another and ends after it as a broken track).
 */

export interface TraceEvent {
  name: string;
  cat?: string;
  ph: string;
  ts?: number;
  dur?: number;
  pid: number;
  tid: number;
  s?: string;
  args?: Record<string, unknown>;
}

export interface Trace {
  traceEvents: TraceEvent[];
  displayTimeUnit?: string;
}

const PHASES = new Set(['X', 'B', 'E', 'i', 'I', 'M', 'C', 'b', 'n', 'e']);

/** What is wrong with a trace, one line each (none: it is well formed). */
export const traceProblems = (trace: Trace): string[] => {
  const problems: string[] = [];
  if (!Array.isArray(trace.traceEvents)) return ['traceEvents is not an array'];
  const named = { process: new Set<number>(), thread: new Set<string>() };
  const used = { process: new Set<number>(), thread: new Set<string>() };
  const slices = new Map<string, TraceEvent[]>();
  for (const [i, e] of trace.traceEvents.entries()) {
    const at = `event ${i} (${e.ph} ${e.name})`;
    if (!PHASES.has(e.ph)) problems.push(`${at}: phase ${JSON.stringify(e.ph)}`);
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid)) problems.push(`${at}: pid/tid not integers`);
    if (typeof e.name !== 'string') problems.push(`${at}: no name`);
    const thread = `${e.pid}/${e.tid}`;
    if (e.ph === 'M') {
      if (e.name === 'process_name' && typeof e.args?.name === 'string') named.process.add(e.pid);
      if (e.name === 'thread_name' && typeof e.args?.name === 'string') named.thread.add(thread);
      continue;
    }
    used.process.add(e.pid);
    used.thread.add(thread);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || e.ts < 0) problems.push(`${at}: ts ${String(e.ts)}`);
    if (e.ph === 'i' && !['t', 'p', 'g'].includes(e.s ?? 't')) problems.push(`${at}: scope ${String(e.s)}`);
    if (e.ph === 'X') {
      if (typeof e.dur !== 'number' || !(e.dur >= 0)) problems.push(`${at}: dur ${String(e.dur)}`);
      slices.set(thread, [...(slices.get(thread) ?? []), e]);
    }
  }
  for (const pid of used.process) if (!named.process.has(pid)) problems.push(`process ${pid} has no process_name`);
  for (const thread of used.thread) if (!named.thread.has(thread)) problems.push(`thread ${thread} has no thread_name`);
  for (const [thread, xs] of slices) {
    // Sorted as a viewer sorts them (start, then the longer first): each must end within every slice still open.
    const sorted = [...xs].sort((a, b) => a.ts! - b.ts! || b.dur! - a.dur!);
    const open: TraceEvent[] = [];
    for (const x of sorted) {
      while (open.length > 0 && open.at(-1)!.ts! + open.at(-1)!.dur! <= x.ts!) open.pop();
      const parent = open.at(-1);
      if (parent !== undefined && x.ts! + x.dur! > parent.ts! + parent.dur!) {
        problems.push(`thread ${thread}: ${x.name} [${x.ts}, ${x.ts! + x.dur!}] overlaps ${parent.name} [${parent.ts}, ${parent.ts! + parent.dur!}] without nesting`);
      }
      open.push(x);
    }
  }
  return problems;
};
