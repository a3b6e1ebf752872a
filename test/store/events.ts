/**
 * Well-formed events for the event store's tests, its child processes (appender.ts) and its benchmark
 * (bench/store.ts).
 */
import { v7 as uuidv7 } from 'uuid';
import type { EventMetadata, NewEvent } from '../../src/store/port.js';

/** A well-formed event; `meta` fields can be overridden. */
export const newEvent = (type: string, data: Record<string, unknown> = {}, meta: Partial<EventMetadata> = {}): NewEvent => ({
  type,
  schema: 1,
  data,
  meta: {
    id: uuidv7(),
    time: new Date().toISOString(),
    host: 'test-host',
    pid: process.pid,
    user: 'root',
    command: ['run', 'busybox.aci'],
    correlationId: 'corr-1',
    ...meta,
  },
});
