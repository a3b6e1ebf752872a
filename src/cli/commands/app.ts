import { PodlogError } from '../../errors.js';
import { addApp, appView, appViews, removeApp, sandbox, startApp, stopApp, type AppView } from '../../stage0/app.js';
import { out, type Command, type Invocation, type Options } from '../command.js';
import { resolveLivePod, uuidArgs, withStage0 } from '../pods.js';
import { parseFlags } from '../parse.js';
import { checkRunFlags, fetchPolicyOf, parseRunFlags, runVerbFlags } from '../run-flags.js';
import { table } from '../table.js';
import { savingUuid } from './run.js';

/** What app add takes for the pod as a whole: how its image is fetched and checked. */
const FETCH_FLAGS = new Set(['insecure-options', 'local-config']);

const usage = (message: string): PodlogError => new PodlogError('EUSAGE', message);

/** A sub-verb's own flags, strictly, and its one UUID. */
const parse = (verb: string, args: string[], options: Options) => {
  const parsed = parseFlags(args, options, { verb: `app ${verb}`, help: 'podlog app --help', positionals: true });
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

const APP_OPTION: Options = { app: { type: 'string', value: 'NAME', description: 'the app (required)' } };
const FORMAT_OPTION: Options = { format: { type: 'string', value: 'json', description: 'print JSON' } };
/** The flags of each sub-command that parses with parseArgs (sandbox and add take the run verbs'). */
const OPTIONS = {
  start: APP_OPTION,
  stop: { ...APP_OPTION, force: { type: 'boolean', default: false, description: 'SIGKILL at once instead of SIGTERM and a grace period' } },
  rm: APP_OPTION,
  list: { ...FORMAT_OPTION, 'no-legend': { type: 'boolean', default: false, description: 'no header line' } },
  status: { ...APP_OPTION, ...FORMAT_OPTION },
} satisfies Record<string, Options>;

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
  start: (inv, args) => onPod(inv, 'start', args, OPTIONS.start, async (s, uuid, values) => {
    await startApp(s, uuid, appName('start', values));
    return 0;
  }),
  stop: (inv, args) => onPod(inv, 'stop', args, OPTIONS.stop, async (s, uuid, values) => {
    await stopApp(s, uuid, appName('stop', values), values.force === true);
    return 0;
  }),
  rm: (inv, args) => onPod(inv, 'rm', args, OPTIONS.rm, async (s, uuid, values) => {
    await removeApp(s, uuid, appName('rm', values));
    return 0;
  }),
  list: (inv, args) => onPod(inv, 'list', args, OPTIONS.list, async (s, uuid, values) => {
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
  status: (inv, args) => onPod(inv, 'status', args, OPTIONS.status, async (s, uuid, values) => {
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
    'podlog app sandbox [FLAGS]',
    'podlog app add [FLAGS] UUID IMAGE [APP FLAGS] [-- ARGS... ---]',
    'podlog app start|stop|rm|status UUID --app=NAME [FLAGS]',
    'podlog app list UUID [FLAGS]',
  ].join('\n'),
  options: {},
  flagGroups: [
    ...runVerbFlags('app-sandbox').map((g) => ({ ...g, title: `sandbox: ${g.title}` })),
    ...runVerbFlags('app-add').map((g) => ({ ...g, title: `add: ${g.title}` })),
    ...Object.entries(OPTIONS).map(([verb, options]) => ({ title: `${verb}: Flags`, options })),
  ],
  examples: ['podlog app sandbox --uuid-file-save=/run/pod.uuid', 'podlog app add 5f3a busybox --name=sh --exec /bin/sleep -- 600', 'podlog app start 5f3a --app=sh', 'podlog app list 5f3a'],
  subcommands: Object.keys(SUBVERBS),
  operand: 'pod',
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
