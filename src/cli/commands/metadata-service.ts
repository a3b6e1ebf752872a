import { isIP } from 'node:net';
import { PodlogError } from '../../errors.js';
import { metadataSocket } from '../../metadata/client.js';
import { DEFAULT_PORT, startMetadataService } from '../../metadata/service.js';
import { openStore } from '../../store/open.js';
import { str, type Command } from '../command.js';

const port = (text: string): number => {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new PodlogError('EUSAGE', `--listen-port: ${JSON.stringify(text)} is not a port (0 to 65535)`);
  return n;
};

/** Runs until SIGINT or SIGTERM; registrations live in its memory only. */
export const metadataService: Command = {
  usage: 'podlog metadata-service [FLAGS]',
  options: {
    'listen-port': { type: 'string', default: String(DEFAULT_PORT), value: 'PORT', description: 'the TCP port pods reach the service on' },
    'listen-address': { type: 'string', default: '0.0.0.0', value: 'IP', description: 'the address pods reach the service on' },
    socket: { type: 'string', value: 'PATH', description: 'the unix socket stage0 registers pods through', shownDefault: '$PODLOG_MDS_SOCKET, else /run/podlog/metadata-svc.sock' },
  },
  examples: ['podlog metadata-service', 'podlog run --mds-register IMAGE'],
  run: async (inv) => {
    if (inv.positionals.length > 0) throw new PodlogError('EUSAGE', `metadata-service takes no arguments (got ${inv.positionals.join(' ')})`);
    const host = str(inv.values, 'listen-address')!;
    if (isIP(host) === 0) throw new PodlogError('EUSAGE', `--listen-address: ${JSON.stringify(host)} is not an IP address`);
    const socket = str(inv.values, 'socket') ?? metadataSocket();
    if (socket === '') throw new PodlogError('EUSAGE', '--socket cannot be empty');
    const service = await startMetadataService({
      socket,
      port: port(str(inv.values, 'listen-port')!),
      host,
      openLog: () => openStore(inv.dir, { access: 'inspect', url: inv.store }),
      log: (line) => process.stderr.write(`podlog: ${line}\n`),
    });
    await new Promise<void>((resolve) => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
    });
    await service.close();
    return 0;
  },
};
