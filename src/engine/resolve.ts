/** UUID prefix resolution with rkt's messages (pkg/pod/uuid.go). */
import { PodlogError } from '../errors.js';
import type { EventStore } from '../store/port.js';
import { POD_STREAM_PREFIX, uuidOfStream } from './streams.js';

const normalise = (input: string): string => {
  const prefix = input.trim().toLowerCase();
  if (prefix === '') throw new PodlogError('EUUID', 'UUID cannot be empty');
  return prefix;
};

const only = (input: string, matches: string[]): string => {
  if (matches.length === 0) throw new PodlogError('EUUID', `no matches found for "${input}"`);
  if (matches.length > 1) throw new PodlogError('EUUID', `ambiguous uuid, ${matches.length} matches`);
  return matches[0]!;
};

/** Any pod that ever existed, deleted ones too (for the inspection tools). */
export const resolvePodUuid = async (store: EventStore, input: string): Promise<string> => {
  const prefix = normalise(input);
  return only(input, (await store.listStreams(`${POD_STREAM_PREFIX}${prefix}`)).map((s) => uuidOfStream(s.stream)));
};

/** One of the given pods (the live ones, for the verbs that act on pods). */
export const matchPodUuid = (candidates: Iterable<string>, input: string): string => {
  const prefix = normalise(input);
  return only(input, [...candidates].filter((uuid) => uuid.startsWith(prefix)));
};
