/**
 * The appc image manifest (rkt-semantics §6.2, §6.4): its type, and the checks an imported image must
 * pass. The addon has already checked that the manifest is JSON with acKind "ImageManifest"; this
 * checks the rest of what rkt's schema package checks (name, labels, app, dependencies), so a bad
 * image is refused at import with a message naming the field, rather than failing later in a pod.
 */
import { PodlogError } from '../errors.js';
import type { ImageLabel } from '../events/images.js';

export interface ImageDependency {
  imageName: string;
  imageID?: string;
  labels?: ImageLabel[];
  size?: number;
}

/** An image manifest's `app`: what runs, as whom, with which environment, ports and isolators (appc's schema). */
export interface ImageApp {
  exec?: string[];
  user: string;
  /** Absent: the user's groups from the image's /etc/passwd and /etc/group (stage1 resolves them). */
  group?: string;
  supplementaryGIDs?: number[];
  workingDirectory?: string;
  environment?: { name: string; value: string }[];
  eventHandlers?: { name: string; exec: string[] }[];
  mountPoints?: { name: string; path: string; readOnly?: boolean }[];
  ports?: { name: string; protocol: string; port: number; count?: number; socketActivated?: boolean }[];
  isolators?: { name: string; value: unknown }[];
  [extra: string]: unknown;
}

/** An appc image manifest (an OCI image's is converted to one), as podlog reads it. */
export interface ImageManifest {
  acKind: 'ImageManifest';
  acVersion: string;
  name: string;
  labels?: ImageLabel[];
  app?: ImageApp;
  dependencies?: ImageDependency[];
  pathWhitelist?: string[];
  annotations?: { name: string; value: string }[];
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
