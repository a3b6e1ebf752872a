import { PodlogError } from '../../errors.js';
import { out, type Command } from '../command.js';
import { helpText } from '../help.js';

export const help: Command = {
  usage: 'podlog help [COMMAND]',
  options: {},
  examples: ['podlog help run', 'podlog help'],
  run: async ({ positionals }) => {
    if (positionals.length > 1) throw new PodlogError('EUSAGE', 'help takes one command at most');
    out(await helpText(positionals[0]));
    return 0;
  },
};
