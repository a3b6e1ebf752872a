/**
 * The appc image manifest (rkt-semantics §6.2, §6.4): its type, and the checks an imported image must
 * pass. The addon has already checked that the manifest is JSON with acKind "ImageManifest"; this
 * checks the rest of what rkt's schema package checks (name, labels, app, dependencies), so a bad
 * image is refused at import with a message naming the field, rather than failing later in a pod.
 */
import { PodlogError } from '../errors.js';
import type { ImageLabel } from '../events/images.js';

/**
 * One of an image manifest's `dependencies`: an image whose rootfs is rendered below this image's
 * files. podlog looks it up in the image store and never fetches it: a dependency that is not there
 * fails the render ("fetch it first").
 */
export interface ImageDependency {
  /** The dependency's image name (an AC identifier); with `labels`, how it is found when no `imageID` is given. */
  imageName: string;
  /** The dependency's image id (`sha512-…`); given, it alone picks the image (a prefix of the id is enough). */
  imageID?: string;
  /** Labels the dependency must carry with the same values (appc's matching: a label it leaves out matches any value); of the images that match, the newest import is taken. */
  labels?: ImageLabel[];
  /** The dependency's size in bytes, for an ACE to check when it retrieves it; podlog only checks that it is a whole number. */
  size?: number;
}

/** An image manifest's `app`: what runs, as whom, with which environment, ports and isolators (appc's schema). */
export interface ImageApp {
  /**
   * The program and its arguments (appc: the program an absolute path in the app's root), taken as
   * they are: no variable is substituted. `--exec` replaces the whole list, and the app's arguments
   * after `--` are appended to it; an image with none runs only with `--exec`.
   */
  exec?: string[];
  /**
   * Whom the app runs as (required; `--user` replaces it): a user name or a uid, looked up in the
   * image's /etc/passwd; a number that names nobody there is taken as the uid. appc's third form, an
   * absolute path whose file's owner the app runs as, is not supported: stage1 finds no such user and the app does not start.
   */
  user: string;
  /** Absent: the user's groups from the image's /etc/passwd and /etc/group (stage1 resolves them). */
  group?: string;
  /** Group ids the app's processes get in addition to the user's groups from the image's /etc/group; each fits in 32 bits. */
  supplementaryGIDs?: number[];
  /** The app's working directory, an absolute path in its root (`--working-dir` replaces it); absent, `/`. The app fails to start if it is not a directory there. */
  workingDirectory?: string;
  /**
   * The app's environment variables from the image. --set-env-file, --set-env and --environment
   * override them; they override the variables --inherit-env passes on.
   */
  environment?: {
    /** The variable's name: a letter or `_`, then letters, digits, `_`, `.` or `-`. */
    name: string;
    /** Its value, taken as it is (nothing expanded). */
    value: string;
  }[];
  /** Programs run around the app's exec: at most one of each name. */
  eventHandlers?: {
    /** `pre-start`: runs, and must succeed, before the exec starts; `post-stop`: runs after the app has exited. */
    name: string;
    /** The handler's program and arguments, as `exec`. */
    exec: string[];
  }[];
  /**
   * Where the app expects data from outside to be mounted. At prepare, each is given the pod's volume
   * of its name, else an empty volume of its own (`<app>-<name>`) that goes with the pod; an app's
   * --mount at the same path wins.
   */
  mountPoints?: {
    /** The mount point's name (an AC name): the volume of this name is mounted there. */
    name: string;
    /** Where in the app's root it is mounted. */
    path: string;
    /** The mount is read-only; absent, read-write. */
    readOnly?: boolean;
  }[];
  /** Ports the app listens on: informational in appc; a --port flag forwards only a port an app of the pod declares here. */
  ports?: {
    /** The port's name (an AC name), which --port and the pod manifest's ports use. */
    name: string;
    /** Its protocol, usually `tcp` or `udp`. */
    protocol: string;
    /** Its number, the first of the range when `count` is given. */
    port: number;
    /** How many consecutive ports from `port` it stands for; absent, one. */
    count?: number;
    /** The app expects to be socket-activated on the port (sd_listen_fds); podlog does not socket-activate apps, and passes the flag on unread. */
    socketActivated?: boolean;
  }[];
  /**
   * Limits and security settings the ACE should apply (resources, capabilities, seccomp, …). stage1
   * applies those podlog knows, an app's flags (--memory, --caps-retain, …) in place of the image's of
   * their kind; the others, and a resource isolator with no limit, stay in the pod manifest unapplied
   * and are named in a warning and in {@link PodContext.ignoredIsolators}.
   */
  isolators?: {
    /** The isolator's name (an AC identifier), e.g. `resource/memory` or `os/linux/capabilities-retain-set`. */
    name: string;
    /** Its setting, whose form the isolator's name defines (`{"limit": "1G"}` for resource/memory). */
    value: unknown;
  }[];
  /** Fields podlog does not read are kept as they are, so the manifest written for stage1 has them. */
  [extra: string]: unknown;
}

