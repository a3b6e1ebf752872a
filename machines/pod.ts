/**
 * The pod machine: rkt's pod lifecycle (rkt-semantics §1.2–1.4, §1.8) as pure data and guards.
 *
 * Every event of a pod's stream is an event of this machine; a pod's state is the fold of its stream
 * through xstate's pure `transition()`. Intents ask for an effect: the machine names the effect as an
 * action (data), and the engine's interpreter performs it. The action implementations below throw, so
 * an effect run by accident during a fold fails loudly instead of touching the world.
 *
 * The machine never wedges. A failed effect (EffectFailed) closes its intent and leaves the pod in its
 * state; an intent whose process died is finished or compensated by the reconciler (run by `list`,
 * `status`, `gc`, `rm`, `stop`). Who takes the pod on after a failure, state by state:
 *
 * | state     | effects                                                 | after a failure or a crash                   |
 * |-----------|---------------------------------------------------------|----------------------------------------------|
 * | preparing | createPod, renderImage, prepareOverlay (or copyAppRoot  | `prepare`/`run` records PrepareAborted (the  |
 * |           | per app, --no-overlay), writeManifest                   | reconciler does once its process is dead);   |
 * |           |                                                         | then `gc` and `rm` delete the pod            |
 * | prepared  | startStage1                                             | `run-prepared` again; `rm`; `gc` once expired |
 * | running   | stopPod                                                 | `stop` again; the pod's exit is observed by   |
 * |           |                                                         | `run`, `list`, `status`, `gc`, `rm`, `stop`  |
 * | deleting  | deletePod                                               | `gc` and `rm` again (GcRequested is allowed  |
 * |           |                                                         | again once the failed delete is closed)      |
 *
 * A mutable pod (`app sandbox`) runs with no app; while it runs, its apps are added, started,
 * stopped and removed (addApp, startApp, stopApp, removeApp), one intent at a time like any of its
 * effects, each app's state moved as machines/app.ts says; once it has exited, an app can still be
 * removed. A failed or abandoned app effect leaves the app as it was (an add: no app).
 */
import { and, assign, not, setup } from 'xstate';
import { nextAppState, type AppState } from './app.js';
import type { AppSpec, EffectName, PodEventData, PodEventType, PodCgroups, PrivateUsers } from '../src/events/catalogue.js';

/** Bump when the machine changes in a way that changes folded states; projections then rebuild. */
export const POD_MACHINE_VERSION = 2;

export type PodMachineEvent = {
  [T in PodEventType]: { type: T; data: PodEventData[T]; time: string; version: number };
}[PodEventType];

/**
 * One app of a pod, as its events made it: what PrepareRequested (or, in a mutable pod, AppAdded)
 * named, where its image was rendered, and how its last run ended.
 *
 * @inlineType AppState
 */
export interface PodApp extends AppSpec {
  /** The id of the image rendered for it (ImageRendered; AppAdded's image). */
  imageId?: string;
  /** The tree its root is made from: the image and its dependencies rendered once in the tree store, shared by the pods that run them (ImageRendered, AppAdded). */
  treeStoreId?: string;
  /** --no-overlay: the app's root is a copy of its tree in the pod directory (AppRootCopied). */
  copied?: boolean;
  /** Its exit code (AppExited); a start in a mutable pod clears it. */
  exitCode?: number;
  /** Its event handlers' codes (AppHookRan). */
  hooks?: Partial<Record<'pre-start' | 'post-stop', number>>;
  /** From its AppExited: killed by the OOM killer; its cgroup's memory peak (bytes) and CPU time (ns). */
  oom?: boolean;
  /** From its AppExited: the most memory its cgroup held, in bytes, where the hierarchy accounts it. */
  memoryPeak?: number;
  /** From its AppExited: the CPU time its cgroup used, in nanoseconds, where the hierarchy accounts it. */
  cpuTime?: number;
  /** In a mutable pod, the app's own state (machines/app.ts) and its times; the pod's state is its own. */
  state?: AppState;
  /** In a mutable pod, when it was added (AppAdded's time, ISO 8601). */
  createdAt?: string;
  /** In a mutable pod, when its last run started (AppStarted's time). */
  startedAt?: string;
  /** In a mutable pod, when its last run ended (its AppExited's time); a start clears it. */
  finishedAt?: string;
}

