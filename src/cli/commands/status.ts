import { RKT_STATE_NAMES } from '../../../machines/pod.js';
import type { PodView } from '../../engine/engine.js';
import { PodlogError } from '../../errors.js';
import { podStatus } from '../../stage0/status.js';
import { out, type Command } from '../command.js';
import { parseDuration } from '../duration.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';

/** rkt's --wait[=bool|duration]: absent → no wait; bare or true → forever; a duration → that long. */
const waitFor = (flag: string | undefined): number | undefined => {
  if (flag === undefined || flag === 'false') return undefined;
  if (flag === '' || flag === 'true') return Number.MAX_SAFE_INTEGER;
  return parseDuration(flag, '--wait');
};

const rktStatus = (view: PodView): string[] => {
  const c = view.context;
  const finished = ['exited', 'exitedGarbage', 'deleting', 'deleted'].includes(view.state);
  return [
    `state=${RKT_STATE_NAMES[view.state]}`,
    ...(c.createdAt ? [`created=${c.createdAt}`] : []),
    ...(c.startedAt ? [`started=${c.startedAt}`] : []),
    ...(c.pid !== undefined && view.state === 'running' ? [`pid=${c.pid}`] : []),
    `exited=${finished}`,
    ...c.apps.filter((a) => a.exitCode !== undefined).map((a) => `app-${a.name}=${a.exitCode}`),
  ];
};

export const status: Command = {
  name: 'status',
  summary: "Print a pod's status (rkt's fields); --wait until it has finished",
  usage: 'podlog status [--wait[=DURATION]] [--format=json] [--uuid-file=F] UUID',
  options: {},
  raw: true,
  run: (inv) =>
    withStage0(inv, async (s) => {
      let wait: string | undefined;
      let json = false;
      let uuidFile: string | undefined;
      const rest: string[] = [];
      for (const a of inv.positionals) {
        if (a === '--wait' || a.startsWith('--wait=')) wait = a.slice('--wait='.length);
        else if (a === '--format=json') json = true;
        else if (a.startsWith('--uuid-file=')) uuidFile = a.slice('--uuid-file='.length);
        else if (a.startsWith('--')) throw new PodlogError('EUSAGE', `status: unknown flag ${a}`);
        else rest.push(a);
      }
      const uuids = uuidArgs(rest, uuidFile);
      if (uuids.length !== 1) throw new PodlogError('EUSAGE', 'status takes exactly one UUID');
      const view = await podStatus(s, await resolveLivePod(s, uuids[0]!), waitFor(wait));
      if (json) out(JSON.stringify({ ...view.context, state: RKT_STATE_NAMES[view.state], version: view.version }));
      else out(rktStatus(view).join('\n'));
      return 0;
    }),
};
