/** Time travel: a pod's state and context at any version of its history, and the steps that led there. */
import type { PodContext, PodStateName } from '../../machines/pod.js';
import { PodlogError } from '../errors.js';
import { foldPod, initialPod, stateOf } from '../engine/fold.js';
import { podStream } from '../engine/streams.js';
import type { EventStore, RecordedEvent } from '../store/port.js';

export interface ReplayStep {
  event: RecordedEvent;
  /** The pod's state once this event is applied. */
  state: PodStateName;
}

export interface Replay {
  uuid: string;
  /** The version replayed to, and the stream's latest. */
  version: number;
  latest: number;
  state: PodStateName;
  context: PodContext;
  steps: ReplayStep[];
}

export const replayPod = async (store: EventStore, uuid: string, at?: number): Promise<Replay> => {
  const latest = await store.streamVersion(podStream(uuid));
  if (at !== undefined && (!Number.isInteger(at) || at < 0 || at > latest)) {
    throw new PodlogError('EVERSION', `pod ${uuid} has versions 0 to ${latest}; --at ${at} is not one of them`);
  }
  const all = await store.readStream(podStream(uuid));
  // `log compact` left only the tombstone: the versions before it are gone, not an embryo.
  const tombstone = all[0]?.type === 'PodCompacted' ? all[0] : undefined;
  if (at !== undefined && tombstone !== undefined && at < tombstone.version) {
    throw new PodlogError('ECOMPACTED', `pod ${uuid} was compacted by podlog log compact: only version ${tombstone.version} (its tombstone) is left`);
  }
  const events = all.filter((e) => e.version <= (at ?? latest));
  let snapshot = initialPod(uuid);
  const steps: ReplayStep[] = [];
  for (const event of events) {
    snapshot = foldPod(snapshot, [event]);
    steps.push({ event, state: stateOf(snapshot) });
  }
  return { uuid, version: at ?? latest, latest, state: stateOf(snapshot), context: snapshot.context, steps };
};