/**
 * The intent a pod has open: its effect was asked for and no outcome or EffectFailed has closed it.
 * A pod has at most one; the machine refuses another intent until it is closed, and the reconciler
 * finishes or gives up one whose process died.
 */
export interface PendingIntent {
  /** The effect asked for, which the engine's interpreter runs. */
  effect: EffectName;
  /** The type of the intent event that opened it. */
  intent: PodEventType;
  /** Stream version of the intent: its outcome must follow it. */
  version: number;
  /** The app an app-scoped intent is about. */
  app?: string;
  /** The network a network-scoped intent is about. */
  network?: string;
}

/** A CNI network of the pod: asked for, attached (with its CNI result), or detached again. */
export interface PodNetwork {
  /** The network's name: its CNI configuration list's (`default`, or one in net.d). */
  name: string;
  /** Its interface in the pod's network namespace: eth0, eth1, … in attach order. */
  ifName: string;
  /** The CNI_ARGS its plugins get, from `--net=NAME:K=V;…` (empty for none). */
  args: string;
  /** The configuration list as it was run, so that its detach runs the same, whatever net.d says by then. */
  config: PodEventData['NetworkAttachRequested']['config'];
  /** Where its plugins were found: its detach runs the same ones. */
  pluginDirs: string[];
  /** CNI capability arguments given to ADD and DEL alike: `portMappings` for --port, on the pod's first network. */
  capabilityArgs?: Record<string, unknown>;
  /** True from its NetworkAttached to its NetworkDetached: the pod holds an address on it. */
  attached: boolean;
  /** The CNI ADD result as the plugins gave it (NetworkAttached), which its DEL is given back. */
  result?: PodEventData['NetworkAttached']['result'];
  /** Kept after the detach: which addresses the pod had. */
  summary?: PodEventData['NetworkAttached']['summary'];
}

/**
 * What the log says of a pod: the fold of its event stream through the pod machine, beside its state
 * (PodView). Most fields name the event that sets them; an optional field is absent until one does.
 */
export interface PodContext {
  /** The pod's UUID, the name of its stream (PrepareRequested). */
  uuid: string;
  /** Its apps in the order they were given (PrepareRequested); in a mutable pod, those added and not removed since. */
  apps: PodApp[];
  /** An `app sandbox` pod: it may start with no app; its apps are added, started, stopped and removed while it runs. */
  mutable: boolean;
  /** Its apps' roots are overlays on their image trees; false: each is a copy (--no-overlay, or --private-users owned by chown). */
  overlay: boolean;
  /** --private-users: the host ids its user namespace maps to, and how its files came to be owned by them. */
  privateUsers?: PrivateUsers;
  /** What its last start left unconfined (rkt's --insecure-options: capabilities, paths, seccomp). */
  insecure?: string[];
  /** Isolators of its apps that podlog does not apply (PodPrepared). */
  ignoredIsolators?: Array<{
    /** The app whose isolator it is. */
    app: string;
    /** The isolator's name, e.g. `resource/network-bandwidth`. */
    name: string;
  }>;
  /** The cgroups its last start used (PodStarted). */
  cgroups?: PodCgroups;
  /** Its registration with the metadata service (run --mds-register), while it holds one. */
  metadata?: {
    /** The metadata service's socket, where the registration was made and its unregistration goes. */
    socket: string;
    /** The URL its apps reach the service at (their AC_METADATA_URL). */
    url: string;
  };
  /** Its CNI networks, in attach order (none with --net=host or none). */
  networks?: PodNetwork[];
  /** The effects of a preparation that are done once for the pod (PodCreated, OverlayPrepared, PodManifestWritten). */
  created: boolean;
  /** Its apps' overlay directories exist (OverlayPrepared); stays false in a pod without overlay. */
  overlayPrepared: boolean;
  /** The pod manifest stage1 reads is in its directory (PodManifestWritten). */
  manifestWritten: boolean;
  /** The host that prepared it, which alone runs its effects (absent for pods from before hosts were recorded). */
  host?: string;
  /** Its --user-label flags, by name: pods are filtered by them on any host. */
  userLabels?: Record<string, string>;
  /** Its --user-annotation flags, by name. */
  userAnnotations?: Record<string, string>;
  /** When its preparation began (PrepareRequested's time, ISO 8601, as every time here). */
  createdAt?: string;
  /** When it was prepared (PodPrepared). */
  preparedAt?: string;
  /** When stage1 said it was up (PodStarted). */
  startedAt?: string;
  /** When its exit was recorded (PodExited): by whoever saw it first, so it may be later than the exit itself. */
  exitedAt?: string;
  /** When gc or rm marked it for deletion (PodMarkedGarbage). */
  markedGarbageAt?: string;
  /** When its directory was deleted (PodDeleted; after `log compact`, the time PodCompacted keeps). */
  deletedAt?: string;
  /** The pid of its stage1 (PodStarted); 0 when the process that started it died before recording it and nobody could tell. */
  pid?: number;
  /**
   * Its exit status (PodExited): stage1's, when `run` waited for it; otherwise the code of the first app
   * that failed, else 0 when stage1 recorded every app's exit and 137 when it did not (an app was
   * killed). A mutable pod passes no app's code on: 0 or 137.
   */
  exitCode?: number;
  /** How its last stop was asked for (StopRequested): `force` (--force: SIGKILL at once) or `graceful` (SIGTERM, SIGKILL after the grace period). */
  stopRequested?: 'graceful' | 'force';
  /** Why its preparation was aborted (PrepareAborted). */
  abortReason?: string;
  /** The intent open on it, while one is. */
  pending?: PendingIntent;
  /** The last effect that failed (EffectFailed); kept after the step is retried. */
  lastFailure?: PodEventData['EffectFailed'];
}

