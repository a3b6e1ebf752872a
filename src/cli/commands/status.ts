import { RKT_STATE_NAMES } from '../../../machines/pod.js';
import { podStatusJson } from '../../api/pod-json.js';
import type { PodView } from '../../engine/engine.js';
import { PodlogError } from '../../errors.js';
import { podDir, readPid } from '../../stage0/pod-dir.js';
import { networksText } from '../../stage0/pod-networks.js';
import { podStatus } from '../../stage0/status.js';
import { out, type Command, type Options } from '../command.js';
import { booleanValue } from '../parse.js';
import { didYouMeanFlag } from '../suggest.js';
import { parseDuration } from '../duration.js';
import { NO_USER_METADATA, podUserMetadata, recordedUserMetadata, resolveLivePod, uuidArgs, withStage0 } from '../pods.js';

/** rkt's --wait[=bool|duration]: absent → no wait; bare or true → forever; a duration → that long. */
const waitFor = (flag: string | undefined): number | undefined => {
  if (flag === undefined || flag === 'false') return undefined;
  if (flag === '' || flag === 'true') return Number.MAX_SAFE_INTEGER;
  return parseDuration(flag, '--wait');
};

const rktStatus = (view: PodView, pid1: number | undefined, hostId: string): string[] => {
  const c = view.context;
  const finished = view.snapshot.hasTag('ranAndExited');
  return [
    `state=${RKT_STATE_NAMES[view.state]}`,
    // Only another host's pod (status --all-hosts) says where it is: rkt's lines stay rkt's.
    ...(c.host !== undefined && c.host !== hostId ? [`host=${c.host}`] : []),
    ...(c.createdAt ? [`created=${c.createdAt}`] : []),
    ...(c.startedAt ? [`started=${c.startedAt}`] : []),
    // rkt's pid= is the pod's PID 1 (what enter targets), from the pid file stage1 writes.
    ...(pid1 !== undefined && view.state === 'running' ? [`pid=${pid1}`] : []),
    `exited=${finished}`,
    ...(networksText(c.networks) !== '' ? [`networks=${networksText(c.networks)}`] : []),
    ...(c.insecure !== undefined ? [`insecure-options=${c.insecure.join(',')}`] : []),
    ...c.apps.filter((a) => a.exitCode !== undefined).map((a) => `app-${a.name}=${a.exitCode}`),
    // A mutable pod's apps each have a state of their own (names cannot hold ':' or ',').
    ...(c.mutable ? [`app-states=${c.apps.map((a) => `${a.name}:${a.state}`).join(',')}`] : []),
    ...(c.apps.some((a) => a.oom === true) ? [`oom-killed=${c.apps.filter((a) => a.oom === true).map((a) => a.name).join(',')}`] : []),
  ];
};

const failFormat = (format: string | undefined): never => {
  throw new PodlogError('EUSAGE', `--format: unknown format ${JSON.stringify(format)} (json)`);
};

/** status parses its own arguments (rkt's --wait takes a value only after '='); help and its parser share this table. */
const STATUS_OPTIONS: Options = {
  wait: { type: 'string', value: '[=DURATION]', description: 'wait until the pod has finished (--wait alone: however long it takes; --wait=DURATION: at most that long)' },
  format: { type: 'string', value: 'json', description: 'print JSON' },
  'all-hosts': { type: 'boolean', default: false, description: "find the pod among every host's on a shared log" },
  'uuid-file': { type: 'string', value: 'FILE', description: "read the pod's UUID from FILE" },
};

export const status: Command = {
  usage: 'podlog status [FLAGS] UUID',
  options: {},
  flagGroups: [{ title: 'Flags', options: STATUS_OPTIONS }],
  examples: ['podlog status 5f3a', 'podlog status --wait=30s --format=json 5f3a'],
  operand: 'pod',
  raw: true,
  run: (inv) =>
    withStage0(inv, async (s) => {
      let wait: string | undefined;
      let json = false;
      let uuidFile: string | undefined;
      let allHosts = false;
      const rest: string[] = [];
      // --wait takes its value only after '=' (rkt's bool-or-duration flag); the others either way.
      const args = inv.positionals;
      for (let i = 0; i < args.length; i++) {
        const a = args[i]!;
        const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
        const value = (): string => {
          const v = inline ?? args[++i];
          if (v === undefined) throw new PodlogError('EUSAGE', `status: ${flag} needs a value`);
          return v;
        };
        if (flag === '--wait') wait = inline ?? '';
        else if (flag === '--format') {
          const format = value();
          json = format === 'json' || failFormat(format);
        }
        else if (flag === '--uuid-file') uuidFile = value();
        else if (flag === '--all-hosts') allHosts = inline === undefined || booleanValue(flag, inline);
        else if (a.startsWith('-') && a !== '-') throw new PodlogError('EUSAGE', `status: unknown flag ${flag}${didYouMeanFlag(flag, Object.keys(STATUS_OPTIONS))}`);
        else rest.push(a);
      }
      const uuids = uuidArgs(rest, uuidFile);
      if (uuids.length !== 1) throw new PodlogError('EUSAGE', 'status takes exactly one UUID');
      const view = await podStatus(s, await resolveLivePod(s, uuids[0]!, { allHosts }), waitFor(wait));
      const meta = recordedUserMetadata(view.context) ?? podUserMetadata(s.dataDir, view.uuid) ?? NO_USER_METADATA;
      if (json) out(JSON.stringify(podStatusJson(view, meta)));
      else out(rktStatus(view, readPid(podDir(inv.dir, view.uuid)), inv.hostId).join('\n'));
      return 0;
    }, { create: false }),
};
