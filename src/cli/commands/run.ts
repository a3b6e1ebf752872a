import { writeFileSync } from 'node:fs';
import { PodlogError } from '../../errors.js';
import { prepare as prepareStage0 } from '../../stage0/prepare.js';
import { run as runStage0, runPrepared as runPreparedStage0 } from '../../stage0/run.js';
import { out, type Command, type Invocation } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';
import { configFrom, parseRunFlags } from '../run-flags.js';

const APP_FLAGS = '[--exec=PATH] [--name=NAME] [--user=U] [--group=G] [--working-dir=DIR] [--environment=N=V] [-- ARGS... ---]';
const POD_FLAGS = '[--set-env=N=V] [--set-env-file=F] [--inherit-env] [--uuid-file-save=F] [--stage1-path=DIR] [--user-annotation=K=V] [--user-label=K=V]';
const RUN_FLAGS = '[--net=none|host] [--dns=default|host|none] [--hostname=NAME] [--mds-register]';

const savingUuid = (file: string | undefined) => (uuid: string) => {
  if (file !== undefined) writeFileSync(file, uuid);
};

/** The pod's configuration from the flags, and the hook that saves its UUID as soon as it exists. */
const podConfig = (inv: Invocation) => {
  const flags = parseRunFlags(inv.positionals);
  return { cfg: configFrom(flags), hooks: { created: savingUuid(flags.flags.get('uuid-file-save')?.at(-1)) } };
};

export const run: Command = {
  usage: `podlog run ${POD_FLAGS} ${RUN_FLAGS} IMAGE ${APP_FLAGS} [IMAGE ...]`,
  options: {},
  raw: true,
  run: (inv: Invocation) =>
    withStage0(inv, (s) => {
      const { cfg, hooks } = podConfig(inv);
      return runStage0(s, cfg, hooks);
    }),
};

export const prepare: Command = {
  usage: `podlog prepare [--quiet] ${POD_FLAGS} IMAGE ${APP_FLAGS} [IMAGE ...]`,
  options: {},
  raw: true,
  run: (inv: Invocation) =>
    withStage0(inv, async (s) => {
      const { cfg, hooks } = podConfig(inv);
      out(await prepareStage0(s, cfg, hooks));
      return 0;
    }),
};

export const runPrepared: Command = {
  usage: `podlog run-prepared ${RUN_FLAGS} [--uuid-file=F] UUID`,
  options: {},
  raw: true,
  run: (inv: Invocation) =>
    withStage0(inv, async (s) => {
      const flags = parseRunFlags(inv.positionals);
      const uuids = uuidArgs(flags.apps.map((a) => a.image), flags.flags.get('uuid-file')?.at(-1));
      if (uuids.length !== 1) throw new PodlogError('EUSAGE', 'run-prepared takes exactly one UUID');
      const uuid = await resolveLivePod(s, uuids[0]!);
      return runPreparedStage0(s, configFrom({ apps: [], flags: flags.flags }), uuid);
    }),
};
