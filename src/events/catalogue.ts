/**
 * The catalogue of every event podlog records: its kind, its schema version and the shape of its data.
 * The log is the source of truth, so an event type the code does not know is an error, never skipped:
 * folding past it would derive a state that may be false.
 */
import { PodlogError } from '../errors.js';
import type { NetworkConfigList } from '../net/config.js';
import type { NetworkSummary } from '../net/result.js';
import type { PodManifest } from '../stage0/pod-manifest.js';

/** Side effects an intent asks for; each is done by the effect interpreter, never during a fold. */
export type EffectName =
  | 'createPod' | 'renderImage' | 'prepareOverlay' | 'copyAppRoot' | 'writeManifest' | 'attachNetwork' | 'startStage1'
  | 'stopPod' | 'detachNetwork' | 'deletePod' | 'registerMetadata' | 'unregisterMetadata'
  | 'addApp' | 'startApp' | 'stopApp' | 'removeApp';

/** An app as a pod's events name it: PrepareRequested's apps, and with AppAdded an app of a mutable pod. */
export interface AppSpec {
  /** The app's name in the pod, unique there: --name, or made from the image's name. */
  name: string;
  /** The image's id (the user's words, a path or a name, are in the event's command line). */
  image: string;
  /** The image's name, from its manifest. */
  imageName?: string;
  /** --exec and the arguments after `--`, when --exec was given; otherwise the image's exec runs. */
  exec?: string[];
}

/** The stage1 image a pod runs with, copied into its directory at creation (rkt's prepareStage1Image). */
export interface Stage1Spec {
  /** The directory entrypoint paths are relative to. */
  rootfs: string;
  /** The stage1 image manifest, whose annotations name the entrypoints. */
  manifest: { acKind: 'ImageManifest'; name: string; annotations: Array<{ name: string; value: string }> };
}

/**
 * --private-users: the pod's apps run in a user namespace where ids 0..count are the host's
 * shift..shift+count. `ownership` says how the apps' files come to be the pod's: `idmap`, through
 * idmapped mounts of the image trees; `chown`, a copy of each tree with every owner shifted (where
 * the data directory's file system cannot be idmapped).
 */
export interface PrivateUsers {
  /** The first host id of the pod's range: its id 0 is this id on the host. */
  shift: number;
  /** POD_ID_COUNT when podlog chose it. */
  count: number;
  /** `idmap`: the image trees are mounted idmapped; `chown`: each app's root is a copy with its owners shifted. */
  ownership: 'idmap' | 'chown';
}

/** The cgroups stage1 made for a pod (its cgroups.json, recorded with PodStarted): where its limits and accounting are. */
export interface PodCgroups {
  /** `unified`: cgroup v2 only; `legacy`: v1 controllers only; `hybrid`: v1 controllers and a v2 hierarchy mounted beside them. */
  layout: 'unified' | 'legacy' | 'hybrid';
  /** The pod's directory in each hierarchy stage1 used, as host paths ending in `podlog/<uuid>`. */
  dirs: string[];
}

/** rkt's count of ids a pod with --private-users gets. */
export const POD_ID_COUNT = 0x10000;

