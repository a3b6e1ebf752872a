/** UUID prefix resolution with rkt's messages (pkg/pod/uuid.go). */
import { PodlogError } from '../errors.js';
import type { EventStore } from '../store/port.js';
import { POD_STREAM_PREFIX, uuidOfStream } from './streams.js';

export const resolvePodUuid = async (store: EventStore, input: string): Promise<string> => {
  const prefix = input.trim().toLowerCase();
  if (prefix === '') throw new PodlogError('EUUID', 'UUID cannot be empty');
  const matches = (await store.listStreams(`${POD_STREAM_PREFIX}${prefix}`)).map((s) => uuidOfStream(s.stream));
  if (matches.length === 0) throw new PodlogError('EUUID', `no matches found for "${input}"`);
  if (matches.length > 1) throw new PodlogError('EUUID', `ambiguous uuid, ${matches.length} matches`);
  return matches[0]!;
};
