import { stopPod } from '../../stage0/stop.js';
import { out, str, type Command } from '../command.js';
import { forEachPod, uuidArgs, withStage0 } from '../pods.js';

export const stop: Command = {
  usage: 'podlog stop [--force] [--uuid-file=F] UUID...',
  options: { force: { type: 'boolean', default: false }, 'uuid-file': { type: 'string' } },
  run: (inv) => {
    const uuids = uuidArgs(inv.positionals, str(inv.values, 'uuid-file'));
    return withStage0(inv, (s) =>
      forEachPod(s, uuids, 'stop', async (uuid) => {
        const result = await stopPod(s, uuid, inv.values.force === true);
        out(result === 'already stopped' ? `pod ${uuid} is already stopped` : uuid);
      }),
    { create: false });
  },
};
