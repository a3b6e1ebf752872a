import { RKT_STATE_NAMES } from '../../../machines/pod.js';
import { PodlogError } from '../../errors.js';
import { resolvePodUuid } from '../../engine/resolve.js';
import { replayPod } from '../../inspect/replay.js';
import { openStore } from '../../store/open.js';
import { out, str, type Command } from '../command.js';
import { table } from '../table.js';
import { describeData } from '../event-view.js';

export const replay: Command = {
  usage: 'podlog replay [FLAGS] UUID',
  options: {
    at: { type: 'string', value: 'VERSION', description: "the version of the pod's stream to stop at", shownDefault: 'its last' },
    json: { type: 'boolean', default: false, description: 'print the state and context as JSON' },
  },
  examples: ['podlog replay 5f3a --at 4', 'podlog replay --json 5f3a'],
  operand: 'pod',
  async run({ values, positionals, dir, store: url }) {
    if (positionals.length !== 1) throw new PodlogError('EUSAGE', 'replay takes exactly one UUID');
    const at = str(values, 'at');
    if (at !== undefined && !/^\d+$/.test(at)) throw new PodlogError('EUSAGE', `--at: ${JSON.stringify(at)} is not a version number`);
    const store = await openStore(dir, { access: 'inspect', url });
    try {
      const uuid = await resolvePodUuid(store, positionals[0]!);
      const r = await replayPod(store, uuid, at === undefined ? undefined : Number(at));
      if (values.json) {
        out(JSON.stringify({ ...r, rktState: RKT_STATE_NAMES[r.state] }, null, 2));
        return 0;
      }
      out(`pod ${r.uuid} at version ${r.version} of ${r.latest}: ${RKT_STATE_NAMES[r.state]}`);
      out(table(['VERSION', 'TIME', 'EVENT', 'STATE AFTER', 'DETAILS'], r.steps.map(({ event, state }) => [
        String(event.version), event.meta.time, event.type, RKT_STATE_NAMES[state], describeData(event),
      ])));
      out(`context: ${JSON.stringify(r.context, null, 2)}`);
      return 0;
    } finally {
      await store.close();
    }
  },
};
