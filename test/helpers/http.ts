/** Plain HTTP requests over a unix socket or TCP, with nothing between the test and node:http. */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

/** Where a server listens: a socket path, or TCP. */
export type HttpTarget = { socketPath: string } | { host: string; port: number };

/** The target of an api-service address (a socket path, or HOST:PORT). */
export const targetOf = (address: string): HttpTarget => {
  if (address.startsWith('/')) return { socketPath: address };
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) };
};

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: <T = unknown>() => T;
}

export const get = (target: HttpTarget, path: string, headers: Record<string, string> = {}): Promise<HttpResponse> =>
  new Promise((resolve, reject) => {
    const req = httpRequest({ ...target, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: <T>() => JSON.parse(body) as T }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
