import { PodlogError } from '../../errors.js';
import { isAcName } from '../../stage0/config.js';
import { exportPod } from '../../stage0/export.js';
import { str, type Command } from '../command.js';
import { resolveLivePod, withStage0 } from '../pods.js';

export const exportCommand: Command = {
  usage: 'podlog export [FLAGS] UUID FILE.aci',
  options: {
    app: { type: 'string', value: 'NAME', description: 'the app to export (needed when the pod has several)' },
    overwrite: { type: 'boolean', description: 'replace FILE.aci if it exists' },
  },
  operand: 'pod',
  examples: ['podlog export 5f3a /tmp/app.aci'],
  run: (inv) => {
    const app = str(inv.values, 'app');
    if (app !== undefined && !isAcName(app)) throw new PodlogError('EUSAGE', `--app: ${JSON.stringify(app)} is not an app name`);
    if (inv.positionals.length !== 2) throw new PodlogError('EUSAGE', 'export takes a UUID and the file to write');
    const [uuid, file] = inv.positionals as [string, string];
    return withStage0(inv, async (s) => {
      await exportPod(s, await resolveLivePod(s, uuid), file, { ...(app !== undefined ? { app } : {}), overwrite: inv.values.overwrite === true });
      return 0;
    }, { create: false });
  },
};
