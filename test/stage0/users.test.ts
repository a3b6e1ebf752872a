/**
 * Who an app runs as, end to end as root: a user given without a group takes its groups from the
 * image's /etc/passwd and /etc/group (runc's rule, which crun and Docker share), for an OCI image's
 * `User` and for an ACI app's `user` alike; `id` inside the pod is checked against the image's files.
 */
import test from 'ava';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs } from '../helpers/fixtures.js';
import { makeAci, makeOciLayout, manifestFor, tarDir } from '../images/helpers.js';
import { dataDir } from './podlog.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nuser:x:1000:1000::/home/user:/bin/sh\n';
const GROUP = 'root:x:0:\nwheel:x:10:user\nwww-data:x:33:\naudio:x:29:www-data,user\nuser:x:1000:\nnogroup:x:65534:\n';

/** `id -u`, `id -g`, `id -G` as crun gives them for the same image. */
const CASES: Array<[string, string]> = [
  ['nobody', '65534 65534 65534'],
  ['65534', '65534 65534 65534'],
  ['www-data', '33 33 33 29'],
  ['user', '1000 1000 1000 10 29'],
  ['4321', '4321 0 0'],
  ['user:wheel', '1000 10 10'],
];
const ID = ['/bin/sh', '-c', 'echo $(id -u) $(id -g) $(id -G)'];

test('an OCI image: User without a group takes the groups of /etc/passwd and /etc/group', (t) => {
  const d = dataDir();
  const work = mkdtempSync(join(tmpdir(), 'podlog-users-'));
  try {
    const root = join(work, 'rootfs');
    cpSync(busyboxRootfs, root, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(root, 'etc', 'passwd'), PASSWD);
    writeFileSync(join(root, 'etc', 'group'), GROUP);
    const layer = tarDir(root, join(work, 'layer.tar'));
    for (const [i, [user, want]] of CASES.entries()) {
      const layout = join(work, `oci-${i}`);
      const config = { architecture: 'amd64', os: 'linux', config: { User: user, Entrypoint: ID }, rootfs: { type: 'layers', diff_ids: [] } };
      makeOciLayout(layout, { layers: [{ tar: layer }], config, annotations: { 'org.opencontainers.image.ref.name': `example.com/users:u${i}` } });
      const f = d.podlog(['fetch', layout]);
      t.is(f.status, 0, f.stderr);
      const r = d.podlog(['run', `example.com/users:u${i}`]);
      t.is(r.status, 0, `${user}: ${r.stderr}`);
      t.is(r.stdout.trim(), want, user);
    }
  } finally {
    d.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});

test('an ACI app with a user and no group takes the same groups', (t) => {
  const d = dataDir();
  const work = mkdtempSync(join(tmpdir(), 'podlog-users-'));
  try {
    for (const [i, [spec, want]] of CASES.entries()) {
      const [user, group] = spec.split(':');
      const app = { exec: ID, user, ...(group ? { group } : {}) };
      const aci = makeAci(join(work, `u${i}.aci`), { manifest: manifestFor(`example.com/aci-users-${i}`, { app }), files: { 'etc/passwd': PASSWD, 'etc/group': GROUP } });
      const r = d.podlog(['run', aci]);
      t.is(r.status, 0, `${spec}: ${r.stderr}`);
      t.is(r.stdout.trim(), want, spec);
    }
  } finally {
    d.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});