export interface PodEventData {
  PrepareRequested: {
    uuid: string; apps: AppSpec[]; mutable: boolean; overlay: boolean; stage1: Stage1Spec; privateUsers?: PrivateUsers;
    /** The host that prepared the pod, which alone runs its effects (src/config.ts hostId); absent before schema 4. */
    host?: string;
    /** --user-label and --user-annotation (schema 4): so that pods are filtered by them on any host. */
    userLabels?: Record<string, string>;
    userAnnotations?: Record<string, string>;
  };
  PodCreated: Record<string, never>;
  ImageRenderRequested: { app: string; image: string };
  ImageRendered: { app: string; imageId: string; treeStoreId: string };
  OverlayPrepareRequested: Record<string, never>;
  OverlayPrepared: Record<string, never>;
  AppRootCopyRequested: { app: string };
  /** How the copy was made: `reflink` (cp --reflink=always), `copy` (cp -a) or `layers` (an OCI
   * image's layers applied into it). */
  AppRootCopied: { app: string; method: 'reflink' | 'copy' | 'layers' };
  PodManifestWriteRequested: Record<string, never>;
  /** The manifest as written, environment values redacted (schema 2; src/stage0/pod-manifest.ts loggedManifest). */
  PodManifestWritten: { manifest?: PodManifest };
  /** Isolators of the apps that podlog does not apply (the ACE must say which it ignored). */
  PodPrepared: { ignoredIsolators?: Array<{ app: string; name: string }> };
  PrepareAborted: { reason: string };
  /**
   * A CNI network is to be attached to the pod's network namespace (made first if it is not there):
   * the configuration list as it is run, so that its detach does not depend on later edits of net.d.
   */
  NetworkAttachRequested: {
    name: string; ifName: string; args: string; config: NetworkConfigList; pluginDirs: string[];
    /** CNI capability arguments (portMappings for --port), given to ADD and DEL alike. */
    capabilityArgs?: Record<string, unknown>;
  };
  /** The CNI ADD result as the plugins gave it (DEL gets it back), and what of it people read. */
  NetworkAttached: { name: string; result: Record<string, unknown>; summary: NetworkSummary };
  NetworkDetachRequested: { name: string };
  NetworkDetached: { name: string };
  /**
   * `run --mds-register`: the pod is to be registered with the metadata service listening on
   * `socket`, as the pod of its network `addresses`; its apps reach the service through `host` (the
   * host's side of its first network). Its HMAC key is the service's, never in the log.
   */
  MetadataRegisterRequested: { socket: string; addresses: string[]; host: string };
  /** `url`: the apps' AC_METADATA_URL; `socket`: where its unregistration goes. */
  MetadataRegistered: { socket: string; url: string };
  MetadataUnregisterRequested: Record<string, never>;
  /** What the service answered; one that is not running holds no registration either. */
  MetadataUnregistered: { answer: 'unregistered' | 'not registered' | 'service not running' };
  /** How stage1 is to run the pod: what `podlog run`'s flags asked for. */
  Stage1StartRequested: { net: string; dns: string; hostname: string; insecure?: Array<'capabilities' | 'paths' | 'seccomp'> };
  /** `cgroups`: the hierarchies stage1 used (`hybrid`: v1 controllers and a v2 mount) and the pod's directories in them. */
  PodStarted: { pid: number; cgroups?: PodCgroups };
  /** An image event handler ran for the app (appc's `pre-start` before its exec, `post-stop` after its exit). */
  AppHookRan: { app: string; hook: 'pre-start' | 'post-stop'; code: number };
  /**
   * `oom`: the kernel's OOM killer ended it (its code is then 137); `memoryPeak` (bytes) and `cpuTime`
   * (nanoseconds) are what its cgroup accounted, where the hierarchy was there.
   */
  AppExited: { app: string; code: number; oom?: boolean; memoryPeak?: number; cpuTime?: number };
  /**
   * `app add` to a mutable pod: the app's image (its id) is to be rendered, its overlay directories
   * made, the app written into the pod manifest (its environment values stay out of the log) and
   * handed to stage1's app-add. Added, not started.
   */
  AppAddRequested: { app: string; image: string; imageName?: string; exec?: string[] };
  AppAdded: { app: string; image: string; imageName?: string; exec?: string[]; treeStoreId: string };
  AppStartRequested: { app: string };
  AppStarted: { app: string };
  AppStopRequested: { app: string; force: boolean };
  /** The app was stopped, or had exited already: its exit is observed as AppExited. */
  AppStopped: { app: string };
  AppRemoveRequested: { app: string };
  AppRemoved: { app: string };
  StopRequested: { force: boolean };
  StopSignalled: { signal: string };
  PodExited: { code: number };
  PodMarkedGarbage: { reason: 'gc' | 'rm' | 'expired' };
  GcRequested: Record<string, never>;
  PodDeleted: Record<string, never>;
  EffectFailed: {
    /** The effect that failed: the open intent's. */
    effect: EffectName;
    /** podlog's error code for it (`EABANDONED`: the process running it died first). */
    code: string;
    /** What went wrong, for people. */
    message: string;
  };
  /** What `log compact` leaves of a deleted pod's stream, in place of its PodDeleted. */
  PodCompacted: { deletedAt: string; compactedEvents: number };
}

/** The type of a pod event: one of the catalogue's names, from PrepareRequested to PodCompacted (POD_EVENTS says what each means). */
export type PodEventType = keyof PodEventData;

/** intent: asks for an effect (or, for PrepareRequested, opens the preparation the process owns);
 *  outcome: the result of an effect; observation: a fact seen in the world (a process exited). */
export type EventKind = 'intent' | 'outcome' | 'observation' | 'decision';

export interface CatalogueEntry {
  kind: EventKind;
  schema: number;
  /** For intents: the effect the interpreter runs. */
  effect?: EffectName;
  /** Data fields that must be present, with their typeof. */
  fields: Record<string, 'string' | 'number' | 'boolean' | 'object'>;
  summary: string;
}

