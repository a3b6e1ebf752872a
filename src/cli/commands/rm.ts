import { removePod } from '../../stage0/rm.js';
import { out, str, type Command } from '../command.js';
import { forEachPod, uuidArgs, withStage0 } from '../pods.js';

export const rm: Command = {
  usage: 'podlog rm [FLAGS] UUID...',
  options: { 'uuid-file': { type: 'string', value: 'FILE', description: "read the pod's UUID from FILE" } },
  examples: ['podlog rm 5f3a 9c01'],
  operand: 'pod',
  run: (inv) => {
    const uuids = uuidArgs(inv.positionals, str(inv.values, 'uuid-file'));
    return withStage0(inv, (s) =>
      forEachPod(s, uuids, 'rm', async (uuid) => {
        await removePod(s, uuid);
        out(`"${uuid}"`);
      }),
    { create: false });
  },
};
