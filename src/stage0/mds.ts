/**
 * The metadata service check (rkt's CheckMdsAvailability): `--mds-register` needs a metadata service
 * listening on its unix socket, checked before the pod is moved to running (rkt issue #1434) so that
 * a missing service leaves the pod runnable. podlog serves no metadata API yet, so stage1RunOptions
 * refuses `--mds-register` by name and nothing in podlog calls this; it is the library's, for a
 * caller with its own service.
 */
import { connect } from 'node:net';
import { PodlogError } from '../errors.js';

export const MDS_SOCKET = process.env.PODLOG_MDS_SOCKET ?? '/run/podlog/metadata-svc.sock';

const UNREACHABLE = [
  'Unable to reach the metadata service.',
  `Nothing answers on ${MDS_SOCKET}: start a metadata service there,`,
  'or run the pod without registering it (--mds-register=false).',
].join('\n');

export const checkMdsAvailability = (socket = MDS_SOCKET): Promise<void> =>
  new Promise((resolve, reject) => {
    const conn = connect(socket);
    conn.once('connect', () => {
      conn.destroy();
      resolve();
    });
    conn.once('error', () => reject(new PodlogError('EMDS', UNREACHABLE)));
  });
