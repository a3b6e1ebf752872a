import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { commandContext } from '../../src/events/metadata.js';
import { PodEngine } from '../../src/engine/engine.js';
import { reconcilePod } from '../../src/engine/reconciler.js';
import { openStore } from '../../src/store/open.js';
import { WrongExpectedVersion } from '../../src/store/port.js';
import { isPodlogError } from '../../src/errors.js';
import { tempDataDir } from '../helpers/store.js';
import { repoRoot } from '../helpers/fixtures.js';
import { fakeEffects } from './fake-effects.js';
import { prepareData, preparePod, START } from './samples.js';

const ctx = () => commandContext(['test', 'engine']);


test('an intent is followed by its outcome, caused by it and correlated with the command', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const engine = new PodEngine(store, fakeEffects(join(dir, 'world')), ctx());
    const uuid = await preparePod(engine);
    const view = await engine.request(uuid, 'Stage1StartRequested', START);
    t.is(view.state, 'running');
    t.is(view.context.pid, process.pid);
    t.is(view.context.pending, undefined);
    const history = await engine.history(uuid);
    const intent = history.find((e) => e.type === 'Stage1StartRequested')!;
    const outcome = history.find((e) => e.type === 'PodStarted')!;
    t.is(outcome.version, intent.version + 1);
    t.is(outcome.meta.causationId, intent.meta.id);
    t.is(new Set(history.map((e) => e.meta.correlationId)).size, 1);
    t.deepEqual(history.map((e) => e.version), history.map((_, i) => i + 1));
    t.deepEqual(intent.meta.command, ['test', 'engine']);
    t.is(intent.meta.pid, process.pid);
  } finally {
    await cleanup();
  }
});

test('a failed effect is recorded as EffectFailed, closes the intent, and the step can be retried', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const uuid = await preparePod(new PodEngine(store, fakeEffects(join(dir, 'world')), ctx()));
    const failing = new PodEngine(store, fakeEffects(join(dir, 'world'), { failing: ['startStage1'] }), ctx());
    const error = await t.throwsAsync(failing.request(uuid, 'Stage1StartRequested', START));
    t.is((error as { code?: string }).code, 'EFAKE');
    const view = await failing.load(uuid);
    t.is(view.state, 'prepared');
    t.is(view.context.pending, undefined);
    t.deepEqual(view.context.lastFailure, { effect: 'startStage1', code: 'EFAKE', message: 'startStage1 failed on purpose' });
    const retried = await new PodEngine(store, fakeEffects(join(dir, 'world')), ctx()).request(uuid, 'Stage1StartRequested', START);
    t.is(retried.state, 'running');
  } finally {
    await cleanup();
  }
});

test('two processes stopping one pod at once: one stop is recorded, the other is refused by the machine', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  const other = await openStore(dir);
  try {
    const world = join(dir, 'world');
    const uuid = await preparePod(new PodEngine(store, fakeEffects(world), ctx()));
    await new PodEngine(store, fakeEffects(world), ctx()).request(uuid, 'Stage1StartRequested', START);
    const a = new PodEngine(store, fakeEffects(world, { delayMs: 100 }), ctx());
    const b = new PodEngine(other, fakeEffects(world, { delayMs: 100 }), ctx());
    const results = await Promise.allSettled([a.request(uuid, 'StopRequested', { force: false }), b.request(uuid, 'StopRequested', { force: true })]);
    const refused = results.filter((r) => r.status === 'rejected');
    t.is(refused.length, 1);
    const reason = (refused[0] as PromiseRejectedResult).reason as Error;
    t.true(isPodlogError(reason));
    t.regex(reason.message, /cannot stop pod .*: it is running \(StopRequested is not allowed there; StopRequested is still in progress\)/);
    const history = await a.history(uuid);
    t.is(history.filter((e) => e.type === 'StopRequested').length, 1);
    t.is(history.filter((e) => e.type === 'StopSignalled').length, 1);
  } finally {
    await other.close();
    await cleanup();
  }
});

const crashAt = (dir: string, world: string, uuid: string, step: string) =>
  spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'test/engine/crashing-engine.ts'), dir, world, uuid], {
    env: { ...process.env, PODLOG_CRASH_AT: step },
    encoding: 'utf8',
  });

