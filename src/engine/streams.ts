/** Stream names: one stream per pod. */
export const POD_STREAM_PREFIX = 'pod-';
export const podStream = (uuid: string): string => `${POD_STREAM_PREFIX}${uuid}`;
export const uuidOfStream = (stream: string): string => stream.slice(POD_STREAM_PREFIX.length);
