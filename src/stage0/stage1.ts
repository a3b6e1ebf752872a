/**
 * The stage1 entrypoint protocol (rkt-semantics §3): stage0 never knows how a pod is isolated; it
 * finds each entrypoint in the stage1 image's manifest annotations and runs it in the pod directory.
 * podlog's annotations name a path inside the stage1 image followed by fixed arguments
 * ("/podlog-stage1 init"); the flags stage0 adds are podlog's (docs/stage1.md), so another stage1
 * that speaks them can be dropped in with --stage1-path.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PodlogError } from '../errors.js';
import { stage1Path } from '../native.js';
import { podPaths } from './pod-dir.js';

/**
 * The annotation each entrypoint is named by in a stage1 image's manifest: rkt's four (run, enter, gc,
 * stop) that every stage1 has, and podlog's own.
 */
export const ENTRYPOINTS = {
  /** Starts the pod (podlog's stage1: `init`) and stays its parent until it exits. */
  run: 'coreos.com/rkt/stage1/run',
  /** Runs a command in a running pod's app. */
  enter: 'coreos.com/rkt/stage1/enter',
  /** Cleans up what a pod left when it is deleted. */
  gc: 'coreos.com/rkt/stage1/gc',
  /** Stops a running pod. */
  stop: 'coreos.com/rkt/stage1/stop',
  /** podlog's: makes and removes the network namespace a pod's CNI networks are attached to. */
  netns: 'podlog.dev/stage1/netns',
  /** podlog's: writes an exited pod's app root as an ACI (rkt did it in stage0; the mounts are stage1's). */
  export: 'podlog.dev/stage1/export',
  /** podlog's, as the next three (rkt's app add/start/stop/rm; docs/stage1.md): adds an app to a running mutable pod. */
  appAdd: 'podlog.dev/stage1/app/add',
  /** Starts an added or exited app of a mutable pod. */
  appStart: 'podlog.dev/stage1/app/start',
  /** Stops an app of a mutable pod. */
  appStop: 'podlog.dev/stage1/app/stop',
  /** Removes an app from a mutable pod. */
  appRm: 'podlog.dev/stage1/app/rm',
} as const;
/** An entrypoint by podlog's short name for it. */
export type EntrypointName = keyof typeof ENTRYPOINTS;
/** Every stage1 names these; `netns` only one that runs pods on CNI networks, `export` one that exports, `app*` one that runs mutable pods. */
const REQUIRED: EntrypointName[] = ['run', 'enter', 'gc', 'stop'];

/** The part of a stage1 image's manifest stage0 reads. */
export interface Stage1Manifest {
  /** appc's kind of document. */
  acKind: 'ImageManifest';
  /** The image's name (`podlog.dev/stage1`). */
  name: string;
  /** Each entrypoint's annotation and its command. */
  annotations: Array<{
    /** The entrypoint's annotation ({@link ENTRYPOINTS}). */
    name: string;
    /** Its command: a path in the rootfs, then fixed arguments (`/podlog-stage1 init`). */
    value: string;
  }>;
}

/** A stage1 image: where its files are and the manifest that names its entrypoints. */
export interface Stage1Image {
  /** The directory entrypoint paths are relative to. */
  rootfs: string;
  /** Its image manifest, whose annotations name the entrypoints ({@link ENTRYPOINTS}). */
  manifest: Stage1Manifest;
}

/** podlog's own stage1: the binary `npm ci` builds. */
const builtinStage1 = (): Stage1Image => {
  const binary = stage1Path();
  const name = `/${binary.split('/').pop()}`;
  return {
    rootfs: dirname(binary),
    manifest: {
      acKind: 'ImageManifest',
      name: 'podlog.dev/stage1',
      annotations: [
        { name: ENTRYPOINTS.run, value: `${name} init` },
        { name: ENTRYPOINTS.enter, value: `${name} enter` },
        { name: ENTRYPOINTS.gc, value: `${name} gc` },
        { name: ENTRYPOINTS.stop, value: `${name} stop` },
        { name: ENTRYPOINTS.netns, value: `${name} netns` },
        { name: ENTRYPOINTS.export, value: `${name} export` },
        { name: ENTRYPOINTS.appAdd, value: `${name} app-add` },
        { name: ENTRYPOINTS.appStart, value: `${name} app-start` },
        { name: ENTRYPOINTS.appStop, value: `${name} app-stop` },
        { name: ENTRYPOINTS.appRm, value: `${name} app-rm` },
        { name: 'coreos.com/rkt/stage1/interface-version', value: '1' },
      ],
    },
  };
};

const stage1Error = (message: string): PodlogError => new PodlogError('ESTAGE1', message);

/** An entrypoint's argv in a stage1 image (the annotation's path inside the rootfs, then its fixed arguments), if it names one. */
const entrypointArgv = (image: Stage1Image, name: EntrypointName): string[] | undefined => {
  const value = image.manifest.annotations.find((a) => a.name === ENTRYPOINTS[name])?.value ?? '';
  const [path, ...args] = value.split(' ').filter((s) => s !== '');
  return path === undefined ? undefined : [join(image.rootfs, path), ...args];
};

const isAnnotation = (a: unknown): boolean =>
  typeof a === 'object' && a !== null && typeof (a as { name?: unknown }).name === 'string' && typeof (a as { value?: unknown }).value === 'string';