for (const [step, expected, actions] of [
  ['after-intent:Stage1StartRequested', 'prepared', ['compensated']],
  ['after-effect:startStage1', 'running', ['finished']],
  ['before-outcome:PodStarted', 'running', ['finished']],
  ['after-intent:ImageRenderRequested', 'abortedPrepare', ['compensated', 'aborted-prepare']],
  ['after-effect:renderImage', 'abortedPrepare', ['finished', 'aborted-prepare']],
] as const) {
  test(`kill -9 ${step}: the reconciler makes the log true again`, async (t) => {
    const { dir, store, cleanup } = await tempDataDir();
    try {
      const world = join(dir, 'world');
      const uuid = uuidv4();
      const child = crashAt(dir, world, uuid, step);
      t.is(child.signal, 'SIGKILL', child.stderr);
      const engine = new PodEngine(store, fakeEffects(world), ctx());
      const before = await engine.load(uuid);
      t.not(before.context.pending, undefined, 'the crash left an open intent');
      const result = await reconcilePod(engine, fakeEffects(world), uuid);
      t.is(result.after, expected);
      t.deepEqual(result.actions, [...actions]);
      const after = await engine.load(uuid);
      t.is(after.context.pending, undefined);
      t.deepEqual((await reconcilePod(engine, fakeEffects(world), uuid)).actions, [], 'reconciling twice changes nothing');
      if (expected === 'prepared') t.is((await engine.request(uuid, 'Stage1StartRequested', START)).state, 'running', 'the pod runs after');
    } finally {
      await cleanup();
    }
  });
}

test('a live intent is left alone by the reconciler', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const world = join(dir, 'world');
    const engine = new PodEngine(store, fakeEffects(world), ctx());
    const uuid = await preparePod(engine);
    await engine.record(uuid, [{ type: 'Stage1StartRequested', data: START }]);
    const result = await reconcilePod(engine, fakeEffects(world), uuid);
    t.deepEqual(result.actions, []);
    t.is((await engine.load(uuid)).context.pending?.effect, 'startStage1');
  } finally {
    await cleanup();
  }
});

test('requestAll commits each outcome with the next step: one commit a step, intents still before their effects', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const effects = fakeEffects(join(dir, 'world'));
    const engine = new PodEngine(store, effects, ctx());
    const uuid = uuidv4();
    await engine.request(uuid, 'PrepareRequested', prepareData(uuid));
    const before = await store.headPosition();
    const commits: string[][] = [];
    const append = store.append.bind(store);
    store.append = (stream, events, expected) => {
      commits.push(events.map((e) => e.type));
      return append(stream, events, expected);
    };
    const view = await engine.requestAll(uuid, [
      { type: 'ImageRenderRequested', data: { app: 'a', image: 'busybox' } },
      { type: 'OverlayPrepareRequested', data: {} },
      { type: 'PodManifestWriteRequested', data: {} },
      { type: 'PodPrepared', data: {} },
    ]);
    t.is(view.state, 'prepared');
    const history = (await engine.history(uuid)).filter((e) => e.position > before);
    t.deepEqual(history.map((e) => e.type), ['ImageRenderRequested', 'ImageRendered', 'OverlayPrepareRequested', 'OverlayPrepared', 'PodManifestWriteRequested', 'PodManifestWritten', 'PodPrepared']);
    t.deepEqual(commits, [
      ['ImageRenderRequested'],
      ['ImageRendered', 'OverlayPrepareRequested'],
      ['OverlayPrepared', 'PodManifestWriteRequested'],
      ['PodManifestWritten', 'PodPrepared'],
    ]);
    // Each outcome answers its own intent.
    const byType = new Map(history.map((e) => [e.type, e]));
    t.is(byType.get('ImageRendered')!.meta.causationId, byType.get('ImageRenderRequested')!.meta.id);
    t.is(byType.get('PodManifestWritten')!.meta.causationId, byType.get('PodManifestWriteRequested')!.meta.id);
    t.is(byType.get('OverlayPrepareRequested')!.meta.causationId, undefined);
    t.is(byType.get('PodPrepared')!.meta.causationId, undefined);
    t.deepEqual(effects.done.slice(-3), ['renderImage', 'prepareOverlay', 'writeManifest']);
  } finally {
    await cleanup();
  }
});

test('requestAll records a failure alone and stops: the steps after it are not recorded', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const engine = new PodEngine(store, fakeEffects(join(dir, 'world'), { failing: ['prepareOverlay'] }), ctx());
    const uuid = uuidv4();
    await engine.request(uuid, 'PrepareRequested', prepareData(uuid));
    const error = await t.throwsAsync(
      engine.requestAll(uuid, [
        { type: 'ImageRenderRequested', data: { app: 'a', image: 'busybox' } },
        { type: 'OverlayPrepareRequested', data: {} },
        { type: 'PodManifestWriteRequested', data: {} },
      ]),
    );
    t.is((error as { code?: string }).code, 'EFAKE');
    const types = (await engine.history(uuid)).map((e) => e.type);
    t.deepEqual(types.slice(-4), ['ImageRenderRequested', 'ImageRendered', 'OverlayPrepareRequested', 'EffectFailed']);
    t.is((await engine.load(uuid)).context.pending, undefined);
  } finally {
    await cleanup();
  }
});

