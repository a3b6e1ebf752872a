/**
 * In-process metrics of the event store, for any long-running process that embeds the engine: how long
 * this process's writes to the log take and how many meet a conflict. Only the process itself can time
 * its writes (the log records when an event was appended, not how long the append took), so these are
 * measured by a decorator over the store port rather than derived from the log. (The conflicts of every
 * host's commits are in the log too: api-service's podlog_store_conflicts_total.)
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { WrongExpectedVersion, type EventStore } from './store/port.js';

/** The port's writes: event appends, and projection saves (a compare-and-set on their checkpoint). */
const WRITES = new Set<string | symbol>(['append', 'appendMany', 'saveProjection']);

export const measuredStore = (store: EventStore, registry: Registry, { who = 'this process' } = {}): EventStore => {
  const seconds = new Histogram({
    name: 'podlog_process_store_write_seconds',
    help: `Time of the event log writes made by ${who} (append, appendMany, saveProjection), by operation`,
    labelNames: ['operation'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const conflicts = new Counter({
    name: 'podlog_process_store_conflicts_total',
    help: `Writes by ${who} that lost to another writer: a wrong expected version, or a projection checkpoint that moved`,
    labelNames: ['operation'],
    registers: [registry],
  });
  const measured = new Map<string | symbol, unknown>();
  const measure = (operation: string, write: (...args: unknown[]) => Promise<unknown>) => async (...args: unknown[]): Promise<unknown> => {
    const end = seconds.startTimer({ operation });
    try {
      const result = await write.apply(store, args);
      if (result === false) conflicts.inc({ operation });
      return result;
    } catch (e) {
      if (e instanceof WrongExpectedVersion) conflicts.inc({ operation });
      throw e;
    } finally {
      end();
    }
  };
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      // Bound once: the store's methods use `this`, which must be the store and not the proxy.
      if (!measured.has(property)) {
        const fn = value as (...args: unknown[]) => Promise<unknown>;
        measured.set(property, WRITES.has(property) ? measure(String(property), fn) : fn.bind(target));
      }
      return measured.get(property);
    },
  });
};
