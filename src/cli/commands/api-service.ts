import { existsSync } from 'node:fs';
import { PodlogError } from '../../errors.js';
import { DEFAULT_SOCKET, parseListen, type ListenAt } from '../../api/http/listen.js';
import { startApiService } from '../../api/http/server.js';
import { openStore } from '../../store/open.js';
import { str, type Command } from '../command.js';

const listenAt = (socket: string | undefined, listen: string | undefined): ListenAt => {
  if (socket !== undefined && listen !== undefined) throw new PodlogError('EUSAGE', 'give --socket or --listen, not both');
  if (listen !== undefined) return parseListen(listen);
  if (socket === '') throw new PodlogError('EUSAGE', '--socket cannot be empty');
  return { socket: socket ?? DEFAULT_SOCKET };
};

/**
 * Runs until SIGINT or SIGTERM (then exits 0), or until reading the log fails. It opens the log
 * read-only: the API is read-only, and a read-only database role is enough for it on a shared log.
 */
export const apiService: Command = {
  usage: 'podlog api-service [FLAGS]',
  options: {
    socket: { type: 'string', value: 'PATH', description: 'serve on this unix socket (mode 0660)', shownDefault: DEFAULT_SOCKET },
    listen: { type: 'string', value: 'IP:PORT', description: 'serve on TCP instead; an address that is not loopback needs --token-file' },
    'token-file': { type: 'string', value: 'FILE', description: 'a bearer token clients must send (the file readable by its owner only)' },
  },
  examples: ['podlog api-service', 'curl --unix-socket /run/podlog/api.sock http://podlog/v1/pods', 'podlog api-service --listen 127.0.0.1:8765'],
  run: async (inv) => {
    if (inv.positionals.length > 0) throw new PodlogError('EUSAGE', `api-service takes no arguments (got ${inv.positionals.join(' ')})`);
    const listen = listenAt(str(inv.values, 'socket'), str(inv.values, 'listen'));
    const tokenFile = str(inv.values, 'token-file');
    if (tokenFile !== undefined && 'socket' in listen) throw new PodlogError('EUSAGE', '--token-file is for --listen (a socket is guarded by its mode)');
    // A missing SQLite log would be read as an empty one that nothing ever appends to.
    if (inv.store.startsWith('sqlite:') && !existsSync(inv.store.slice('sqlite:'.length))) {
      throw new PodlogError('ESTORE_NOT_FOUND', `there is no event log at ${inv.store.slice('sqlite:'.length)} yet: the first pod or image makes it`);
    }
    const store = await openStore(inv.dir, { access: 'inspect', url: inv.store });
    try {
      const service = await startApiService({
        store,
        dataDir: inv.dir,
        hostId: inv.hostId,
        listen,
        ...(tokenFile === undefined ? {} : { tokenFile }),
        log: (line) => process.stderr.write(`podlog: ${line}\n`),
      });
      const signalled = new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      try {
        await Promise.race([signalled, service.done]);
      } finally {
        await service.close();
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};
