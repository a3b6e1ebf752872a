import { removePod } from '../../stage0/rm.js';
import { out, str, type Command } from '../command.js';
import { forEachPod, uuidArgs, withStage0 } from '../pods.js';

export const rm: Command = {
  usage: 'podlog rm [--uuid-file=F] UUID...',
  options: { 'uuid-file': { type: 'string' } },
  run: (inv) =>
    withStage0(inv, (s) =>
      forEachPod(s, uuidArgs(inv.positionals, str(inv.values, 'uuid-file')), 'rm', async (uuid) => {
        await removePod(s, uuid);
        out(`"${uuid}"`);
      }),
    ),
};
