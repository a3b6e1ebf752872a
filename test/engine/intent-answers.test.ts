/**
 * src/engine/intent-answers.ts: which intent an outcome answers and whose answer it is, the rule the
 * metrics and the timeline share. Events are built by hand: only their stream, type, time and ids matter.
 */
import test from 'ava';
import { IntentAnswers, type Answer } from '../../src/engine/intent-answers.js';
import type { RecordedEvent } from '../../src/store/port.js';

let position = 0;
/** An event of pod stream `stream`, recorded by command `by`, caused by the event with id `cause`. */
const ev = (stream: string, type: string, id: string, by: string, cause?: string, time = position * 10): RecordedEvent =>
  ({
    stream,
    type,
    schema: 1,
    data: {},
    version: ++position,
    position,
    meta: { id, time: new Date(time).toISOString(), correlationId: by, ...(cause === undefined ? {} : { causationId: cause }) },
  }) as unknown as RecordedEvent;

/** Each event's answer, the events read in one batch (or one each). */
const answers = (events: RecordedEvent[], oneByOne = false): Array<string | undefined> => {
  const reader = new IntentAnswers();
  const say = (a: Answer | undefined): string | undefined => (a === undefined ? undefined : a.by === 'own' ? `own ${a.intent.effect}` : `${a.action} ${a.intent.effect}`);
  return oneByOne ? events.map((e) => say(reader.read([e], 0))) : events.map((_, i) => say(reader.read(events, i)));
};

test("an intent's first outcome by its own command is its answer; later ones are not", (t) => {
  const events = [ev('pod-a', 'PrepareRequested', 'p', 'run'), ev('pod-a', 'PodCreated', 'c', 'run', 'p'), ev('pod-a', 'ImageRendered', 'r', 'run', 'p')];
  t.deepEqual(answers(events), [undefined, 'own createPod', undefined]);
});

test("another command's outcome is the reconciler's: finished, compensated where the answer holds an EffectFailed, and only the first", (t) => {
  const events = [
    ev('pod-a', 'PrepareRequested', 'p', 'run'),
    ev('pod-a', 'PodCreated', 'c', 'run', 'p'),
    ev('pod-a', 'OverlayPrepareRequested', 'o', 'run', 'p'),
    // The run died; list answers its overlay intent: an outcome, then an EffectFailed in the same answer.
    ev('pod-a', 'OverlayPrepared', 'o1', 'list', 'o'),
    ev('pod-a', 'EffectFailed', 'o2', 'list', 'o'),
    ev('pod-a', 'OverlayPrepared', 'o3', 'status', 'o'),
    // The preparation is aborted by the reconciler although its command answered the PrepareRequested first.
    ev('pod-a', 'PrepareAborted', 'a', 'list', 'p'),
    ev('pod-b', 'PrepareRequested', 'q', 'run'),
    ev('pod-b', 'StopRequested', 's', 'stop', 'q'),
    ev('pod-b', 'StopSignalled', 's1', 'list', 's'),
  ];
  t.deepEqual(answers(events), [undefined, 'own createPod', undefined, 'compensated prepareOverlay', undefined, undefined, 'aborted-prepare createPod', undefined, undefined, 'finished stopPod']);
  // Read one event at a time, an answer's EffectFailed after its first event is not seen with it (as the metrics' batches).
  t.is(answers(events, true)[3], 'finished prepareOverlay');
});

test('an outcome of another stream, or of an intent closed (a new intent, the preparation over, the pod deleted), answers nothing', (t) => {
  const events = [
    ev('pod-a', 'PrepareRequested', 'p', 'run'),
    ev('pod-b', 'PodCreated', 'x', 'list', 'p'),
    ev('pod-a', 'OverlayPrepareRequested', 'o', 'run', 'p'),
    ev('pod-a', 'PodManifestWriteRequested', 'm', 'run', 'p'),
    ev('pod-a', 'OverlayPrepared', 'o1', 'list', 'o'),
    ev('pod-a', 'PodPrepared', 'pp', 'run', 'm'),
    ev('pod-a', 'PrepareAborted', 'a', 'list', 'p'),
    ev('pod-a', 'GcRequested', 'g', 'gc'),
    ev('pod-a', 'PodDeleted', 'd', 'gc', 'g'),
    ev('pod-a', 'EffectFailed', 'f', 'list', 'g'),
  ];
  t.deepEqual(answers(events), [undefined, undefined, undefined, undefined, undefined, 'own writeManifest', undefined, undefined, 'own deletePod', undefined]);
});

test('an answer is timed from its intent', (t) => {
  const reader = new IntentAnswers();
  reader.read([ev('pod-c', 'PrepareRequested', 'p', 'run', undefined, 1000)], 0);
  const a = reader.read([ev('pod-c', 'PodCreated', 'c', 'run', 'p', 1250)], 0);
  t.like(a, { by: 'own', intent: { time: '1970-01-01T00:00:01.000Z', effect: 'createPod', correlationId: 'run', stream: 'pod-c' } });
});