export const POD_EVENTS: { readonly [T in PodEventType]: CatalogueEntry } = {
  PrepareRequested: {
    // Schema 4 adds host, userLabels and userAnnotations.
    kind: 'intent', schema: 4, effect: 'createPod',
    fields: { uuid: 'string', apps: 'object', mutable: 'boolean', overlay: 'boolean', stage1: 'object' },
    summary: "a pod's preparation started; its directory is to be created with its stage1 (rkt: embryo → prepare/)",
  },
  PodCreated: { kind: 'outcome', schema: 1, fields: {}, summary: "the pod's directory exists, with the stage1 manifest it runs with" },
  ImageRenderRequested: {
    kind: 'intent', schema: 1, effect: 'renderImage', fields: { app: 'string', image: 'string' },
    summary: "an app's image is to be rendered into the tree store",
  },
  ImageRendered: {
    kind: 'outcome', schema: 1, fields: { app: 'string', imageId: 'string', treeStoreId: 'string' },
    summary: "the app's image tree is in the tree store",
  },
  OverlayPrepareRequested: {
    kind: 'intent', schema: 1, effect: 'prepareOverlay', fields: {},
    summary: "each app's overlay directories (upper, work) are to be created; stage1 mounts them in its own namespace",
  },
  OverlayPrepared: { kind: 'outcome', schema: 1, fields: {}, summary: "each app's overlay directories exist" },
  AppRootCopyRequested: {
    kind: 'intent', schema: 1, effect: 'copyAppRoot', fields: { app: 'string' },
    summary: "--no-overlay: an app's root is to be a copy of its image's tree in the pod directory",
  },
  AppRootCopied: { kind: 'outcome', schema: 1, fields: { app: 'string', method: 'string' }, summary: "the app's root is a copy of its image's tree" },
  PodManifestWriteRequested: {
    kind: 'intent', schema: 1, effect: 'writeManifest', fields: {},
    summary: 'the pod manifest stage1 reads is to be written (its environment values are never in the log)',
  },
  PodManifestWritten: { kind: 'outcome', schema: 2, fields: {}, summary: 'the pod manifest is in the pod directory (schema 2: and in the event, environment values redacted)' },
  PodPrepared: { kind: 'outcome', schema: 1, fields: {}, summary: 'the pod is ready to run (rkt: prepared/)' },
  PrepareAborted: {
    kind: 'outcome', schema: 1, fields: { reason: 'string' },
    summary: 'the preparation failed or its process died (rkt: aborted prepare)',
  },
  NetworkAttachRequested: {
    kind: 'intent', schema: 1, effect: 'attachNetwork', fields: { name: 'string', ifName: 'string', args: 'string', config: 'object', pluginDirs: 'object' },
    summary: "a CNI network is to be attached to the pod's network namespace (CNI ADD), before stage1 starts",
  },
  NetworkAttached: {
    kind: 'outcome', schema: 1, fields: { name: 'string', result: 'object', summary: 'object' },
    summary: "the network is attached: the pod's interface and addresses, and the CNI result its detach needs",
  },
  NetworkDetachRequested: {
    kind: 'intent', schema: 1, effect: 'detachNetwork', fields: { name: 'string' },
    summary: "an attached network is to be detached (CNI DEL with the recorded result); the last one takes the network namespace with it",
  },
  NetworkDetached: { kind: 'outcome', schema: 1, fields: { name: 'string' }, summary: 'the network released what the pod held: its address, interface and rules' },
  MetadataRegisterRequested: {
    kind: 'intent', schema: 1, effect: 'registerMetadata', fields: { socket: 'string', addresses: 'object', host: 'string' },
    summary: 'the pod is to be registered with the metadata service (run --mds-register), after its networks are attached and before stage1 starts',
  },
  MetadataRegistered: {
    kind: 'outcome', schema: 1, fields: { socket: 'string', url: 'string' },
    summary: "the metadata service knows the pod by its addresses and holds its HMAC key; its apps get AC_METADATA_URL",
  },
  MetadataUnregisterRequested: {
    kind: 'intent', schema: 1, effect: 'unregisterMetadata', fields: {},
    summary: 'the pod is to be unregistered from the metadata service, before its addresses are released',
  },
  MetadataUnregistered: {
    kind: 'outcome', schema: 1, fields: { answer: 'string' },
    summary: "the metadata service forgot the pod and its key (or was not running, and held neither)",
  },
  Stage1StartRequested: {
    kind: 'intent', schema: 1, effect: 'startStage1', fields: { net: 'string', dns: 'string', hostname: 'string' },
    summary: 'stage1 is to be started with the pod lock (rkt: prepared/ → run/)',
  },
  PodStarted: {
    kind: 'outcome', schema: 1, fields: { pid: 'number' },
    summary: "stage1 said the pod is up (its pid file is written): stop and enter work from here",
  },
  AppHookRan: {
    kind: 'observation', schema: 1, fields: { app: 'string', hook: 'string', code: 'number' },
    summary: "an app's pre-start or post-stop event handler ran, with this code (a failing pre-start fails its app)",
  },
  AppExited: { kind: 'observation', schema: 1, fields: { app: 'string', code: 'number' }, summary: 'an app ended with this code' },
  AppAddRequested: {
    kind: 'intent', schema: 1, effect: 'addApp', fields: { app: 'string', image: 'string' },
    summary: "app add: an app is to be added to a running mutable pod (image rendered, pod manifest rewritten, stage1 app-add); it is not started",
  },
  AppAdded: { kind: 'outcome', schema: 1, fields: { app: 'string', image: 'string', treeStoreId: 'string' }, summary: 'the app is in the pod, created (rkt: created), not running' },
  AppStartRequested: { kind: 'intent', schema: 1, effect: 'startApp', fields: { app: 'string' }, summary: 'app start: an added or exited app is to be started (stage1 app-start)' },
  AppStarted: { kind: 'outcome', schema: 1, fields: { app: 'string' }, summary: 'the app was started (its pre-start handler, then its exec)' },
  AppStopRequested: { kind: 'intent', schema: 1, effect: 'stopApp', fields: { app: 'string', force: 'boolean' }, summary: 'app stop: a running app is to be stopped (stage1 app-stop)' },
  AppStopped: { kind: 'outcome', schema: 1, fields: { app: 'string' }, summary: 'the app no longer runs; its exit is recorded as AppExited' },
  AppRemoveRequested: {
    kind: 'intent', schema: 1, effect: 'removeApp', fields: { app: 'string' },
    summary: 'app rm: an app is to be stopped if it runs, taken out of the pod (stage1 app-rm) and out of its manifest and directories',
  },
  AppRemoved: { kind: 'outcome', schema: 1, fields: { app: 'string' }, summary: 'nothing of the app is left in the pod but its history' },
  StopRequested: { kind: 'intent', schema: 1, effect: 'stopPod', fields: { force: 'boolean' }, summary: 'the pod is to be stopped' },
  StopSignalled: { kind: 'outcome', schema: 1, fields: { signal: 'string' }, summary: "stage1 was sent the stop signal" },
  PodExited: {
    kind: 'observation', schema: 1, fields: { code: 'number' },
    summary: 'stage1 ended and the pod lock is free (rkt: exited)',
  },
  PodMarkedGarbage: {
    kind: 'decision', schema: 1, fields: { reason: 'string' },
    summary: 'gc or rm marked the pod for deletion (rkt: exited-garbage/ or garbage/)',
  },
  GcRequested: { kind: 'intent', schema: 1, effect: 'deletePod', fields: {}, summary: "the pod's directory is to be deleted" },
  PodDeleted: { kind: 'outcome', schema: 1, fields: {}, summary: 'nothing of the pod is left but its history' },
  EffectFailed: {
    kind: 'outcome', schema: 1, fields: { effect: 'string', code: 'string', message: 'string' },
    summary: 'an effect failed; the intent is closed and the pod stays in its state, where it can be retried',
  },
  PodCompacted: {
    kind: 'decision', schema: 1, fields: { deletedAt: 'string', compactedEvents: 'number' },
    summary: "log compact removed a deleted pod's events; this tombstone is all that is left of its stream",
  },
};

