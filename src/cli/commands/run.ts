import { writeFileSync } from 'node:fs';
import { PodlogError } from '../../errors.js';
import { prepare as prepareStage0 } from '../../stage0/prepare.js';
import { run as runStage0, runPrepared as runPreparedStage0 } from '../../stage0/run.js';
import { out, type Command, type Invocation } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';
import { checkRunFlags, runVerbFlags } from '../run-flags.js';

export const savingUuid = (file: string | undefined) => (uuid: string) => {
  if (file !== undefined) writeFileSync(file, uuid);
};

export const run: Command = {
  usage: 'podlog run [FLAGS] IMAGE [APP FLAGS] [-- ARGS... ---] [IMAGE [APP FLAGS] ...]\npodlog run [FLAGS] --pod-manifest=FILE',
  options: {},
  flagGroups: runVerbFlags('run'),
  examples: [
    "podlog run fixtures/build/aci/busybox-gzip.aci --exec /bin/sh -- -c 'echo hello'",
    'podlog run --net=host --volume=data,kind=host,source=/srv/data busybox --mount=volume=data,target=/data',
  ],
  raw: true,
  run: (inv: Invocation) => {
    const { cfg, uuidFileSave } = checkRunFlags(inv.positionals, 'run');
    return withStage0(inv, (s) => runStage0(s, cfg, { created: savingUuid(uuidFileSave) }));
  },
};

export const prepare: Command = {
  usage: 'podlog prepare [FLAGS] IMAGE [APP FLAGS] [-- ARGS... ---] [IMAGE [APP FLAGS] ...]\npodlog prepare [FLAGS] --pod-manifest=FILE',
  options: {},
  flagGroups: runVerbFlags('prepare'),
  examples: ['podlog prepare --uuid-file-save=/run/pod.uuid busybox --exec /bin/sleep -- 60', 'podlog run-prepared --uuid-file=/run/pod.uuid'],
  raw: true,
  run: (inv: Invocation) => {
    const { cfg, uuidFileSave } = checkRunFlags(inv.positionals, 'prepare');
    return withStage0(inv, async (s) => {
      out(await prepareStage0(s, cfg, { created: savingUuid(uuidFileSave) }));
      return 0;
    });
  },
};

export const runPrepared: Command = {
  usage: 'podlog run-prepared [FLAGS] UUID',
  options: {},
  flagGroups: runVerbFlags('run-prepared'),
  examples: ['podlog run-prepared 5f3a', 'podlog run-prepared --net=none --uuid-file=/run/pod.uuid'],
  operand: 'pod',
  raw: true,
  run: (inv: Invocation) => {
    const { cfg, uuids: given, uuidFile } = checkRunFlags(inv.positionals, 'run-prepared');
    const uuids = uuidArgs(given, uuidFile);
    if (uuids.length !== 1) throw new PodlogError('EUSAGE', 'run-prepared takes exactly one UUID');
    return withStage0(inv, async (s) => runPreparedStage0(s, cfg, await resolveLivePod(s, uuids[0]!)), { create: false });
  },
};
