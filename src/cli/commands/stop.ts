import { stopPod } from '../../stage0/stop.js';
import { out, str, type Command } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';

export const stop: Command = {
  name: 'stop',
  summary: 'Stop running pods (SIGTERM, then SIGKILL after the grace period; --force: SIGKILL)',
  usage: 'podlog stop [--force] [--uuid-file=F] UUID...',
  options: { force: { type: 'boolean', default: false }, 'uuid-file': { type: 'string' } },
  run: (inv) =>
    withStage0(inv, async (s) => {
      let failed = 0;
      for (const input of uuidArgs(inv.positionals, str(inv.values, 'uuid-file'))) {
        try {
          const uuid = await resolveLivePod(s, input);
          const result = await stopPod(s, uuid, inv.values.force === true);
          out(result === 'already stopped' ? `pod ${uuid} is already stopped` : uuid);
        } catch (e) {
          process.stderr.write(`podlog: stop ${input}: ${(e as Error).message}\n`);
          failed++;
        }
      }
      return failed ? 254 : 0;
    }),
};
