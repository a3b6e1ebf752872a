import { PodlogError } from '../../errors.js';
import { gc as gcStage0 } from '../../stage0/gc.js';
import { out, str, type Command } from '../command.js';
import { parseDuration } from '../duration.js';
import { withStage0 } from '../pods.js';

export const gc: Command = {
  usage: 'podlog gc [FLAGS]',
  options: {
    'grace-period': { type: 'string', default: '30m', value: 'DURATION', description: 'how long a pod stays marked as garbage before it is removed' },
    'expire-prepared': { type: 'string', default: '24h', value: 'DURATION', description: 'how long a prepared pod waits to be run before it is garbage' },
    'mark-only': { type: 'boolean', default: false, description: 'mark pods as garbage; remove none' },
  },
  examples: ['podlog gc', 'podlog gc --grace-period=0s --expire-prepared=0s'],
  run: (inv) => {
    if (inv.positionals.length > 0) throw new PodlogError('EUSAGE', `gc takes no arguments (got ${inv.positionals.join(' ')})`);
    const options = {
      gracePeriodMs: parseDuration(str(inv.values, 'grace-period')!, '--grace-period'),
      expirePreparedMs: parseDuration(str(inv.values, 'expire-prepared')!, '--expire-prepared'),
      markOnly: inv.values['mark-only'] === true,
    };
    return withStage0(inv, async (s) => {
      const report = await gcStage0(s, options);
      for (const line of report.lines) out(line);
      // A pod's failure is reported and the pod skipped; gc exits 254 if it could not do its job for one.
      // A broken pod is named but is not gc's failure: nobody asked for that pod.
      for (const b of report.broken) process.stderr.write(`podlog: gc: pod ${b.uuid} skipped: ${b.message}\n`);
      for (const error of report.errors) process.stderr.write(`podlog: gc: ${error}\n`);
      return report.errors.length > 0 ? 254 : 0;
    }, { create: false });
  },
};