/** A stage1 image directory's manifest, as far as stage0 reads it: a JSON object with string annotations. */
const readManifest = (file: string): Stage1Manifest => {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw stage1Error(`--stage1-path: cannot read the stage1 image manifest ${file}: ${(e as Error).message}`);
  }
  const annotations = (manifest as { annotations?: unknown } | null)?.annotations;
  if (!Array.isArray(annotations) || !annotations.every(isAnnotation)) {
    throw stage1Error(`--stage1-path: the stage1 image manifest ${file} has no list of annotations (name and value strings)`);
  }
  return manifest as Stage1Manifest;
};

const notExecutable = (file: string): string | undefined => {
  try {
    if (!statSync(file).isFile()) return 'is not a file';
    accessSync(file, fsConstants.X_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not executable';
  }
};

/**
 * A stage1 image, podlog's own or a directory holding `manifest` and `rootfs/`, checked whole before
 * any pod uses it: every entrypoint is named, and each is an executable file.
 *
 * @param dir - A stage1 image directory (--stage1-path); undefined: podlog's own, built by `npm ci`.
 * @throws `PodlogError` ESTAGE1 naming what is missing or wrong.
 */
export const stage1Image = (dir?: string): Stage1Image => {
  if (dir === '') throw stage1Error('--stage1-path cannot be empty');
  // Absolute: the pod keeps the path, and later verbs run from any directory.
  const image = dir === undefined ? builtinStage1() : { rootfs: resolve(dir, 'rootfs'), manifest: readManifest(resolve(dir, 'manifest')) };
  // The flag a user can fix, or the build that is missing.
  const [flag, hint] = dir === undefined ? ['', ' (is podlog built? run npm ci)'] : ['--stage1-path: ', ''];
  const binaries = new Map<string, string>();
  for (const name of REQUIRED) {
    const [binary] = entrypointArgv(image, name) ?? [];
    if (binary === undefined) throw stage1Error(`${flag}the stage1 image manifest has no "${ENTRYPOINTS[name]}" entrypoint annotation`);
    if (!binaries.has(binary)) binaries.set(binary, ENTRYPOINTS[name]);
  }
  for (const [binary, annotation] of binaries) {
    const problem = notExecutable(binary);
    if (problem !== undefined) throw stage1Error(`${flag}stage1 entrypoint ${binary} (${annotation}) ${problem}${problem === 'does not exist' ? hint : ''}`);
  }
  return image;
};

/** Copies the stage1 manifest into the pod, as rkt's prepareStage1Image does, so later entrypoints find it. */
export const installStage1 = (pod: string, image: Stage1Image): void => {
  const paths = podPaths(pod);
  mkdirSync(dirname(paths.stage1Manifest), { recursive: true });
  writeFileSync(paths.stage1Manifest, JSON.stringify(image.manifest));
  writeFileSync(paths.stage1Root, image.rootfs);
};

/** The argv of a pod's entrypoint (rkt's getStage1Entrypoint: "entrypoint %q not found"). */
export const entrypoint = (pod: string, name: EntrypointName): string[] => {
  const paths = podPaths(pod);
  let image: Stage1Image;
  try {
    image = { manifest: JSON.parse(readFileSync(paths.stage1Manifest, 'utf8')) as Stage1Manifest, rootfs: readFileSync(paths.stage1Root, 'utf8') };
  } catch (e) {
    throw stage1Error(`error determining '${name}' entrypoint: the pod has no stage1 manifest (${(e as Error).message})`);
  }
  const [binary, ...args] = entrypointArgv(image, name) ?? [];
  if (binary === undefined) throw stage1Error(`entrypoint "${ENTRYPOINTS[name]}" not found`);
  if (!existsSync(binary)) throw stage1Error(`stage1 entrypoint ${binary} does not exist (is podlog built? run npm ci)`);
  return [binary, ...args, '--pod-dir', pod];
};

/** The result of an entrypoint run to completion. */
export interface EntrypointResult {
  /** Its exit code, or 128 + the signal that killed it. */
  code: number;
  /** Its stdout and stderr, interleaved as they came (empty when interactive). */
  output: string;
}

/** A process's exit status as a shell reports it: its code, or 128 + the signal that killed it. */
export const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null): number =>
  code ?? 128 + (signal ? constants.signals[signal] : 0);

/**
 * rkt's CrossingEntrypoint: runs one of the pod's stage1 entrypoints to completion in the pod
 * directory, with the output captured (or inherited when interactive).
 */
export class CrossingEntrypoint {
  constructor(
    /** The pod's directory: the entrypoint runs in it, and finds the pod's stage1 through it. */
    readonly podPath: string,
    /** Which entrypoint. */
    readonly entrypointName: EntrypointName,
    /** Arguments after the ones stage0 always passes (`--pod-dir`). */
    readonly entrypointArgs: string[] = [],
    /** The entrypoint gets this process's stdin, stdout and stderr instead of pipes. */
    readonly interactive = false,
  ) {}

  /**
   * Runs the entrypoint and resolves when it exits, whatever its code.
   *
   * @throws `PodlogError` ESTAGE1 when the pod names no such entrypoint, or it cannot be started.
   */
  run(): Promise<EntrypointResult> {
    const [binary, ...args] = entrypoint(this.podPath, this.entrypointName);
    return new Promise((resolve, reject) => {
      const child = spawn(binary!, [...args, ...this.entrypointArgs], {
        cwd: this.podPath,
        stdio: this.interactive ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      child.on('error', (e) => reject(new PodlogError('ESTAGE1', `error executing stage1 entrypoint ${binary}: ${e.message}`)));
      child.on('close', (code, signal) => resolve({ code: exitCodeOf(code, signal), output }));
    });
  }
}
