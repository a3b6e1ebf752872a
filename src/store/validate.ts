/**
 * Input checks shared by the store adapters, so that every adapter refuses the same bad input with the same
 * error (ESTORE_BAD_INPUT) before anything reaches the database.
 */
import { PodlogError } from '../errors.js';
import type { ExpectedVersion, NewEvent, ProjectionUpdate, StreamAppend, StreamCompaction } from './port.js';

export const badInput = (message: string): PodlogError => new PodlogError('ESTORE_BAD_INPUT', message);

/** What every adapter refuses: any call once closed, and a write (`what`) when opened read-only. */
export const checkUsable = (store: { closed: boolean; readonly: boolean; location: string }, what?: string): void => {
  if (store.closed) throw new PodlogError('ESTORE_CLOSED', `the event store ${store.location} is closed`);
  if (what !== undefined && store.readonly) {
    throw new PodlogError('ESTORE_READONLY', `cannot ${what}: the event store ${store.location} was opened read-only`);
  }
};

/** ISO 8601 → Unix milliseconds, or ESTORE_BAD_INPUT naming what was wrong. */
export const parseTime = (value: unknown, what: string): number => {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw badInput(`${what} is not an ISO 8601 time: ${JSON.stringify(value)}`);
  return ms;
};

export const checkStream = (stream: unknown): string => {
  if (typeof stream !== 'string' || stream.length === 0) {
    throw badInput(`a stream name must be a non-empty string, not ${JSON.stringify(stream)}`);
  }
  return stream;
};

/** An event checked and turned into what a row stores (the JSON work happens before any lock is taken). */
export interface SerialisedEvent {
  id: string;
  type: string;
  schema: number;
  /** meta.time as Unix milliseconds. */
  timeMs: number;
  /** JSON text. */
  data: string;
  /** JSON text of the whole EventMetadata. */
  meta: string;
}

const json = (value: unknown, where: string): string => {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw badInput(`${where} cannot be stored as JSON: ${(err as Error).message}`);
  }
};

/** The type, schema and data of an event (or a tombstone), checked; `data` as JSON text. */
export const serialiseBody = (e: Pick<NewEvent, 'type' | 'schema' | 'data'>, where: string): Pick<SerialisedEvent, 'type' | 'schema' | 'data'> => {
  if (e === null || typeof e !== 'object') throw badInput(`${where} is not an object`);
  if (typeof e.type !== 'string' || e.type.length === 0) throw badInput(`${where} has no type`);
  if (!Number.isInteger(e.schema)) throw badInput(`${where} (${e.type}) has no integer schema version`);
  if (e.data === null || typeof e.data !== 'object' || Array.isArray(e.data)) {
    throw badInput(`${where} (${e.type}): data must be an object`);
  }
  return { type: e.type, schema: e.schema, data: json(e.data, `${where} (${e.type})`) };
};

export const serialiseEvent = (stream: string, e: NewEvent, i: number): SerialisedEvent => {
  const where = `event ${i} of the append to ${stream}`;
  const body = serialiseBody(e, where);
  const meta = e.meta;
  if (meta === null || typeof meta !== 'object') throw badInput(`${where} (${e.type}) has no metadata`);
  if (typeof meta.id !== 'string' || meta.id.length === 0) throw badInput(`${where} (${e.type}) has no event id`);
  const timeMs = parseTime(meta.time, `the time of ${where} (${e.type})`);
  return { ...body, id: meta.id, timeMs, meta: json(meta, `${where} (${e.type})`) };
};

/** The events of one append, checked and serialised. */
export const serialiseEvents = (stream: string, events: NewEvent[]): SerialisedEvent[] => {
  checkStream(stream);
  if (!Array.isArray(events)) throw badInput(`the events appended to ${stream} must be an array`);
  return events.map((e, i) => serialiseEvent(stream, e, i));
};

/** One stream's part of an appendMany, checked: its events serialised. */
export interface SerialisedAppend {
  stream: string;
  expected: ExpectedVersion;
  rows: SerialisedEvent[];
}

export const checkAppends = (appends: StreamAppend[]): SerialisedAppend[] => {
  if (!Array.isArray(appends)) throw badInput('the appends of an appendMany must be an array');
  const seen = new Set<string>();
  return appends.map((a, i) => {
    if (a === null || typeof a !== 'object') throw badInput(`append ${i} of an appendMany is not an object`);
    const rows = serialiseEvents(a.stream, a.events);
    if (seen.has(a.stream)) throw badInput(`${a.stream} is named twice in one appendMany`);
    seen.add(a.stream);
    return { stream: a.stream, expected: a.expected, rows };
  });
};

/** A refused duplicate event id: nothing of the append (to `streams`) was written. */
export const duplicateEvent = (streams: string[], ids: string[], cause: unknown): PodlogError =>
  new PodlogError(
    'ESTORE_DUPLICATE_EVENT',
    `append to ${streams.join(', ')} refused: an event id is already in the log (${ids.join(', ')}); nothing was written`,
    { cause },
  );

/**
 * A projection row as saved: its key, what loading every row returns (its summary, or the row itself
 * when saved without one), and the whole row when that is a summary (null otherwise).
 */
export type SavedRow = [key: string, listed: string, whole: string | null];

export const serialiseRows = <Row>(update: ProjectionUpdate<Row>): SavedRow[] => {
  const rows: SavedRow[] = [];
  for (const [key, row] of update.upserts) {
    const text = json(row, `row ${key} of the projection ${update.name}`);
    const summary = update.summarise === undefined ? null : json(update.summarise(row), `the summary of row ${key} of the projection ${update.name}`);
    if (text === undefined || summary === undefined) throw badInput(`row ${key} of the projection ${update.name} cannot be stored as JSON`);
    rows.push(summary === null ? [key, text, null] : [key, summary, text]);
  }
  return rows;
};

/** A checked compaction: the tombstone serialised. */
export interface SerialisedCompaction extends Pick<SerialisedEvent, 'type' | 'schema' | 'data'> {
  stream: string;
  expected: number;
}

export const checkCompactions = (compactions: StreamCompaction[]): SerialisedCompaction[] => {
  if (!Array.isArray(compactions)) throw badInput('the streams to compact must be an array');
  const seen = new Set<string>();
  return compactions.map((c, i) => {
    if (c === null || typeof c !== 'object') throw badInput(`compaction ${i} is not an object`);
    const stream = checkStream(c.stream);
    if (seen.has(stream)) throw badInput(`${stream} is named twice in one compaction`);
    seen.add(stream);
    if (!Number.isInteger(c.expected) || c.expected < 1) {
      throw badInput(`the expected version of ${stream} must be a stream's version (1 or more), not ${JSON.stringify(c.expected)}`);
    }
    return { stream, expected: c.expected, ...serialiseBody(c.tombstone, `the tombstone of ${stream}`) };
  });
};

/**
 * The smallest string greater than every string that starts with `prefix` in UTF-8 byte order (= code point
 * order), or undefined when the last UTF-16 unit cannot simply be incremented (a surrogate, U+D7FF, U+FFFF).
 * Lets a prefix filter be an index range `name >= prefix AND name < upper`, with no LIKE escaping.
 */
export const prefixUpperBound = (prefix: string): string | undefined => {
  if (prefix.length === 0) return undefined;
  const last = prefix.charCodeAt(prefix.length - 1);
  if ((last >= 0xd7ff && last <= 0xdfff) || last >= 0xffff) return undefined;
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
};
