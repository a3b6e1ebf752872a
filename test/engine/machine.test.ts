/**
 * Model-based tests: paths generated from the machine's own definition are replayed through the
 * engine into a real event log, and every event a state does not accept is refused by name.
 */
import test from 'ava';
import { getShortestPaths, getSimplePaths } from '@xstate/graph';
import { v4 as uuidv4 } from 'uuid';
import { podMachine, RKT_STATE_NAMES, type PodMachineEvent, type PodStateName } from '../../machines/pod.js';
import { commandContext } from '../../src/events/metadata.js';
import { PodEngine } from '../../src/engine/engine.js';
import type { EffectInterpreter } from '../../src/engine/effects.js';
import { catchUpPodList } from '../../src/engine/pod-list.js';
import { podStream } from '../../src/engine/streams.js';
import { isPodlogError } from '../../src/errors.js';
import type { PodEventType } from '../../src/events/catalogue.js';
import { tempDataDir } from '../helpers/store.js';
import { abstractState, dataFor, SAMPLE_EVENTS } from './samples.js';

const options = { events: SAMPLE_EVENTS, input: { uuid: 'sample' }, serializeState: abstractState as never };
const real = (e: { type: string }) => !e.type.startsWith('xstate.');
// Replaying records events; it never asks for effects, so any effect request is a bug.
const noEffects: EffectInterpreter = {
  run: () => Promise.reject(new Error('replay must not run effects')),
  reconcile: () => Promise.reject(new Error('replay must not reconcile')),
};

test('every simple path from embryo, replayed through the engine, folds to the path state', async (t) => {
  const paths = getSimplePaths(podMachine, options);
  const reached = new Set(paths.map((p) => p.state.value as PodStateName));
  t.deepEqual([...reached].sort(), (Object.keys(RKT_STATE_NAMES) as PodStateName[]).sort(), 'every state is reachable');
  const { store, cleanup } = await tempDataDir();
  try {
    const engine = new PodEngine(store, noEffects, commandContext(['test', 'model']));
    const expected = new Map<string, string>();
    for (const path of paths) {
      const uuid = uuidv4();
      for (const { event } of path.steps.filter((s) => real(s.event))) {
        const e = event as PodMachineEvent;
        await engine.record(uuid, [{ type: e.type, data: dataFor(e, uuid) } as never]);
      }
      const view = await engine.load(uuid);
      t.is(abstractState(view.snapshot), abstractState(path.state), `path ${path.steps.map((s) => s.event.type).join(' > ')}`);
      t.is(await store.streamVersion(podStream(uuid)), path.steps.filter((s) => real(s.event)).length);
      expected.set(uuid, view.state);
    }
    const rows = await catchUpPodList(store);
    for (const [uuid, state] of expected) {
      // A pod with no events (the embryo path) has no stream, and a deleted pod no longer a row.
      const listed = state === 'embryo' || state === 'deleted' ? undefined : state;
      t.is<string | undefined, string | undefined>(rows.get(uuid)?.state, listed, `projection row of ${uuid}`);
    }
    t.log(`${paths.length} paths replayed`);
  } finally {
    await cleanup();
  }
});

test('every event a state does not accept is refused, naming the state and the command, and nothing is written', async (t) => {
  const paths = getShortestPaths(podMachine, options);
  const { store, cleanup } = await tempDataDir();
  try {
    const engine = new PodEngine(store, noEffects, commandContext(['test', 'refusals']));
    let refusals = 0;
    for (const path of paths) {
      const uuid = uuidv4();
      for (const { event } of path.steps.filter((s) => real(s.event))) {
        const e = event as PodMachineEvent;
        await engine.record(uuid, [{ type: e.type, data: dataFor(e, uuid) } as never]);
      }
      const before = await engine.load(uuid);
      for (const sample of SAMPLE_EVENTS) {
        if (path.state.can(sample)) continue;
        const error = await t.throwsAsync(engine.record(uuid, [{ type: sample.type as PodEventType, data: dataFor(sample, uuid) } as never]));
        t.true(isPodlogError(error), `${sample.type} in ${before.state}`);
        const rkt = RKT_STATE_NAMES[before.state];
        if (before.version === 0) t.regex(error!.message, /no such pod/);
        else t.true(error!.message.includes(`it is ${rkt}`) && error!.message.includes(sample.type), error!.message);
        refusals++;
      }
      t.is(await store.streamVersion(podStream(uuid)), before.version, 'a refused command writes nothing');
    }
    t.true(refusals > 100, `${refusals} refusals checked`);
  } finally {
    await cleanup();
  }
});
