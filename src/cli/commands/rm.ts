import { removePod } from '../../stage0/rm.js';
import { out, str, type Command } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';

export const rm: Command = {
  name: 'rm',
  summary: 'Remove exited, aborted or prepared pods',
  usage: 'podlog rm [--uuid-file=F] UUID...',
  options: { 'uuid-file': { type: 'string' } },
  run: (inv) =>
    withStage0(inv, async (s) => {
      let failed = 0;
      for (const input of uuidArgs(inv.positionals, str(inv.values, 'uuid-file'))) {
        try {
          const uuid = await resolveLivePod(s, input);
          await removePod(s, uuid);
          out(`"${uuid}"`);
        } catch (e) {
          process.stderr.write(`podlog: rm ${input}: ${(e as Error).message}\n`);
          failed++;
        }
      }
      return failed ? 254 : 0;
    }),
};
