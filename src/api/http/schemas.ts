/**
 * The JSON schemas of the API: fastify validates queries with them, serialises responses with them,
 * and @fastify/swagger makes the OpenAPI document (/openapi.json) of them. Free-form parts (a CNI
 * result, an event's data, a pod manifest) are objects with additional properties.
 */
const anyObject = { type: 'object', additionalProperties: true } as const;
const strings = { type: 'object', additionalProperties: { type: 'string' } } as const;
const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const stringList = (description: string) => ({ type: 'array', items: { type: 'string' }, description }) as const;

export const errorSchema = {
  type: 'object',
  required: ['error', 'statusCode'],
  properties: { error: str, statusCode: int },
} as const;

const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema } as const;

/** A pod as listed: the shape of `podlog list --format=json` (src/api/pod-json.ts). */
export const podSchema = {
  type: 'object',
  required: ['uuid', 'state', 'apps', 'networks', 'user_annotations', 'user_labels'],
  properties: {
    uuid: str,
    state: { type: 'string', description: 'As `podlog list` prints it (rkt\'s names)' },
    host: { type: 'string', description: 'The host id that prepared the pod (absent for pods from before hosts were recorded)' },
    apps: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: str, image_id: str, image_name: str, exit_code: int, oom: { type: 'boolean' }, memory_peak: int, cpu_time: int,
          hooks: { type: 'object', additionalProperties: int }, state: str, created_at: str, started_at: str, finished_at: str,
        },
      },
    },
    created_at: str,
    started_at: str,
    exited_at: str,
    exit_code: int,
    networks: { type: 'array', items: anyObject },
    user_annotations: strings,
    user_labels: strings,
  },
} as const;

/** A pod whole: the shape of `podlog status --format=json`, with its manifest. */
export const podDetailSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['uuid', 'state', 'version', 'apps', 'manifest'],
  properties: {
    uuid: str,
    state: str,
    version: int,
    host: str,
    apps: { type: 'array', items: anyObject },
    exitCode: int,
    networks: { type: 'array', items: anyObject },
    manifest: { type: 'object', nullable: true, additionalProperties: true, description: 'The pod manifest as written (environment values redacted), or null where it is not known here' },
  },
} as const;

export const eventSchema = {
  type: 'object',
  required: ['stream', 'version', 'position', 'type', 'schema', 'data', 'meta'],
  properties: { stream: str, version: int, position: int, type: str, schema: int, data: anyObject, meta: anyObject },
} as const;

export const uuidParams = {
  type: 'object',
  required: ['uuid'],
  properties: { uuid: { type: 'string', minLength: 1, description: 'A full pod UUID or a unique prefix of one' } },
} as const;

export const podsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: stringList('States as `podlog list` prints them; repeatable or comma-separated; a pod in any of them'),
    host: stringList('Host ids; repeatable; a pod prepared by any of them'),
    label: { type: 'array', items: { type: 'string', pattern: '^[^=]' }, description: 'KEY or KEY=VALUE; repeatable; a pod must have every one' },
    annotation: { type: 'array', items: { type: 'string', pattern: '^[^=]' }, description: 'KEY or KEY=VALUE; repeatable; a pod must have every one' },
  },
} as const;

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'integer', minimum: 0, default: 0, description: 'Events with a position greater than this' },
    limit: { type: 'integer', minimum: 1, maximum: 5000, default: 500 },
  },
} as const;

export const watchQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'integer', minimum: 0, description: 'Events after this position (default: the head, live events only); a Last-Event-ID header wins' },
    pod: { type: 'string', minLength: 1, description: 'Only this pod (a full UUID or a unique prefix)' },
    host: { type: 'string', minLength: 1, description: 'Only events recorded for this host id' },
    types: stringList('Only these event types; repeatable or comma-separated'),
  },
} as const;

export const podsRoute = {
  summary: 'The pods that exist (deleted pods are not listed)',
  querystring: podsQuery,
  response: { 200: { type: 'array', items: podSchema }, ...errors },
} as const;

export const podRoute = {
  summary: 'One pod: its state, apps, exit codes, networks and pod manifest',
  params: uuidParams,
  response: { 200: podDetailSchema, ...errors },
} as const;

export const podEventsRoute = {
  summary: "A pod's history; a deleted pod's too, as long as the log keeps it",
  params: uuidParams,
  response: { 200: { type: 'array', items: eventSchema }, ...errors },
} as const;

export const eventsRoute = {
  summary: 'The log from a position, a page at a time: ask again with from=next until next equals head',
  querystring: eventsQuery,
  response: {
    200: {
      type: 'object',
      required: ['events', 'next', 'head'],
      properties: { events: { type: 'array', items: eventSchema }, next: int, head: int },
    },
    ...errors,
  },
} as const;

export const watchRoute = {
  summary: 'Server-Sent Events: every event as it is appended (id: its position, event: its type, data: the event); heartbeats are comments',
  querystring: watchQuery,
  headers: { type: 'object', properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]+$' } } },
  produces: ['text/event-stream'],
  response: { 200: { description: 'An event stream (text/event-stream)', type: 'string' }, ...errors },
} as const;

export const metricsRoute = {
  summary: 'Prometheus metrics (text format)',
  produces: ['text/plain'],
  response: { 200: { description: 'The Prometheus text exposition format', type: 'string' }, ...errors },
} as const;
