/**
 * Prometheus metrics derived from the event log, fleet-wide (every host's events, when the log is
 * shared): they are counted by one pass over the log at start, then from its tail, so a restarted
 * service reports the same totals and a scrape never reads the log.
 *
 * - Effect durations: from an intent's time to the time of its first outcome (an outcome's causationId
 *   is its intent's event id, src/engine/engine.ts), for outcomes recorded by the intent's own command.
 * - Reconciler actions: an outcome recorded by another command than its intent's (another correlation
 *   id) is the reconciler's, since the command that records an intent records its outcomes unless it
 *   died first (src/engine/reconciler.ts): `aborted-prepare` for a PrepareAborted, `compensated` where
 *   that answer holds an EffectFailed, `finished` otherwise. Its time is not an effect's duration.
 * - Store conflicts: the appends that lost to another writer before a commit, which the engine records on
 *   the commit's first event (EventMetadata.conflicts), by the host that recorded it.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { RKT_STATE_NAMES } from '../../../machines/pod.js';
import { isPodEventType, POD_EVENTS, type EffectName } from '../../events/catalogue.js';
import type { RecordedEvent } from '../../store/port.js';
import type { PodTable } from './pod-table.js';

/** The host label of pods and events recorded before the log held host ids. */
export const UNKNOWN_HOST = 'unknown';

interface Intent {
  stream: string;
  time: number;
  correlationId: string;
  effect: EffectName;
  answered: boolean;
}

/** The events after which a pod can have no intent left to answer (a preparation's end closes PrepareRequested). */
const CLOSES_PREPARATION = new Set(['PodPrepared', 'PrepareAborted']);
const ENDS_POD = new Set(['PodDeleted', 'PodCompacted']);

export class LogMetrics {
  private readonly events: Counter<'type' | 'host'>;
  private readonly effectSeconds: Histogram<'effect'>;
  private readonly failures: Counter<'effect'>;
  private readonly reconciler: Counter<'action'>;
  private readonly conflicts: Counter<'host'>;
  /**
   * The intents that can still be answered, by event id: per pod its last intent, and its
   * PrepareRequested until the preparation ends (the reconciler aborts a preparation by answering it).
   */
  private readonly intents = new Map<string, Intent>();
  private readonly lastIntent = new Map<string, string>();
  private readonly preparation = new Map<string, string>();

  constructor(registry: Registry, table: PodTable) {
    new Gauge({
      name: 'podlog_pods',
      help: 'Pods that exist, by state (as list prints it) and by the host that prepared them',
      labelNames: ['state', 'host'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { row, host } of table.pods.values()) this.inc({ state: RKT_STATE_NAMES[row.state], host: host ?? UNKNOWN_HOST });
      },
    });
    this.events = new Counter({ name: 'podlog_events_total', help: 'Events in the log, by type and by the host they were recorded for', labelNames: ['type', 'host'], registers: [registry] });
    this.effectSeconds = new Histogram({
      name: 'podlog_effect_duration_seconds',
      help: "Effects, from the intent's time to its first outcome's, by effect (outcomes recorded by the reconciler are not counted)",
      labelNames: ['effect'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.failures = new Counter({ name: 'podlog_effect_failures_total', help: 'EffectFailed events, by effect', labelNames: ['effect'], registers: [registry] });
    this.reconciler = new Counter({
      name: 'podlog_reconciler_actions_total',
      help: "Intents answered by another command than the one that recorded them (the reconciler): finished, compensated or aborted-prepare",
      labelNames: ['action'],
      registers: [registry],
    });
    this.conflicts = new Counter({
      name: 'podlog_store_conflicts_total',
      help: 'Appends that lost to another writer (a wrong expected version) before the engine committed again, by the host that recorded the commit',
      labelNames: ['host'],
      registers: [registry],
    });
  }

  /** Counts a batch of events read in log order. */
  observe(batch: RecordedEvent[]): void {
    for (const [i, e] of batch.entries()) {
      this.events.inc({ type: e.type, host: e.meta.hostId ?? UNKNOWN_HOST });
      if (e.meta.conflicts !== undefined) this.conflicts.inc({ host: e.meta.hostId ?? UNKNOWN_HOST }, e.meta.conflicts);
      if (!isPodEventType(e.type)) continue;
      const entry = POD_EVENTS[e.type];
      if (e.type === 'EffectFailed') this.failures.inc({ effect: String(e.data.effect) });
      if (entry.kind === 'intent') this.opened(e, entry.effect!);
      else if (entry.kind === 'outcome' && e.meta.causationId !== undefined) this.answered(e, batch, i);
      if (CLOSES_PREPARATION.has(e.type) || ENDS_POD.has(e.type)) this.close(this.preparation, e.stream);
      if (ENDS_POD.has(e.type)) this.close(this.lastIntent, e.stream);
    }
  }

  private opened(e: RecordedEvent, effect: EffectName): void {
    const byStream = e.type === 'PrepareRequested' ? this.preparation : this.lastIntent;
    this.close(byStream, e.stream);
    byStream.set(e.stream, e.meta.id);
    this.intents.set(e.meta.id, { stream: e.stream, time: Date.parse(e.meta.time), correlationId: e.meta.correlationId, effect, answered: false });
  }

  private answered(e: RecordedEvent, batch: RecordedEvent[], i: number): void {
    const intent = this.intents.get(e.meta.causationId!);
    if (intent === undefined || intent.stream !== e.stream) return;
    if (e.meta.correlationId !== intent.correlationId) {
      if (intent.answered && e.type !== 'PrepareAborted') return;
      intent.answered = true;
      this.reconciler.inc({ action: e.type === 'PrepareAborted' ? 'aborted-prepare' : answerFailed(batch, i) ? 'compensated' : 'finished' });
      return;
    }
    if (intent.answered) return;
    intent.answered = true;
    this.effectSeconds.observe({ effect: intent.effect }, Math.max(0, Date.parse(e.meta.time) - intent.time) / 1000);
  }

  private close(byStream: Map<string, string>, stream: string): void {
    const id = byStream.get(stream);
    if (id === undefined) return;
    byStream.delete(stream);
    this.intents.delete(id);
  }
}

/** Whether the answer that batch[i] begins (the events after it of the same stream, cause and command) holds an EffectFailed. */
const answerFailed = (batch: RecordedEvent[], i: number): boolean => {
  const first = batch[i]!;
  for (let j = i; j < batch.length; j++) {
    const e = batch[j]!;
    if (e.stream !== first.stream || e.meta.causationId !== first.meta.causationId || e.meta.correlationId !== first.meta.correlationId) return false;
    if (e.type === 'EffectFailed') return true;
  }
  return false;
};