/** An appc image manifest (an OCI image's is converted to one), as podlog reads it. */
export interface ImageManifest {
  /** Always `ImageManifest`: the kind of appc document it is. */
  acKind: 'ImageManifest';
  /** The appc schema version it was written for, a semantic version (`0.8.11`). */
  acVersion: string;
  /** The image's name, an AC identifier (`example.com/worker`): with labels, how the image is found by name; not unique to one image. */
  name: string;
  /** The image's labels, each name once and none called `name`. `version`, `os` and `arch` are appc's well-known ones; a pod runs only an image whose `os` and `arch` labels name a platform of {@link VALID_OS_ARCH}. */
  labels?: ImageLabel[];
  /** How to run the image as an app; an image without one runs only with `--exec` (and then as the user running podlog). */
  app?: ImageApp;
  /** Images whose rootfs is rendered below this image's, in order: each later one over the earlier, this image's files over all. */
  dependencies?: ImageDependency[];
  /** The only files (absolute paths) this image and the images below it bring into the rendered rootfs, directories aside; absent or empty, all of them. */
  pathWhitelist?: string[];
  /** Free-form metadata (appc: names unique; it knows `authors`, `created`, `documentation`, `homepage`); podlog does not act on an app image's. */
  annotations?: {
    /** The annotation's name, an AC identifier. */
    name: string;
    /** Its value, any string. */
    value: string;
  }[];
  /** Fields podlog does not read, kept as they are. */
  [extra: string]: unknown;
}

/** rkt's stage0 ValidOSArch: the platforms a pod can run on. */
export const VALID_OS_ARCH: Readonly<Record<string, readonly string[]>> = {
  linux: ['amd64', 'i386', 'aarch64', 'aarch64_be', 'armv6l', 'armv7l', 'armv7b', 'ppc64le'],
};

const AC_IDENTIFIER = /^[a-z0-9]+([-._~/][a-z0-9]+)*$/;
const AC_NAME = /^[a-z0-9]+([-][a-z0-9]+)*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z_0-9.-]*$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const IMAGE_ID = /^sha512-[0-9a-f]+$/;

export const isAcIdentifier = (s: string): boolean => AC_IDENTIFIER.test(s);

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;

const SHOWN_LIMIT = 200;

/**
 * A value from a document as a message shows it: as JSON, cut short, and safe for values nested too
 * deep for JSON.stringify (which would throw a RangeError instead of the refusal).
 */
export const showValue = (v: unknown): string => {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = Array.isArray(v) ? '[…]' : '{…}';
  }
  return text.length > SHOWN_LIMIT ? `${text.slice(0, SHOWN_LIMIT)}… (${text.length} characters)` : text;
};

