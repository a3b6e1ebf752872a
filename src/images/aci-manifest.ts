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

export interface ImageApp {
  exec?: string[];
  user: string;
  group: string;
  supplementaryGIDs?: number[];
  workingDirectory?: string;
  environment?: { name: string; value: string }[];
  eventHandlers?: { name: string; exec: string[] }[];
  mountPoints?: { name: string; path: string; readOnly?: boolean }[];
  ports?: { name: string; protocol: string; port: number; count?: number; socketActivated?: boolean }[];
  isolators?: { name: string; value: unknown }[];
  [extra: string]: unknown;
}

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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Collects the first problem found; `where` names the image in the message. */
const problem = (where: string, what: string): PodlogError => new PodlogError('EBADMANIFEST', `${where}: invalid image manifest: ${what}`);

const checkLabels = (labels: unknown, field: string, where: string): void => {
  if (labels === undefined) return;
  if (!Array.isArray(labels)) throw problem(where, `${field} is not a list`);
  const seen = new Set<string>();
  for (const l of labels) {
    if (!isObject(l) || typeof l.name !== 'string' || typeof l.value !== 'string') {
      throw problem(where, `${field} holds ${JSON.stringify(l)}, not a {name, value} pair of strings`);
    }
    if (!isAcIdentifier(l.name)) throw problem(where, `label name ${JSON.stringify(l.name)} is not a valid AC identifier`);
    if (l.name === 'name') throw problem(where, 'a label may not be called "name"');
    if (seen.has(l.name)) throw problem(where, `label ${JSON.stringify(l.name)} appears twice`);
    seen.add(l.name);
  }
};

const checkApp = (app: unknown, where: string): void => {
  if (app === undefined) return;
  if (!isObject(app)) throw problem(where, 'app is not an object');
  if (app.exec !== undefined && !isStringArray(app.exec)) throw problem(where, 'app.exec is not a list of strings');
  if (typeof app.user !== 'string' || app.user === '') throw problem(where, 'app.user is required');
  if (typeof app.group !== 'string' || app.group === '') throw problem(where, 'app.group is required');
  if (app.workingDirectory !== undefined && (typeof app.workingDirectory !== 'string' || !app.workingDirectory.startsWith('/'))) {
    throw problem(where, `app.workingDirectory ${JSON.stringify(app.workingDirectory)} is not an absolute path`);
  }
  if (app.environment !== undefined) {
    if (!Array.isArray(app.environment)) throw problem(where, 'app.environment is not a list');
    for (const e of app.environment) {
      if (!isObject(e) || typeof e.name !== 'string' || typeof e.value !== 'string' || !ENV_NAME.test(e.name)) {
        throw problem(where, `app.environment holds an invalid variable ${JSON.stringify(e)}`);
      }
    }
  }
  if (app.eventHandlers !== undefined) {
    if (!Array.isArray(app.eventHandlers)) throw problem(where, 'app.eventHandlers is not a list');
    const names = new Set<unknown>();
    for (const h of app.eventHandlers) {
      if (!isObject(h) || (h.name !== 'pre-start' && h.name !== 'post-stop') || !isStringArray(h.exec)) {
        throw problem(where, `app.eventHandlers holds an invalid handler ${JSON.stringify(h)}`);
      }
      if (names.has(h.name)) throw problem(where, `app.eventHandlers has two ${h.name} handlers`);
      names.add(h.name);
    }
  }
  if (app.mountPoints !== undefined) {
    if (!Array.isArray(app.mountPoints)) throw problem(where, 'app.mountPoints is not a list');
    for (const m of app.mountPoints) {
      if (!isObject(m) || typeof m.name !== 'string' || !AC_NAME.test(m.name) || typeof m.path !== 'string') {
        throw problem(where, `app.mountPoints holds an invalid mount point ${JSON.stringify(m)}`);
      }
    }
  }
};

const checkDependencies = (deps: unknown, where: string): void => {
  if (deps === undefined) return;
  if (!Array.isArray(deps)) throw problem(where, 'dependencies is not a list');
  for (const d of deps) {
    if (!isObject(d) || typeof d.imageName !== 'string' || !isAcIdentifier(d.imageName)) {
      throw problem(where, `dependency ${JSON.stringify(d)} has no valid imageName`);
    }
    if (d.imageID !== undefined && (typeof d.imageID !== 'string' || !IMAGE_ID.test(d.imageID))) {
      throw problem(where, `dependency ${d.imageName} has an invalid imageID ${JSON.stringify(d.imageID)}`);
    }
    checkLabels(d.labels, `dependency ${d.imageName} labels`, where);
  }
};

/** Parses and checks a manifest's text; `where` names the image (a path or an id) in messages. */
export const parseImageManifest = (text: string, where: string): ImageManifest => {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw problem(where, `not JSON (${(e as Error).message})`);
  }
  if (!isObject(m)) throw problem(where, 'not a JSON object');
  if (m.acKind !== 'ImageManifest') throw problem(where, `acKind is ${JSON.stringify(m.acKind)}, expected "ImageManifest"`);
  if (typeof m.acVersion !== 'string' || !SEMVER.test(m.acVersion)) throw problem(where, `acVersion ${JSON.stringify(m.acVersion)} is not a semantic version`);
  if (typeof m.name !== 'string' || !isAcIdentifier(m.name)) throw problem(where, `name ${JSON.stringify(m.name)} is not a valid AC identifier`);
  checkLabels(m.labels, 'labels', where);
  checkApp(m.app, where);
  checkDependencies(m.dependencies, where);
  if (m.pathWhitelist !== undefined && !isStringArray(m.pathWhitelist)) throw problem(where, 'pathWhitelist is not a list of strings');
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
