/**
 * Prometheus metrics derived from the event log, fleet-wide (every host's events, when the log is
 * shared): they are counted by one pass over the log at start, then from its tail, so a restarted
 * service reports the same totals and a scrape never reads the log.
 *
 * - Effect durations: from an intent's time to the time of its first outcome, for outcomes recorded by
 *   the intent's own command; reconciler actions: the intents another command (the reconciler) answered,
 *   and how. Which intent an outcome answers, and whose answer it is: src/engine/intent-answers.ts.
 * - Store conflicts: the appends that lost to another writer before a commit, which the engine records on
 *   the commit's first event (EventMetadata.conflicts), by the host that recorded it.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { RKT_STATE_NAMES } from '../../../machines/pod.js';
import { IntentAnswers } from '../../engine/intent-answers.js';
import type { RecordedEvent } from '../../store/port.js';
import type { PodTable } from './pod-table.js';

/** The host label of pods and events recorded before the log held host ids. */
export const UNKNOWN_HOST = 'unknown';

export class LogMetrics {
  private readonly events: Counter<'type' | 'host'>;
  private readonly effectSeconds: Histogram<'effect'>;
  private readonly failures: Counter<'effect'>;
  private readonly reconciler: Counter<'action'>;
  private readonly conflicts: Counter<'host'>;
  private readonly answers = new IntentAnswers();

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
      if (e.type === 'EffectFailed') this.failures.inc({ effect: String(e.data.effect) });
      const answer = this.answers.read(batch, i);
      if (answer?.by === 'reconciler') this.reconciler.inc({ action: answer.action });
      else if (answer?.by === 'own') this.effectSeconds.observe({ effect: answer.intent.effect }, Math.max(0, Date.parse(e.meta.time) - Date.parse(answer.intent.time)) / 1000);
    }
  }
}