/** Collects the first problem found; `where` names the image in the message. */
const problem = (where: string, what: string): PodlogError => new PodlogError('EBADMANIFEST', `${where}: invalid image manifest: ${what}`);

/** A list of {name, value} string pairs with AC identifier names: labels and annotations. */
const checkPairs = (pairs: unknown, field: string, noun: string, where: string): Array<{ name: string; value: string }> => {
  if (pairs === undefined) return [];
  if (!Array.isArray(pairs)) throw problem(where, `${field} is not a list`);
  for (const p of pairs) {
    if (!isObject(p) || typeof p.name !== 'string' || typeof p.value !== 'string') {
      throw problem(where, `${field} holds ${showValue(p)}, not a {name, value} pair of strings`);
    }
    if (!isAcIdentifier(p.name)) throw problem(where, `${noun} name ${showValue(p.name)} is not a valid AC identifier`);
  }
  return pairs as Array<{ name: string; value: string }>;
};

/** `noun` names one label in messages: "label", or a dependency's. */
const checkLabels = (labels: unknown, field: string, noun: string, where: string): void => {
  const seen = new Set<string>();
  for (const l of checkPairs(labels, field, noun, where)) {
    if (l.name === 'name') throw problem(where, `a ${noun} may not be called "name"`);
    if (seen.has(l.name)) throw problem(where, `${noun} ${showValue(l.name)} appears twice`);
    seen.add(l.name);
  }
};

/** A list field whose every element must pass `ok`; the message shows the first that does not. */
const checkList = (list: unknown, field: string, what: string, ok: (v: unknown) => boolean, where: string): void => {
  if (list === undefined) return;
  if (!Array.isArray(list)) throw problem(where, `${field} is not a list`);
  const bad = list.findIndex((v) => !ok(v));
  if (bad !== -1) throw problem(where, `${field} holds an invalid ${what} ${showValue(list[bad])}`);
};

const optional = (v: unknown, ok: (v: unknown) => boolean): boolean => v === undefined || ok(v);

const checkApp = (app: unknown, where: string): void => {
  if (app === undefined) return;
  if (!isObject(app)) throw problem(where, 'app is not an object');
  if (app.exec !== undefined && !isStringArray(app.exec)) throw problem(where, 'app.exec is not a list of strings');
  if (typeof app.user !== 'string' || app.user === '') throw problem(where, 'app.user is required');
  if (app.group !== undefined && (typeof app.group !== 'string' || app.group === '')) throw problem(where, 'app.group, when given, is a user\'s group name or gid');
  // stage1 reads them as 32-bit group ids.
  checkList(app.supplementaryGIDs, 'app.supplementaryGIDs', 'group id', (g) => isCount(g, 2 ** 32 - 1), where);
  if (app.workingDirectory !== undefined && (typeof app.workingDirectory !== 'string' || !app.workingDirectory.startsWith('/'))) {
    throw problem(where, `app.workingDirectory ${showValue(app.workingDirectory)} is not an absolute path`);
  }
  checkList(
    app.environment,
    'app.environment',
    'variable',
    (e) => isObject(e) && typeof e.name === 'string' && typeof e.value === 'string' && ENV_NAME.test(e.name),
    where,
  );
  checkList(
    app.eventHandlers,
    'app.eventHandlers',
    'handler',
    (h) => isObject(h) && (h.name === 'pre-start' || h.name === 'post-stop') && isStringArray(h.exec),
    where,
  );
  const handlers = (app.eventHandlers ?? []) as Array<{ name: string }>;
  for (const name of ['pre-start', 'post-stop']) {
    if (handlers.filter((h) => h.name === name).length > 1) throw problem(where, `app.eventHandlers has two ${name} handlers`);
  }
  checkList(
    app.mountPoints,
    'app.mountPoints',
    'mount point',
    (m) => isObject(m) && typeof m.name === 'string' && AC_NAME.test(m.name) && typeof m.path === 'string' && optional(m.readOnly, (r) => typeof r === 'boolean'),
    where,
  );
  checkList(
    app.ports,
    'app.ports',
    'port',
    (p) =>
      isObject(p) &&
      typeof p.name === 'string' &&
      AC_NAME.test(p.name) &&
      typeof p.protocol === 'string' &&
      isCount(p.port, 65535) &&
      optional(p.count, (c) => isCount(c)) &&
      optional(p.socketActivated, (a) => typeof a === 'boolean'),
    where,
  );
  checkList(app.isolators, 'app.isolators', 'isolator', (i) => isObject(i) && typeof i.name === 'string' && isAcIdentifier(i.name), where);
};

