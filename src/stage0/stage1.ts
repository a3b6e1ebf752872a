/**
 * The stage1 entrypoint protocol (rkt-semantics §3): stage0 never knows how a pod is isolated; it
 * finds each entrypoint in the stage1 image's manifest annotations and runs it in the pod directory.
 * podlog's annotations name a path inside the stage1 image followed by fixed arguments
 * ("/podlog-stage1 init"); the flags stage0 adds are podlog's (docs/stage1.md), so another stage1
 * that speaks them can be dropped in with --stage1-path.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { PodlogError } from '../errors.js';
import { stage1Path } from '../native.js';
import { podPaths } from './pod-dir.js';

export const ENTRYPOINTS = {
  run: 'coreos.com/rkt/stage1/run',
  enter: 'coreos.com/rkt/stage1/enter',
  gc: 'coreos.com/rkt/stage1/gc',
  stop: 'coreos.com/rkt/stage1/stop',
} as const;
export type EntrypointName = keyof typeof ENTRYPOINTS;

interface Stage1Manifest {
  acKind: 'ImageManifest';
  name: string;
  annotations: Array<{ name: string; value: string }>;
}

export interface Stage1Image {
  /** The directory entrypoint paths are relative to. */
  rootfs: string;
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
        { name: 'coreos.com/rkt/stage1/interface-version', value: '1' },
      ],
    },
  };
};

/** A stage1 image: podlog's own, or a directory holding `manifest` and `rootfs/`. */
export const stage1Image = (dir?: string): Stage1Image => {
  if (dir === undefined) return builtinStage1();
  try {
    return { rootfs: join(dir, 'rootfs'), manifest: JSON.parse(readFileSync(join(dir, 'manifest'), 'utf8')) as Stage1Manifest };
  } catch (e) {
    throw new PodlogError('ESTAGE1', `cannot read the stage1 image manifest ${join(dir, 'manifest')}: ${(e as Error).message}`);
  }
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
  let manifest: Stage1Manifest;
  let rootfs: string;
  try {
    manifest = JSON.parse(readFileSync(paths.stage1Manifest, 'utf8')) as Stage1Manifest;
    rootfs = readFileSync(paths.stage1Root, 'utf8');
  } catch (e) {
    throw new PodlogError('ESTAGE1', `error determining '${name}' entrypoint: the pod has no stage1 manifest (${(e as Error).message})`);
  }
  const value = manifest.annotations.find((a) => a.name === ENTRYPOINTS[name])?.value;
  if (value === undefined) throw new PodlogError('ESTAGE1', `entrypoint "${ENTRYPOINTS[name]}" not found`);
  const [path, ...args] = value.split(' ').filter((s) => s !== '');
  const binary = join(rootfs, path!);
  if (!existsSync(binary)) throw new PodlogError('ESTAGE1', `stage1 entrypoint ${binary} does not exist (is podlog built? run npm ci)`);
  return [binary, ...args, '--pod-dir', pod];
};

/** The result of an entrypoint run to completion. */
export interface EntrypointResult {
  code: number;
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
    readonly podPath: string,
    readonly entrypointName: EntrypointName,
    readonly entrypointArgs: string[] = [],
    readonly interactive = false,
  ) {}

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
