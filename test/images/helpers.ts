/**
 * Images built by the tests themselves: ACIs with chosen manifests (tar of a staging dir), and a data
 * dir with an event log and an image store next to a canary file that nothing may touch.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { commandContext } from '../../src/events/metadata.js';
import { openImageStore, type ImageStore } from '../../src/images/index.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/port.js';
import { busyboxRootfs } from '../helpers/fixtures.js';

export const manifestFor = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  acKind: 'ImageManifest',
  acVersion: '0.8.11',
  name,
  labels: [
    { name: 'os', value: 'linux' },
    { name: 'arch', value: 'amd64' },
  ],
  ...extra,
});

export interface AciSpec {
  manifest: Record<string, unknown> | string;
  /** Copy the busybox rootfs in (default true). */
  busybox?: boolean;
  /** Files to write below rootfs/, path → content. */
  files?: Record<string, string>;
  /** Compress with this program (gzip, xz, zstd...). */
  compress?: string;
}

/** Writes an ACI to `path` (GNU tar, sorted, reproducible) and returns the path. */
export const makeAci = (path: string, spec: AciSpec): string => {
  const stage = mkdtempSync(join(tmpdir(), 'podlog-aci-stage-'));
  try {
    writeFileSync(join(stage, 'manifest'), typeof spec.manifest === 'string' ? spec.manifest : JSON.stringify(spec.manifest));
    if (spec.busybox ?? true) cpSync(busyboxRootfs, join(stage, 'rootfs'), { recursive: true, verbatimSymlinks: true });
    else mkdirSync(join(stage, 'rootfs'));
    for (const [file, content] of Object.entries(spec.files ?? {})) {
      mkdirSync(dirname(join(stage, 'rootfs', file)), { recursive: true });
      writeFileSync(join(stage, 'rootfs', file), content);
    }
    mkdirSync(dirname(path), { recursive: true });
    const tar = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--format=gnu', '-C', stage, '-cf', path, 'manifest', 'rootfs']);
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr.toString()}`);
    if (spec.compress) {
      const c = spawnSync(spec.compress, ['-f', '-q', path]);
      if (c.status !== 0) throw new Error(`${spec.compress}: ${c.stderr.toString()}`);
      const suffix: Record<string, string> = { gzip: '.gz', xz: '.xz', zstd: '.zst', bzip2: '.bz2' };
      cpSync(`${path}${suffix[spec.compress]}`, path);
      rmSync(`${path}${suffix[spec.compress]}`);
    }
    return path;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
};

export interface Sandbox {
  /** Holds `data/` (the data dir), `canary/file`, and `in/` for test inputs. */
  root: string;
  dataDir: string;
  input: (name: string) => string;
  events: EventStore;
  images: ImageStore;
  /** Throws if the canary changed or anything appeared next to the data dir but in/. */
  assertContained: () => void;
  cleanup: () => Promise<void>;
}

export const sandbox = async (): Promise<Sandbox> => {
  const root = mkdtempSync(join(tmpdir(), 'podlog-images-'));
  const dataDir = join(root, 'data');
  mkdirSync(join(root, 'canary'));
  mkdirSync(join(root, 'in'));
  writeFileSync(join(root, 'canary', 'file'), 'untouched');
  const events = await openStore(dataDir);
  return {
    root,
    dataDir,
    input: (name) => join(root, 'in', name),
    events,
    images: openImageStore(dataDir, events, commandContext(['test'])),
    assertContained: () => {
      if (readdirSync(join(root, 'canary')).join() !== 'file') throw new Error('the canary dir was written to');
      if (readFileSync(join(root, 'canary', 'file'), 'utf8') !== 'untouched') throw new Error('the canary was changed');
      const left = readdirSync(root).filter((n) => !['canary', 'data', 'in'].includes(n));
      if (left.length > 0) throw new Error(`written next to the data dir: ${left.join(', ')}`);
    },
    cleanup: async () => {
      await events.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
};

/** Entries of a store directory (empty when it does not exist). */
export const entries = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};