const checkDependencies = (deps: unknown, where: string): void => {
  if (deps === undefined) return;
  if (!Array.isArray(deps)) throw problem(where, 'dependencies is not a list');
  for (const d of deps) {
    if (!isObject(d) || typeof d.imageName !== 'string' || !isAcIdentifier(d.imageName)) {
      throw problem(where, `dependencies hold ${showValue(d)}, which has no valid imageName`);
    }
    if (d.imageID !== undefined && (typeof d.imageID !== 'string' || !IMAGE_ID.test(d.imageID))) {
      throw problem(where, `dependency ${d.imageName} has an invalid imageID ${showValue(d.imageID)}`);
    }
    checkLabels(d.labels, `dependency ${d.imageName} labels`, `dependency ${d.imageName} label`, where);
    if (!optional(d.size, (n) => isCount(n))) throw problem(where, `dependency ${d.imageName} has an invalid size ${showValue(d.size)}`);
  }
};

/** Parses and checks a manifest's text; `where` names the image (a path or an id) in messages. */
export const parseImageManifest = (text: string, where: string): ImageManifest => {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw problem(where, `not JSON (${(e as Error).message.slice(0, SHOWN_LIMIT)})`);
  }
  if (!isObject(m)) throw problem(where, 'not a JSON object');
  if (m.acKind !== 'ImageManifest') throw problem(where, `acKind is ${showValue(m.acKind)}, expected "ImageManifest"`);
  if (typeof m.acVersion !== 'string' || !SEMVER.test(m.acVersion)) throw problem(where, `acVersion ${showValue(m.acVersion)} is not a semantic version`);
  if (typeof m.name !== 'string' || !isAcIdentifier(m.name)) throw problem(where, `name ${showValue(m.name)} is not a valid AC identifier`);
  checkLabels(m.labels, 'labels', 'label', where);
  checkApp(m.app, where);
  checkDependencies(m.dependencies, where);
  if (m.pathWhitelist !== undefined && !isStringArray(m.pathWhitelist)) throw problem(where, 'pathWhitelist is not a list of strings');
  checkPairs(m.annotations, 'annotations', 'annotation', where);
  return m as ImageManifest;
};

export const label = (labels: readonly ImageLabel[] | undefined, name: string): string | undefined =>
  labels?.find((l) => l.name === name)?.value;

/** rkt's ValidateOSArch with its messages: a pod runs only images made for a platform it supports. */
export const checkOsArch = (m: ImageManifest, where: string): void => {
  const os = label(m.labels, 'os');
  if (os === undefined) throw new PodlogError('EOSARCH', `${where}: missing os label in the image manifest`);
  const arch = label(m.labels, 'arch');
  if (arch === undefined) throw new PodlogError('EOSARCH', `${where}: missing arch label in the image manifest`);
  const archs = VALID_OS_ARCH[os];
  if (!archs) {
    throw new PodlogError('EOSARCH', `${where}: bad os ${JSON.stringify(os)} (must be one of: [${Object.keys(VALID_OS_ARCH).sort().join(' ')}])`);
  }
  if (!archs.includes(arch)) {
    throw new PodlogError('EOSARCH', `${where}: bad arch ${JSON.stringify(arch)} for ${os} (must be one of: [${archs.join(' ')}])`);
  }
};
