/**
 * A child process for the SQLite store's multi-process tests (not a test file itself):
 *
 *   node --import=tsx test/store/appender.ts race <file> <stream> <count> <name>
 *     waits for a line on stdin, then makes <count> successful appends of one event to <stream>, each with
 *     the exact expected version it just read; on WrongExpectedVersion it re-reads and retries. Prints
 *     {"name","successes","conflicts","untyped"} as JSON.
 *   node --import=tsx test/store/appender.ts batches <file> <batchSize> <streams>
 *     appends batches of <batchSize> events round-robin to <streams> streams (s0, s1, …) until killed
 *     (at most 60 s); prints "started" after the first commit.
 *   node --import=tsx test/store/appender.ts once <file> <stream> <delayMs>
 *     waits, appends one event, prints {"position"} as JSON.
 *   node --import=tsx test/store/appender.ts wait-and-exit <file>
 *     waits for a change with a signal aborted after 50 ms, closes nothing, and returns: the process must exit
 *     on its own (no timer left behind).
 *   node --import=tsx test/store/appender.ts hold-lock <file> <stream> <ms>
 *     takes the write lock, prints "locked", holds it <ms>, appends one raw event to <stream>, commits.
 */
import Database from 'better-sqlite3';
import { createInterface } from 'node:readline';
import { v7 as uuidv7 } from 'uuid';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { WrongExpectedVersion, type NewEvent } from '../../src/store/port.js';
import { newEvent } from './events.js';

const event = (type: string, data: Record<string, unknown>): NewEvent =>
  newEvent(type, data, { host: 'test', command: process.argv.slice(2), correlationId: 'appender' });

const [mode, file, ...args] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: appender.ts <mode> <file> …');

const firstLine = (): Promise<void> =>
  new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', () => {
      rl.close();
      resolve();
    });
  });

switch (mode) {
  case 'race': {
    const [stream = 'pod-race', countArg = '200', name = 'writer'] = args;
    const count = Number(countArg);
    const store = await openSqliteStore(file);
    process.stdout.write('ready\n');
    await firstLine();
    let successes = 0;
    let conflicts = 0;
    let untyped = 0;
    while (successes < count) {
      const version = await store.streamVersion(stream);
      try {
        await store.append(stream, [event('Raced', { name, n: successes })], version);
        successes++;
      } catch (e) {
        if (e instanceof WrongExpectedVersion && e.stream === stream && e.expected === version && e.actual > version) conflicts++;
        else {
          untyped++;
          process.stderr.write(`unexpected error: ${String(e)}\n`);
          if (untyped > 10) break;
        }
      }
    }
    await store.close();
    process.stdout.write(`${JSON.stringify({ name, successes, conflicts, untyped })}\n`);
    break;
  }
  case 'batches': {
    const batchSize = Number(args[0] ?? '500');
    const streams = Number(args[1] ?? '3');
    const store = await openSqliteStore(file);
    const versions = new Map<string, number>();
    const payload = 'x'.repeat(200);
    const deadline = Date.now() + 60_000;
    for (let batch = 0; Date.now() < deadline; batch++) {
      const stream = `s${batch % streams}`;
      const version = versions.get(stream) ?? 0;
      const events = Array.from({ length: batchSize }, (_, i) => event('Batched', { batch, i, payload }));
      await store.append(stream, events, version);
      versions.set(stream, version + batchSize);
      if (batch === 0) process.stdout.write('started\n');
    }
    await store.close();
    break;
  }
  case 'once': {
    const [stream = 'pod-once', delay = '200'] = args;
    const store = await openSqliteStore(file);
    await new Promise((r) => setTimeout(r, Number(delay)));
    const r = await store.append(stream, [event('Once', {})], 'any');
    await store.close();
    process.stdout.write(`${JSON.stringify({ position: r.position })}\n`);
    break;
  }
  case 'wait-and-exit': {
    const store = await openSqliteStore(file);
    const head = await store.headPosition();
    await store.waitForChange(head, AbortSignal.timeout(50));
    // A second wait that ends through a commit of its own.
    const ac = new AbortController();
    const woken = store.waitForChange(head, ac.signal);
    await store.append('pod-exit', [event('Exit', {})], 'any');
    await woken;
    process.stdout.write('waited\n');
    break; // the store is left open on purpose: an open store must not keep the process alive
  }
  case 'hold-lock': {
    // Holds the write lock for <ms> (like a slow writer in another process), appending one raw event to
    // <stream> (which must exist) before it commits.
    const [stream = 'pod-a', ms = '300'] = args;
    const db = new Database(file);
    db.pragma('busy_timeout = 5000');
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\n');
    await new Promise((r) => setTimeout(r, Number(ms)));
    const v = (db.prepare('SELECT version FROM streams WHERE stream = ?').pluck().get(stream) as number) + 1;
    const pos = db
      .prepare("INSERT INTO events (stream, version, id, type, schema, time_ms, data, meta) VALUES (?, ?, ?, 'Held', 1, 0, '{}', '{}')")
      .run(stream, v, uuidv7()).lastInsertRowid;
    db.prepare('UPDATE streams SET version = ?, position = ? WHERE stream = ?').run(v, pos, stream);
    db.exec('COMMIT');
    db.close();
    process.stdout.write('committed\n');
    break;
  }
  default:
    throw new Error(`unknown mode ${String(mode)}`);
}