/** The pod machine's states (rkt's names for them are RKT_STATE_NAMES). */
export type PodStateName =
  | 'embryo' | 'preparing' | 'abortedPrepare' | 'prepared' | 'running' | 'exited'
  | 'exitedGarbage' | 'garbage' | 'deleting' | 'deleted';

/** rkt's names for the states, as `list` and `status` print them. */
export const RKT_STATE_NAMES: Record<PodStateName, string> = {
  embryo: 'embryo',
  preparing: 'preparing',
  abortedPrepare: 'aborted prepare',
  prepared: 'prepared',
  running: 'running',
  exited: 'exited',
  exitedGarbage: 'exited garbage',
  garbage: 'garbage',
  deleting: 'deleting',
  deleted: 'deleted',
};

const effectAction = (name: EffectName) => () => {
  throw new Error(`effect ${name} must be run by the engine's interpreter, never by the machine`);
};

type Ev<T extends PodEventType> = Extract<PodMachineEvent, { type: T }>;
/** Narrows the event inside a transition whose event type is fixed by its `on` key. */
const as = <T extends PodEventType>(event: PodMachineEvent) => event as Ev<T>;

const attached = (context: PodContext, name: string): boolean => (context.networks ?? []).some((n) => n.name === name && n.attached);

/**
 * Releasing what a pod holds on the host, its networks and its metadata registration: wherever a
 * pod that may hold them can be (it takes them while prepared).
 */
const RELEASE = {
  NetworkDetachRequested: { guard: 'canDetach', actions: ['detachAsked', 'detachNetwork'] },
  NetworkDetached: { guard: { type: 'answersNetwork', params: { effect: 'detachNetwork' } }, actions: 'networkDetached' },
  MetadataUnregisterRequested: { guard: and(['idle', 'registered']), actions: [{ type: 'open', params: { effect: 'unregisterMetadata' } }, 'unregisterMetadata'] },
  MetadataUnregistered: { guard: { type: 'answers', params: { effect: 'unregisterMetadata' } }, actions: 'metadataUnregistered' },
} as const;

/** The app an app event is about (undefined: the pod has no such app). */
const appOf = (context: PodContext, event: PodMachineEvent): PodApp | undefined =>
  context.apps.find((a) => a.name === (event.data as { app?: string }).app);

/** A start begins a run: its time, and none of the last run's end, code or handlers' codes. */
const newRun = (event: PodMachineEvent): Partial<PodApp> =>
  event.type === 'AppStarted' ? { startedAt: event.time, finishedAt: undefined, exitCode: undefined, hooks: undefined } : {};

/** An app verb's intent opens its effect; its outcome closes it and moves the app (machines/app.ts). */
const appVerb = (effect: EffectName) => ({ guard: 'appVerb', actions: [{ type: 'open', params: { effect } }, effect] }) as const;
const appOutcome = (effect: EffectName) => ({ guard: { type: 'answers', params: { effect } }, actions: 'appStep' }) as const;

