import { stopPod } from '../../stage0/stop.js';
import { out, str, type Command } from '../command.js';
import { forEachPod, uuidArgs, withStage0 } from '../pods.js';

export const stop: Command = {
  usage: 'podlog stop [FLAGS] UUID...',
  options: {
    force: { type: 'boolean', default: false, description: 'SIGKILL at once instead of SIGTERM and a grace period' },
    'uuid-file': { type: 'string', value: 'FILE', description: "read the pod's UUID from FILE" },
  },
  examples: ['podlog stop 5f3a', 'podlog stop --force 5f3a 9c01'],
  operand: 'pod',
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
