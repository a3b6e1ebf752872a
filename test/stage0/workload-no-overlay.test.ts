/**
 * `--no-overlay`: each app's root is a copy of its image's tree in the pod directory (reflinked where
 * the file system can, else copied; an OCI image's layers applied into it), made by its own effect
 * (AppRootCopyRequested → AppRootCopied, saying how), bound by stage1 instead of an overlay, and
 * removed with the pod by `gc`.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podDir } from '../../src/stage0/pod-dir.js';
import { aciPath, busyboxRootfs } from '../helpers/fixtures.js';
import { makeOciLayout, tarDir } from '../images/helpers.js';
import { dataDir, mountTable } from './podlog.js';

const work = mkdtempSync(join(tmpdir(), 'podlog-no-overlay-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const mountsBefore = mountTable();

/** The app writes into its root and prints the file system type of its `/`. */
const APP = ['--exec', '/bin/sh', '--', '-c', 'echo kept > /written; awk \'$5 == "/" { for (i = 7; $i != "-"; i++) ; print $(i + 1) }\' /proc/self/mountinfo'];

const layout = (): string => {
  const dir = join(work, 'oci');
  if (!existsSync(dir)) makeOciLayout(dir, { layers: [{ tar: tarDir(busyboxRootfs, join(work, 'busybox.tar')) }] });
  return dir;
};

for (const [kind, image, methods] of [
  ['an ACI', () => aciPath('busybox-gzip'), ['reflink', 'copy']],
  ['an OCI image (its layers applied)', layout, ['layers']],
] as const) {
  test.serial(`run --no-overlay of ${kind}: the app's root is its own copy, not an overlay, and gc removes it`, (t) => {
    const d = dataDir();
    try {
      const r = d.podlog(['run', '--no-overlay', image(), ...APP]);
      t.is(r.status, 0, r.stderr);
      t.not(r.stdout.trim(), 'overlay', "the app's / is not an overlay");
      const [pod] = d.pods();
      const events = d.events(pod!.uuid);
      const types = events.map((e) => e.type);
      t.false(types.includes('OverlayPrepareRequested'));
      const copied = events.find((e) => e.type === 'AppRootCopied')!;
      t.true(types.indexOf('AppRootCopyRequested') < types.indexOf('AppRootCopied'));
      t.true((methods as readonly string[]).includes(copied.data.method as string), `recorded how: ${String(copied.data.method)}`);
      const copy = join(podDir(d.dir, pod!.uuid), 'apps', pod!.apps[0]!.name, 'rootfs');
      t.is(readFileSync(join(copy, 'written'), 'utf8'), 'kept\n', "what the app wrote is in the pod's copy");
      t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
      t.false(existsSync(podDir(d.dir, pod!.uuid)), 'gc removed the pod and its copy');
      t.is(mountTable(), mountsBefore, 'no mount left');
    } finally {
      d.cleanup();
    }
  });
}

test.serial('prepare --no-overlay, then run-prepared: the copy is made at prepare, and the pod runs on it', (t) => {
  const d = dataDir();
  try {
    const prepared = d.podlog(['prepare', '--no-overlay', aciPath('busybox-gzip'), ...APP]);
    t.is(prepared.status, 0, prepared.stderr);
    const uuid = prepared.stdout.trim();
    t.true(existsSync(join(podDir(d.dir, uuid), 'apps', 'busybox', 'rootfs', 'bin', 'busybox')), 'copied at prepare');
    const r = d.podlog(['run-prepared', uuid]);
    t.is(r.status, 0, r.stderr);
    t.not(r.stdout.trim(), 'overlay');
  } finally {
    d.cleanup();
  }
});
