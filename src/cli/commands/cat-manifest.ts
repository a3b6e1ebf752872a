import { readFileSync } from 'node:fs';
import { PodlogError } from '../../errors.js';
import { podDir, podPaths } from '../../stage0/pod-dir.js';
import { out, str, type Command } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';

export const catManifest: Command = {
  usage: 'podlog cat-manifest [FLAGS] UUID',
  options: {
    'pretty-print': { type: 'boolean', default: true, description: 'indent the JSON; --pretty-print=false prints it on one line' },
    'uuid-file': { type: 'string', value: 'FILE', description: "read the pod's UUID from FILE" },
  },
  operand: 'pod',
  examples: ['podlog cat-manifest 5f3a', 'podlog cat-manifest --pretty-print=false --uuid-file=/run/pod.uuid'],
  run: (inv) =>
    withStage0(inv, async (s) => {
      const [input] = uuidArgs(inv.positionals, str(inv.values, 'uuid-file'));
      const uuid = await resolveLivePod(s, input!);
      let manifest: unknown;
      try {
        manifest = JSON.parse(readFileSync(podPaths(podDir(inv.dir, uuid)).manifest, 'utf8'));
      } catch {
        throw new PodlogError('ENOMANIFEST', `pod ${uuid} has no manifest (it is being prepared, aborted, or deleted)`);
      }
      out(JSON.stringify(manifest, null, inv.values['pretty-print'] === false ? undefined : '\t'));
      return 0;
    }, { create: false }),
};
