/**
 * Where the API listens: a unix socket by default (its file mode is the access control, as for rkt's
 * API service), or TCP with --listen HOST:PORT. A TCP address other than loopback is reachable from
 * other machines, so it needs a bearer token (./auth.ts).
 */
import { isIP } from 'node:net';
import { PodlogError } from '../../errors.js';

export const DEFAULT_SOCKET = '/run/podlog/api.sock';
/** The socket's mode: its owner (root) and its group read the API. */
export const SOCKET_MODE = 0o660;

export type ListenAt = { socket: string } | { host: string; port: number };

/** HOST:PORT, with an IPv6 host in brackets ([::1]:8080); the host must be an IP address. */
export const parseListen = (text: string): { host: string; port: number } => {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || isIP(host) === 0 || port > 65535) {
    throw new PodlogError('EUSAGE', `--listen: ${JSON.stringify(text)} is not IP:PORT (127.0.0.1:8080, [::1]:8080)`);
  }
  return { host, port };
};

export const isLoopback = (host: string): boolean => host === '::1' || /^127\./.test(host) || /^::ffff:127\./i.test(host);