export const isPodEventType = (type: string): type is PodEventType => Object.hasOwn(POD_EVENTS, type);

/**
 * Checks that a recorded event is one of a catalogue's, at a schema this code reads, with its fields.
 * `family` names the catalogue in messages ("pod", "image").
 */
export const checkEvent = <T extends string>(
  catalogue: { readonly [K in T]: CatalogueEntry },
  family: string,
  event: { type: string; schema: number; data: Record<string, unknown> },
  where: string,
): T => {
  const { type, schema, data } = event;
  if (!Object.hasOwn(catalogue, type)) {
    throw new PodlogError('EUNKNOWN_EVENT', `${where}: unknown ${family} event type ${JSON.stringify(type)}; this podlog cannot fold it (is the log from a newer podlog?)`);
  }
  const entry = catalogue[type as T];
  if (schema > entry.schema) {
    throw new PodlogError('EUNKNOWN_EVENT', `${where}: ${type} has schema ${schema}, newer than this podlog reads (${entry.schema})`);
  }
  for (const [field, kind] of Object.entries(entry.fields)) {
    if (typeof data[field] !== kind) {
      throw new PodlogError('EBAD_EVENT', `${where}: ${type} lacks the ${kind} field ${JSON.stringify(field)}`);
    }
  }
  return type as T;
};

export const checkPodEvent = (type: string, schema: number, data: Record<string, unknown>, where: string): PodEventType =>
  checkEvent(POD_EVENTS, 'pod', { type, schema, data }, where);
