/**
 * Every error the API answers is JSON: `{ "error": "...", "statusCode": N }`. A malformed query is 400
 * with the schema's message, an unknown pod 404, an ambiguous UUID prefix 400 (rkt's messages).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { isPodlogError } from '../../errors.js';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** The status of an error: its own, or a UUID that matches no pod (404) or several (400). */
const statusOf = (e: FastifyError | ApiError | Error): number => {
  if (e instanceof ApiError) return e.statusCode;
  if ('validation' in e && e.validation !== undefined) return 400;
  if (isPodlogError(e) && e.code === 'EUUID') return /^no matches/.test(e.message) ? 404 : 400;
  const status = (e as FastifyError).statusCode;
  return status !== undefined && status >= 400 && status < 600 ? status : 500;
};

export const jsonErrors = (app: FastifyInstance, log: (line: string) => void): void => {
  app.setErrorHandler((e: Error, request, reply) => {
    const statusCode = statusOf(e);
    if (statusCode >= 500) log(`${request.method} ${request.url}: ${e.stack ?? e.message}`);
    void reply.code(statusCode).type('application/json').send({ error: e.message, statusCode });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).type('application/json').send({ error: `no route ${request.method} ${request.url.split('?')[0]}`, statusCode: 404 });
  });
};
