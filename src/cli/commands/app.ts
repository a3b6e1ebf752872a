import { parseArgs } from 'node:util';
import { PodlogError } from '../../errors.js';
import { addApp, appView, appViews, removeApp, sandbox, startApp, stopApp, type AppView } from '../../stage0/app.js';
import { out, type Command, type Invocation, type Options } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';
import { checkRunFlags, fetchPolicyOf, parseRunFlags } from '../run-flags.js';
import { table } from '../table.js';
import { savingUuid } from './run.js';

const SANDBOX_FLAGS =
  '[--uuid-file-save=F] [--stage1-path=DIR] [--volume=NAME,kind=host|empty,...] [--user-annotation=K=V] [--user-label=K=V] [--insecure-options=...]' +
  ' [--net=default|NAME[:K=V;...],...|none|host] [--local-config=DIR] [--net-plugins-dir=DIR] [--hostname=NAME] [--dns=default|host|none|IP...] [--dns-search=DOMAIN] [--dns-opt=OPT] [--dns-domain=DOMAIN] [--hosts-entry=IP=NAME[,NAME...]|host]';
/** What app add takes for the pod as a whole: how its image is fetched and checked. */
const FETCH_FLAGS = new Set(['insecure-options', 'local-config']);
const APP_FLAGS =
  '[--name=NAME] [--exec=PATH] [--user=U] [--group=G] [--working-dir=DIR] [--environment=N=V] [--mount=volume=NAME,target=PATH] [--caps-retain=CAP,...|--caps-remove=CAP,...]' +
  ' [--memory=SIZE] [--cpu=CORES] [--cpu-shares=N] [--oom-score-adj=N] [--seccomp=...] [--readonly-rootfs] [-- ARGS... ---]';

const usage = (message: string): PodlogError => new PodlogError('EUSAGE', message);

/** A sub-verb's own flags, strictly, and its one UUID. */
const parse = (verb: string, args: string[], options: Options) => {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usage(`app ${verb}: ${(e as Error).message} (see podlog app --help)`);
  }
  const [uuid] = uuidArgs(parsed.positionals, undefined);
  if (parsed.positionals.length !== 1) throw usage(`app ${verb} takes exactly one UUID`);
  return { uuid: uuid!, values: parsed.values };
};

const appName = (verb: string, values: Record<string, unknown>): string => {
  const name = values.app;
  if (typeof name !== 'string' || name === '') throw usage(`app ${verb}: --app=NAME is required`);
  return name;
};

const format = (values: Record<string, unknown>): 'json' | undefined => {
  const f = values.format;
  if (f !== undefined && f !== 'json') throw usage(`--format: unknown format ${JSON.stringify(f)} (json)`);
  return f;
};

const asJson = (a: AppView) => ({
  name: a.name, state: a.state, image_id: a.imageId, image_name: a.imageName,
  created_at: a.createdAt, started_at: a.startedAt, finished_at: a.finishedAt, exit_code: a.exitCode,
});

/** One app verb on one pod: its flags, then the verb on the pod its UUID names. */
const onPod = (inv: Invocation, verb: string, args: string[], options: Options, act: (s: Parameters<Parameters<typeof withStage0>[1]>[0], uuid: string, values: Record<string, unknown>) => Promise<number>): Promise<number> => {
  const { uuid, values } = parse(verb, args, options);
  return withStage0(inv, async (s) => act(s, await resolveLivePod(s, uuid), values), { create: false });
};

const APP_OPTION: Options = { app: { type: 'string' } };

const SUBVERBS: Record<string, (inv: Invocation, args: string[]) => Promise<number>> = {
  sandbox: (inv, args) => {
    const { cfg, uuidFileSave } = checkRunFlags(args, 'app-sandbox');
    return withStage0(inv, (s) => sandbox(s, cfg, { created: savingUuid(uuidFileSave) }));
  },
  add: (inv, args) => {
    const f = parseRunFlags(args, 'app-add');
    const [uuid] = uuidArgs(f.uuids, undefined);
    if (f.apps.length !== 1) throw usage(f.apps.length === 0 ? 'app add: no image specified (podlog app add UUID IMAGE)' : 'app add takes one image');
    const podFlags = [...f.flags.keys()].filter((k) => !FETCH_FLAGS.has(k));
    if (podFlags.length > 0) throw usage(`app add: ${podFlags.map((k) => `--${k}`).join(', ')} must follow the image`);
    const policy = fetchPolicyOf(f);
    return withStage0(inv, async (s) => {
      await addApp(s, await resolveLivePod(s, uuid!), f.apps[0]!, policy);
      return 0;
    }, { create: false });
  },
  start: (inv, args) => onPod(inv, 'start', args, APP_OPTION, async (s, uuid, values) => {
    await startApp(s, uuid, appName('start', values));
    return 0;
  }),
  stop: (inv, args) => onPod(inv, 'stop', args, { ...APP_OPTION, force: { type: 'boolean', default: false } }, async (s, uuid, values) => {
    await stopApp(s, uuid, appName('stop', values), values.force === true);
    return 0;
  }),
  rm: (inv, args) => onPod(inv, 'rm', args, APP_OPTION, async (s, uuid, values) => {
    await removeApp(s, uuid, appName('rm', values));
    return 0;
  }),
  list: (inv, args) => onPod(inv, 'list', args, { format: { type: 'string' }, 'no-legend': { type: 'boolean', default: false } }, async (s, uuid, values) => {
    const json = format(values);
    const apps = await appViews(s, uuid);
    if (json) {
      out(JSON.stringify(apps.map(asJson)));
      return 0;
    }
    const lines = apps.map((a) => [a.name, a.state, a.createdAt ?? '', a.startedAt ?? '', a.finishedAt ?? '', a.exitCode === undefined ? '' : String(a.exitCode)]);
    const legend = values['no-legend'] === true ? null : ['NAME', 'STATE', 'CREATED', 'STARTED', 'FINISHED', 'EXIT'];
    if (lines.length > 0 || legend !== null) out(table(legend, lines));
    return 0;
  }),
  status: (inv, args) => onPod(inv, 'status', args, { ...APP_OPTION, format: { type: 'string' } }, async (s, uuid, values) => {
    const json = format(values);
    const a = await appView(s, uuid, appName('status', values));
    if (json) out(JSON.stringify(asJson(a)));
    else {
      out(Object.entries(asJson(a)).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${String(v)}`).join('\n'));
    }
    return 0;
  }),
};

export const app: Command = {
  usage: [
    `podlog app sandbox ${SANDBOX_FLAGS}`,
    `podlog app add UUID [--insecure-options=...] [--local-config=DIR] IMAGE ${APP_FLAGS}`,
    'podlog app start UUID --app=NAME',
    'podlog app stop UUID --app=NAME [--force]',
    'podlog app rm UUID --app=NAME',
    'podlog app list UUID [--format=json] [--no-legend]',
    'podlog app status UUID --app=NAME [--format=json]',
  ].join('\n       '),
  options: {},
  raw: true,
  run: (inv) => {
    const [verb, ...args] = inv.positionals;
    const subverb = verb === undefined ? undefined : SUBVERBS[verb];
    if (subverb === undefined || !Object.hasOwn(SUBVERBS, verb!)) {
      throw usage(verb === undefined ? 'app: a sub-command is needed (sandbox, add, start, stop, rm, list, status)' : `app: unknown sub-command ${JSON.stringify(verb)} (sandbox, add, start, stop, rm, list, status)`);
    }
    return subverb(inv, args);
  },
};