test('recordMany and requestMany act on many pods in one commit each; a pod the machine refuses is named and left out', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const engine = new PodEngine(store, fakeEffects(join(dir, 'world')), ctx());
    const uuids = await Promise.all(Array.from({ length: 5 }, () => preparePod(engine)));
    const running = uuids[4]!;
    await engine.request(running, 'Stage1StartRequested', START);
    const head = await store.headPosition();
    const commits: number[] = [];
    const appendMany = store.appendMany.bind(store);
    store.appendMany = (appends) => {
      commits.push(appends.length);
      return appendMany(appends);
    };
    store.append = () => Promise.reject(new Error('a batch appends to one stream at a time'));
    const marked = await engine.recordMany(uuids.map((uuid) => ({ uuid, events: [{ type: 'PodMarkedGarbage', data: { reason: 'gc' } }] })));
    t.true(marked.slice(0, 4).every((r) => !(r instanceof Error) && r.view.state === 'garbage'));
    t.is((marked[4] as { code?: string }).code, 'EWRONG_STATE', 'a running pod cannot be marked');
    const marks = await store.readAll({ after: head });
    t.deepEqual(marks.map((e) => e.position), [head + 1, head + 2, head + 3, head + 4]);

    const deleted = await engine.requestMany(uuids, 'GcRequested', {});
    t.deepEqual(deleted.slice(0, 4).map((r) => (r instanceof Error ? r.message : r.state)), ['deleted', 'deleted', 'deleted', 'deleted']);
    t.true(deleted[4] instanceof Error);
    const after = await store.readAll({ after: head + 4 });
    t.deepEqual(after.map((e) => e.type), [...Array(4).fill('GcRequested'), ...Array(4).fill('PodDeleted')]);
    t.true(after.slice(4).every((e, i) => e.meta.causationId === after[i]!.meta.id), 'each deletion answers its pod\'s intent');
    t.deepEqual(commits, [4, 4, 4], 'the marks, the intents, the outcomes: a commit each');
  } finally {
    await cleanup();
  }
});

test("an engine records nothing of another host's pod: it is refused by name before any append", async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const uuid = uuidv4();
    const a = new PodEngine(store, fakeEffects(join(dir, 'world')), commandContext(['test'], 'host-a'));
    await a.request(uuid, 'PrepareRequested', { ...prepareData(uuid), host: 'host-a' });
    t.is((await a.load(uuid)).context.host, 'host-a');
    const before = await store.streamVersion(`pod-${uuid}`);
    const b = new PodEngine(store, fakeEffects(join(dir, 'world')), commandContext(['test'], 'host-b'));
    for (const attempt of [() => b.request(uuid, 'ImageRenderRequested', { app: 'a', image: 'busybox' }), () => b.record(uuid, [{ type: 'PrepareAborted', data: { reason: 'x' } }])]) {
      const error = await t.throwsAsync(attempt());
      t.is((error as { code?: string }).code, 'EOTHER_HOST');
      t.regex(error!.message, new RegExp(`pod ${uuid} is on host host-a`));
    }
    t.deepEqual((await b.recordMany([{ uuid, events: [{ type: 'PrepareAborted', data: { reason: 'x' } }] }])).map((r) => (r as { code?: string }).code), ['EOTHER_HOST']);
    t.is(await store.streamVersion(`pod-${uuid}`), before);
  } finally {
    await cleanup();
  }
});

test('a commit that lost to another writer first says how many times, on its first event (meta.conflicts)', async (t) => {
  const { dir, store, cleanup } = await tempDataDir();
  try {
    const uuid = await preparePod(new PodEngine(store, fakeEffects(join(dir, 'world')), ctx()));
    // Another writer wins twice: the store refuses the engine's first two appends.
    let refusals = 2;
    const contended = new Proxy(store, {
      get: (target, prop) =>
        prop === 'append'
          ? async (...args: Parameters<typeof store.append>) => {
              if (refusals-- > 0) throw new WrongExpectedVersion(args[0], args[2], 0);
              return target.append(...args);
            }
          : Reflect.get(target, prop, target),
    });
    await new PodEngine(contended, fakeEffects(join(dir, 'world')), ctx()).record(uuid, [{ type: 'PodMarkedGarbage', data: { reason: 'expired' } }]);
    const [last] = (await store.readStream(`pod-${uuid}`)).slice(-1);
    t.is(last!.type, 'PodMarkedGarbage');
    t.is(last!.meta.conflicts, 2);
    t.false((await store.readStream(`pod-${uuid}`)).slice(0, -1).some((e) => e.meta.conflicts !== undefined));
  } finally {
    await cleanup();
  }
});
