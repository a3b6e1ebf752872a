/** openStore: what a data dir's log is opened as, and with which file modes it is created. */
import test from 'ava';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { newEvent } from './events.js';

const withParent = async (fn: (parent: string) => Promise<void>): Promise<void> => {
  const parent = mkdtempSync(join(tmpdir(), 'podlog-open-'));
  try {
    await fn(parent);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
};

const mode = (path: string): number => statSync(path).mode & 0o777;

test('a write creates the data dir 0700 and the log, its -wal and -shm 0600', async (t) => {
  await withParent(async (parent) => {
    const dir = join(parent, 'data');
    const previous = process.umask(0o022);
    try {
      const store = await openStore(dir);
      try {
        await store.append('pod-a', [newEvent('Created')], 'no_stream');
        t.is(mode(dir), 0o700);
        t.deepEqual(readdirSync(dir).sort(), ['events.db', 'events.db-shm', 'events.db-wal']);
        for (const f of readdirSync(dir)) t.is(mode(join(dir, f)), 0o600, f);
      } finally {
        await store.close();
      }
    } finally {
      process.umask(previous);
    }
  });
});

test('a log left 0644 by an older podlog is made 0600 by the next write', async (t) => {
  await withParent(async (dir) => {
    await (await openStore(dir)).close();
    const file = join(dir, 'events.db');
    chmodSync(file, 0o644);
    const store = await openStore(dir);
    await store.close();
    t.is(mode(file), 0o600);
  });
});

test('read and inspect see a missing or 0-byte log as empty and create nothing; an existing log is read', async (t) => {
  await withParent(async (parent) => {
    const dir = join(parent, 'data');
    for (const access of ['read', 'inspect'] as const) {
      const store = await openStore(dir, { access });
      t.is(await store.headPosition(), 0);
      t.deepEqual(await store.listStreams(), []);
      await store.close();
    }
    t.deepEqual(readdirSync(parent), []);
    const writer = await openStore(dir);
    await writer.append('pod-a', [newEvent('Created')], 'no_stream');
    await writer.close();
    for (const access of ['read', 'inspect'] as const) {
      const store = await openStore(dir, { access });
      t.deepEqual((await store.readStream('pod-a')).map((e) => e.type), ['Created'], access);
      await store.close();
    }
    const zero = join(parent, 'zero');
    await (await openStore(zero)).close();
    writeFileSync(join(zero, 'events.db'), '');
    for (const access of ['read', 'inspect'] as const) {
      const store = await openStore(zero, { access });
      t.is(await store.headPosition(), 0);
      await store.close();
    }
    t.deepEqual(readdirSync(zero), ['events.db']);
    t.is(statSync(join(zero, 'events.db')).size, 0);
  });
});
