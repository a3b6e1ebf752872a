/** A unix socket file a long-running verb listens on (metadata-service, api-service). */
import { existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { PodlogError } from './errors.js';

/**
 * Makes `path` free to listen on: its directory made, a stale socket nobody answers on removed. A socket a
 * live service answers on is refused (`service` names what would be taken over), never replaced; so is
 * anything that is not a socket (a mistyped --socket must not remove a file).
 */
export const claimSocket = async (path: string, service: string): Promise<void> => {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new PodlogError('EUSAGE', `${path} exists and is not a socket: ${service} will not replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
  if (live) throw new PodlogError('EUSAGE', `${service} already listens on ${path}`);
  unlinkSync(path);
};
