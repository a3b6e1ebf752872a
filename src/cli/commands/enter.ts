import { PodlogError } from '../../errors.js';
import { isAcName } from '../../stage0/config.js';
import { enter as enterStage0 } from '../../stage0/enter.js';
import { str, type Command } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';

export const enter: Command = {
  usage: 'podlog enter [FLAGS] UUID [-- CMD [ARGS...]]',
  options: {
    app: { type: 'string', value: 'NAME', description: 'the app to enter (needed when the pod has several)' },
    'uuid-file': { type: 'string', value: 'FILE', description: "read the pod's UUID from FILE" },
  },
  operand: 'pod',
  examples: ['podlog enter 5f3a', 'podlog enter --app=web 5f3a -- cat /etc/hostname'],
  run: (inv) => {
    const app = str(inv.values, 'app');
    if (app !== undefined && !isAcName(app)) throw new PodlogError('EUSAGE', `--app: ${JSON.stringify(app)} is not an app name`);
    // With --uuid-file every argument is the command; without, the first one is the UUID.
    const file = str(inv.values, 'uuid-file');
    const [input] = file === undefined ? uuidArgs(inv.positionals.slice(0, 1), undefined) : uuidArgs([], file);
    const command = file === undefined ? inv.positionals.slice(1) : inv.positionals;
    return withStage0(inv, async (s) => enterStage0(s, await resolveLivePod(s, input!), app, command), { create: false });
  },
};
