/** Stage0's side of the metadata service's registration socket. */
import { PodlogError } from '../errors.js';
import type { PodRegistration } from './registry.js';

const TIMEOUT_MS = 5000;

/** The registration socket: PODLOG_MDS_SOCKET, else rkt's path under podlog's name. */
export const metadataSocket = (): string => process.env.PODLOG_MDS_SOCKET || '/run/podlog/metadata-svc.sock';

/** Nobody listens on the socket (ENOENT, ECONNREFUSED): the service is not running. */
const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED']);

const unreachable = (socket: string, e: NodeJS.ErrnoException): PodlogError =>
  new PodlogError(
    NOT_RUNNING.has(e.code ?? '') ? 'EMDS_NOT_RUNNING' : 'EMDS',
    `the metadata service is unreachable at ${socket} (${e.code ?? e.message}): start it with 'podlog metadata-service', or run the pod without --mds-register`,
  );

const call = async (socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
  // Loaded here: node:http is a tenth of the CLI's start-up, and only pods run with --mds-register call.
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      // A connection per request: one kept alive could be reused just as the service closes it (EPIPE).
      { socketPath: socket, method, path, agent: false, timeout: TIMEOUT_MS, headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            // A body that is not JSON is reported by its status alone.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(unreachable(socket, e)));
    req.end(payload);
  });
};

/** Registers a pod; returns the port the apps reach the service on. */
export const registerPod = async (socket: string, uuid: string, registration: PodRegistration): Promise<number> => {
  const { status, body } = await call(socket, 'PUT', `/pods/${uuid}`, registration);
  if (status !== 200 || typeof body.port !== 'number') {
    throw new PodlogError('EMDS', `the metadata service refused pod ${uuid}: ${typeof body.error === 'string' ? body.error : `HTTP ${status}`}`);
  }
  return body.port;
};

/**
 * Unregisters a pod. A service that is not running holds no registration (they live in its memory),
 * so its absence is an answer too.
 */
export const unregisterPod = async (socket: string, uuid: string): Promise<'unregistered' | 'not registered' | 'service not running'> => {
  try {
    const { status, body } = await call(socket, 'DELETE', `/pods/${uuid}`);
    if (status !== 200) throw new PodlogError('EMDS', `the metadata service did not unregister pod ${uuid}: HTTP ${status}`);
    return body.unregistered === true ? 'unregistered' : 'not registered';
  } catch (e) {
    if (e instanceof PodlogError && e.code === 'EMDS_NOT_RUNNING') return 'service not running';
    throw e;
  }
};

/** rkt's CheckMdsAvailability: before the pod holds anything, so a refusal leaves it as it was. */
export const checkMetadataService = async (socket: string): Promise<void> => {
  const { status } = await call(socket, 'GET', '/pods');
  if (status !== 200) throw new PodlogError('EMDS', `${socket} does not answer as a metadata service (HTTP ${status})`);
};