/** What an app of a running mutable pod can be asked; `app rm` also once the pod has exited (rkt #3799). */
const APP_REMOVE = { AppRemoveRequested: appVerb('removeApp'), AppRemoved: appOutcome('removeApp') } as const;
const APP_VERBS = {
  AppAddRequested: appVerb('addApp'),
  AppAdded: appOutcome('addApp'),
  AppStartRequested: appVerb('startApp'),
  AppStarted: appOutcome('startApp'),
  AppStopRequested: appVerb('stopApp'),
  AppStopped: appOutcome('stopApp'),
  ...APP_REMOVE,
} as const;

const opened = (event: PodMachineEvent, effect: EffectName): PendingIntent => {
  const app = (event.data as { app?: unknown }).app;
  return { effect, intent: event.type, version: event.version, ...(typeof app === 'string' ? { app } : {}) };
};

export const podMachine = setup({
  types: {
    /**
     * rkt's predicates as tags: afterRun (IsAfterRun: stop says "already stopped"), finished
     * (IsFinished: status --wait returns), ranAndExited (status prints exited=true).
     */
    tags: {} as 'afterRun' | 'finished' | 'ranAndExited',
    context: {} as PodContext,
    events: {} as PodMachineEvent,
    input: {} as { uuid: string },
  },
  guards: {
    idle: ({ context }) => context.pending === undefined,
    created: ({ context }) => context.created,
    knownApp: ({ context, event }) => context.apps.some((a) => a.name === as<'ImageRenderRequested'>(event).data.app),
    /** An outcome answers the open intent of its effect (and, for app-scoped effects, of its app). */
    answers: ({ context, event }, params: { effect: EffectName }) =>
      context.pending?.effect === params.effect &&
      (context.pending.app === undefined || context.pending.app === (event.data as { app?: string }).app),
    answersFailure: ({ context, event }) => context.pending?.effect === as<'EffectFailed'>(event).data.effect,
    readyToRun: ({ context }) =>
      context.pending === undefined &&
      context.created &&
      context.manifestWritten &&
      // A mutable pod may start with no app (rkt's app sandbox); its apps are added while it runs.
      (context.apps.length > 0 || context.mutable) &&
      context.apps.every((a) => a.treeStoreId !== undefined) &&
      (context.overlay ? context.overlayPrepared : context.apps.every((a) => a.copied === true)),
    /** The network is not attached (a failed or abandoned attach left it asked for only). */
    canAttach: ({ context, event }) =>
      context.pending === undefined && !attached(context, as<'NetworkAttachRequested'>(event).data.name),
    canDetach: ({ context, event }) =>
      context.pending === undefined && attached(context, as<'NetworkDetachRequested'>(event).data.name),
    answersNetwork: ({ context, event }, params: { effect: EffectName }) =>
      context.pending?.effect === params.effect && context.pending.network === (event.data as { name?: string }).name,
    /** No network is attached and no registration is left: the pod holds nothing, so its directory may go. */
    released: ({ context }) => !(context.networks ?? []).some((n) => n.attached) && context.metadata === undefined,
    registered: ({ context }) => context.metadata !== undefined,
    /** An app verb of a mutable pod, with no other intent open, that the app's state accepts. */
    appVerb: ({ context, event }) =>
      context.mutable && context.pending === undefined && nextAppState(appOf(context, event)?.state, event.type) !== undefined,
    /** An app's exit is recorded once per run: in a mutable pod, only while it runs. */
    appExits: ({ context, event }) => !context.mutable || nextAppState(appOf(context, event)?.state, event.type) !== undefined,
    /** --no-overlay, and the app's image is rendered: its root can be copied. */
    copiesRendered: ({ context, event }) =>
      !context.overlay && context.apps.some((a) => a.name === as<'AppRootCopyRequested'>(event).data.app && a.treeStoreId !== undefined),
  },
  actions: {
    createPod: effectAction('createPod'),
    renderImage: effectAction('renderImage'),
    prepareOverlay: effectAction('prepareOverlay'),
    copyAppRoot: effectAction('copyAppRoot'),
    writeManifest: effectAction('writeManifest'),
    startStage1: effectAction('startStage1'),
    attachNetwork: effectAction('attachNetwork'),
    detachNetwork: effectAction('detachNetwork'),
    registerMetadata: effectAction('registerMetadata'),
    unregisterMetadata: effectAction('unregisterMetadata'),
    stopPod: effectAction('stopPod'),
    addApp: effectAction('addApp'),
    startApp: effectAction('startApp'),
    stopApp: effectAction('stopApp'),
    removeApp: effectAction('removeApp'),
    deletePod: effectAction('deletePod'),
    open: assign({ pending: ({ event }, params: { effect: EffectName }) => opened(event, params.effect) }),
    // Each outcome closes its intent in the same assign as its own change: one context copy per event.
    created: assign(({ event }) => {
      const { data, time } = as<'PrepareRequested'>(event);
      return {
        uuid: data.uuid,
        apps: data.apps.map((a) => ({ ...a })),
        mutable: data.mutable,
        overlay: data.overlay,
        ...(data.privateUsers !== undefined ? { privateUsers: { ...data.privateUsers } } : {}),
        ...(data.host !== undefined ? { host: data.host } : {}),
        ...(data.userLabels !== undefined ? { userLabels: { ...data.userLabels } } : {}),
        ...(data.userAnnotations !== undefined ? { userAnnotations: { ...data.userAnnotations } } : {}),
        createdAt: time,
        pending: opened(event, 'createPod'),
      };
    }),
    podCreated: assign({ pending: undefined, created: true }),
    rendered: assign(({ context, event }) => {
      const { app, imageId, treeStoreId } = as<'ImageRendered'>(event).data;
      return { pending: undefined, apps: context.apps.map((a) => (a.name === app ? { ...a, imageId, treeStoreId } : a)) };
    }),
    overlayPrepared: assign({ pending: undefined, overlayPrepared: true }),
    appRootCopied: assign(({ context, event }) => {
      const { app } = as<'AppRootCopied'>(event).data;
      return { pending: undefined, apps: context.apps.map((a) => (a.name === app ? { ...a, copied: true } : a)) };
    }),
    manifestWritten: assign({ pending: undefined, manifestWritten: true }),
    prepared: assign(({ event }) => {
      const { ignoredIsolators } = as<'PodPrepared'>(event).data;
      return { preparedAt: event.time, ...(ignoredIsolators !== undefined ? { ignoredIsolators: ignoredIsolators.map((i) => ({ ...i })) } : {}) };
    }),
    aborted: assign({ pending: undefined, abortReason: ({ event }) => as<'PrepareAborted'>(event).data.reason }),
    started: assign(({ event }) => {
      const { pid, cgroups } = as<'PodStarted'>(event).data;
      return { pending: undefined, pid, startedAt: event.time, cgroups: cgroups !== undefined ? { layout: cgroups.layout, dirs: [...cgroups.dirs] } : undefined };
    }),
    hookRan: assign({
      apps: ({ context, event }) => {
        const { app, hook, code } = as<'AppHookRan'>(event).data;
        return context.apps.map((a) => (a.name === app ? { ...a, hooks: { ...a.hooks, [hook]: code } } : a));
      },
    }),
    appExited: assign({
      apps: ({ context, event }) => {
        const { app, code, oom, memoryPeak, cpuTime } = as<'AppExited'>(event).data;
        const stats = { ...(oom !== undefined ? { oom } : {}), ...(memoryPeak !== undefined ? { memoryPeak } : {}), ...(cpuTime !== undefined ? { cpuTime } : {}) };
        const moved = (a: PodApp) => (a.state !== undefined ? { state: 'exited' as const, finishedAt: event.time } : {});
        return context.apps.map((a) => (a.name === app ? { ...a, exitCode: code, ...stats, ...moved(a) } : a));
      },
    }),
    // An app verb's outcome: the app as machines/app.ts moves it (an added one joins the pod, a removed one leaves it).
    appStep: assign(({ context, event }) => {
      const app = appOf(context, event);
      const next = nextAppState(app?.state, event.type);
      if (event.type === 'AppAdded') {
        const { app: name, image, imageName, exec, treeStoreId } = event.data;
        const added: PodApp = { name, image, imageId: image, treeStoreId, state: 'created', createdAt: event.time, ...(imageName !== undefined ? { imageName } : {}), ...(exec !== undefined ? { exec: [...exec] } : {}) };
        return { pending: undefined, apps: [...context.apps, added] };
      }
      if (next === 'removed') return { pending: undefined, apps: context.apps.filter((a) => a !== app) };
      return { pending: undefined, apps: context.apps.map((a) => (a === app ? { ...a, state: next as AppState, ...newRun(event) } : a)) };
    }),
    stopAsked: assign(({ event }) => ({
      pending: opened(event, 'stopPod'),
      stopRequested: as<'StopRequested'>(event).data.force ? ('force' as const) : ('graceful' as const),
    })),
    signalled: assign({ pending: undefined }),
    startAsked: assign(({ event }) => {
      const { insecure } = as<'Stage1StartRequested'>(event).data;
      return { insecure: insecure !== undefined && insecure.length > 0 ? [...insecure] : undefined };
    }),
    attachAsked: assign(({ context, event }) => {
      const { name, ifName, args, config, pluginDirs, capabilityArgs } = as<'NetworkAttachRequested'>(event).data;
      return {
        pending: { ...opened(event, 'attachNetwork'), network: name },
        networks: [...(context.networks ?? []).filter((n) => n.name !== name), { name, ifName, args, config, pluginDirs, ...(capabilityArgs ? { capabilityArgs } : {}), attached: false }],
      };
    }),
    networkAttached: assign(({ context, event }) => {
      const { name, result, summary } = as<'NetworkAttached'>(event).data;
      return { pending: undefined, networks: (context.networks ?? []).map((n) => (n.name === name ? { ...n, attached: true, result, summary } : n)) };
    }),
    detachAsked: assign(({ event }) => ({ pending: { ...opened(event, 'detachNetwork'), network: as<'NetworkDetachRequested'>(event).data.name } })),
    networkDetached: assign(({ context, event }) => {
      const { name } = as<'NetworkDetached'>(event).data;
      return { pending: undefined, networks: (context.networks ?? []).map((n) => (n.name === name ? { ...n, attached: false } : n)) };
    }),
    metadataRegistered: assign(({ event }) => {
      const { socket, url } = as<'MetadataRegistered'>(event).data;
      return { pending: undefined, metadata: { socket, url } };
    }),
    metadataUnregistered: assign({ pending: undefined, metadata: undefined }),
    exited: assign(({ event }) => ({ pending: undefined, exitCode: as<'PodExited'>(event).data.code, exitedAt: event.time })),
    marked: assign({ markedGarbageAt: ({ event }) => event.time }),
    deleted: assign(({ event }) => ({ pending: undefined, deletedAt: event.time })),
    compacted: assign(({ event }) => ({ deletedAt: as<'PodCompacted'>(event).data.deletedAt })),
    failed: assign(({ event }) => ({ pending: undefined, lastFailure: as<'EffectFailed'>(event).data })),
  },
}).createMachine({
  id: 'pod',
  initial: 'embryo',
  context: ({ input }) => ({
    uuid: input.uuid,
    apps: [],
    mutable: false,
    overlay: true,
    created: false,
    overlayPrepared: false,
    manifestWritten: false,
  }),
  on: {
    // A failed effect closes its intent wherever the pod is; the state stays, so the step can be retried.
    EffectFailed: { guard: 'answersFailure', actions: 'failed' },
  },
  states: {
    embryo: {
      on: {
        PrepareRequested: { target: 'preparing', actions: ['created', 'createPod'] },
        // A compacted stream starts with its tombstone, at the version its PodDeleted had.
        PodCompacted: { target: 'deleted', actions: 'compacted' },
      },
    },
    preparing: {
      on: {
        PodCreated: { guard: { type: 'answers', params: { effect: 'createPod' } }, actions: 'podCreated' },
        ImageRenderRequested: {
          guard: and(['idle', 'created', 'knownApp']),
          actions: [{ type: 'open', params: { effect: 'renderImage' } }, 'renderImage'],
        },
        ImageRendered: { guard: { type: 'answers', params: { effect: 'renderImage' } }, actions: 'rendered' },
        OverlayPrepareRequested: {
          guard: and(['idle', 'created']),
          actions: [{ type: 'open', params: { effect: 'prepareOverlay' } }, 'prepareOverlay'],
        },
        OverlayPrepared: { guard: { type: 'answers', params: { effect: 'prepareOverlay' } }, actions: 'overlayPrepared' },
        AppRootCopyRequested: {
          guard: and(['idle', 'created', 'copiesRendered']),
          actions: [{ type: 'open', params: { effect: 'copyAppRoot' } }, 'copyAppRoot'],
        },
        AppRootCopied: { guard: { type: 'answers', params: { effect: 'copyAppRoot' } }, actions: 'appRootCopied' },
        PodManifestWriteRequested: {
          guard: and(['idle', 'created']),
          actions: [{ type: 'open', params: { effect: 'writeManifest' } }, 'writeManifest'],
        },
        PodManifestWritten: { guard: { type: 'answers', params: { effect: 'writeManifest' } }, actions: 'manifestWritten' },
        PodPrepared: { guard: 'readyToRun', target: 'prepared', actions: 'prepared' },
        PrepareAborted: { target: 'abortedPrepare', actions: 'aborted' },
      },
    },
    abortedPrepare: {
      tags: ['finished'],
      on: { PodMarkedGarbage: { target: 'garbage', actions: 'marked' } },
    },
    prepared: {
      on: {
        NetworkAttachRequested: { guard: 'canAttach', actions: ['attachAsked', 'attachNetwork'] },
        NetworkAttached: { guard: { type: 'answersNetwork', params: { effect: 'attachNetwork' } }, actions: 'networkAttached' },
        ...RELEASE,
        MetadataRegisterRequested: {
          guard: and(['idle', not('registered')]),
          actions: [{ type: 'open', params: { effect: 'registerMetadata' } }, 'registerMetadata'],
        },
        MetadataRegistered: { guard: { type: 'answers', params: { effect: 'registerMetadata' } }, actions: 'metadataRegistered' },
        Stage1StartRequested: { guard: 'idle', actions: [{ type: 'open', params: { effect: 'startStage1' } }, 'startAsked', 'startStage1'] },
        PodStarted: { guard: { type: 'answers', params: { effect: 'startStage1' } }, target: 'running', actions: 'started' },
        PodMarkedGarbage: { guard: 'idle', target: 'garbage', actions: 'marked' },
      },
    },
    running: {
      on: {
        AppHookRan: { actions: 'hookRan' },
        AppExited: { guard: 'appExits', actions: 'appExited' },
        ...APP_VERBS,
        StopRequested: {
          guard: 'idle',
          actions: ['stopAsked', 'stopPod'],
        },
        StopSignalled: { guard: { type: 'answers', params: { effect: 'stopPod' } }, actions: 'signalled' },
        // Observed, never commanded: it closes a stop that was still open when stage1 ended.
        PodExited: { target: 'exited', actions: 'exited' },
      },
    },
    exited: {
      tags: ['afterRun', 'finished', 'ranAndExited'],
      on: {
        AppHookRan: { actions: 'hookRan' },
        AppExited: { guard: 'appExits', actions: 'appExited' },
        ...APP_REMOVE,
        PodMarkedGarbage: { target: 'exitedGarbage', actions: 'marked' },
        ...RELEASE,
      },
    },
    exitedGarbage: {
      tags: ['afterRun', 'finished', 'ranAndExited'],
      on: {
        ...RELEASE,
        GcRequested: { guard: 'released', target: 'deleting', actions: [{ type: 'open', params: { effect: 'deletePod' } }, 'deletePod'] },
      },
    },
    garbage: {
      tags: ['afterRun', 'finished'],
      on: {
        ...RELEASE,
        GcRequested: { guard: 'released', target: 'deleting', actions: [{ type: 'open', params: { effect: 'deletePod' } }, 'deletePod'] },
      },
    },
    deleting: {
      tags: ['afterRun'],
      on: {
        // A delete that failed (EffectFailed closed it) is asked for again by the next gc or rm.
        GcRequested: { guard: 'idle', actions: [{ type: 'open', params: { effect: 'deletePod' } }, 'deletePod'] },
        PodDeleted: { guard: { type: 'answers', params: { effect: 'deletePod' } }, target: 'deleted', actions: 'deleted' },
      },
    },
    deleted: { type: 'final', tags: ['afterRun', 'finished'] },
  },
});

export type PodMachine = typeof podMachine;
