import { writeFileSync } from 'node:fs';
import { PodlogError } from '../../errors.js';
import { prepare as prepareStage0 } from '../../stage0/prepare.js';
import { run as runStage0, runPrepared as runPreparedStage0 } from '../../stage0/run.js';
import { out, type Command, type Invocation } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';
import { checkRunFlags } from '../run-flags.js';

const APP_FLAGS =
  '[--exec=PATH] [--name=NAME] [--user=U] [--group=G] [--working-dir=DIR] [--environment=N=V] [--mount=volume=NAME,target=PATH] [--caps-retain=CAP,...|--caps-remove=CAP,...]' +
  ' [--memory=SIZE] [--cpu=CORES] [--cpu-shares=N] [--oom-score-adj=N] [--seccomp=mode=retain|remove,[errno=NAME,]SYSCALL|@GROUP,...] [--readonly-rootfs] [-- ARGS... ---]';
const POD_FLAGS = '[--set-env=N=V] [--set-env-file=F] [--inherit-env] [--uuid-file-save=F] [--stage1-path=DIR] [--user-annotation=K=V] [--user-label=K=V]' +
  ' [--volume=NAME,kind=host,source=PATH[,readOnly=true][,recursive=true]] [--volume=NAME,kind=empty[,mode=0755][,uid=N][,gid=N]] [--mount=volume=NAME,target=PATH]' +
  ' [--port=NAME:[HOSTIP:]HOSTPORT] [--private-users] [--no-overlay]';
const RUN_FLAGS =
  '[--net=default|NAME[:K=V;...],...|none|host] [--local-config=DIR] [--net-plugins-dir=DIR] [--interactive] [--hostname=NAME] [--dns=default|host|none|IP...] [--dns-search=DOMAIN] [--dns-opt=OPT] [--dns-domain=DOMAIN] [--hosts-entry=IP=NAME[,NAME...]|host]';

export const savingUuid = (file: string | undefined) => (uuid: string) => {
  if (file !== undefined) writeFileSync(file, uuid);
};

export const run: Command = {
  usage: `podlog run ${POD_FLAGS} ${RUN_FLAGS} IMAGE ${APP_FLAGS} [IMAGE ...] | --pod-manifest=FILE`,
  options: {},
  raw: true,
  run: (inv: Invocation) => {
    const { cfg, uuidFileSave } = checkRunFlags(inv.positionals, 'run');
    return withStage0(inv, (s) => runStage0(s, cfg, { created: savingUuid(uuidFileSave) }));
  },
};

export const prepare: Command = {
  usage: `podlog prepare ${POD_FLAGS} IMAGE ${APP_FLAGS} [IMAGE ...] | --pod-manifest=FILE`,
  options: {},
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
  usage: `podlog run-prepared ${RUN_FLAGS} [--uuid-file=F] UUID`,
  options: {},
  raw: true,
  run: (inv: Invocation) => {
    const { cfg, uuids: given, uuidFile } = checkRunFlags(inv.positionals, 'run-prepared');
    const uuids = uuidArgs(given, uuidFile);
    if (uuids.length !== 1) throw new PodlogError('EUSAGE', 'run-prepared takes exactly one UUID');
    return withStage0(inv, async (s) => runPreparedStage0(s, cfg, await resolveLivePod(s, uuids[0]!)), { create: false });
  },
};
