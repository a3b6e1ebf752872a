/** GET /v1/pods/{uuid}/events (a pod's history) and GET /v1/events (the log, a page at a time). */
import type { FastifyInstance } from 'fastify';
import { resolvePodUuid } from '../../../engine/resolve.js';
import { podStream } from '../../../engine/streams.js';
import type { EventStore } from '../../../store/port.js';
import { eventsRoute, podEventsRoute } from '../schemas.js';

export const eventRoutes = (app: FastifyInstance, store: EventStore): void => {
  app.get<{ Params: { uuid: string } }>('/v1/pods/:uuid/events', { schema: podEventsRoute }, async (request) =>
    // Any pod that has a stream, deleted ones too (until `log compact` leaves only their tombstone).
    store.readStream(podStream(await resolvePodUuid(store, request.params.uuid))),
  );

  app.get<{ Querystring: { from: number; limit: number } }>('/v1/events', { schema: eventsRoute }, async (request) => {
    const { from, limit } = request.query;
    // The head first, as readBatches reads it: an empty page means nothing up to the head is left.
    const head = await store.headPosition();
    const events = await store.readAll({ after: from, limit });
    const next = events.length > 0 ? events[events.length - 1]!.position : Math.max(from, head);
    return { events, next, head: Math.max(head, next) };
  });
};
