/**
 * `--private-users`: the apps run in a user namespace whose ids 0..65535 are a block of host ids of
 * their own (recorded in PrepareRequested), so root in the pod is nobody special on the host. The
 * image's files are the pod root's through idmapped mounts where the data dir's file system takes
 * them, else through a copy with every owner shifted; the log says which.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podDir } from '../../src/stage0/pod-dir.js';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, mountTable, podlogBin, waitForFile } from './podlog.js';

const work = mkdtempSync(join(tmpdir(), 'podlog-private-users-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
const mountsBefore = mountTable();

interface Users {
  shift: number;
  count: number;
  ownership: 'idmap' | 'chown';
}
type Events = ReturnType<ReturnType<typeof dataDir>['events']>;
const usersOf = (events: Events): Users => events.find((e) => e.type === 'PrepareRequested')!.data.privateUsers as Users;

/** Prints the pod's uid map, its ids, and the owner of the image's busybox as the pod sees it. */
const IDS = 'cat /proc/self/uid_map; id -u; id -g; ls -ln /bin/busybox | awk \'{ print "busybox=" $3 ":" $4 }\'';

test.serial('run --private-users: root in the pod is a block of host ids of its own, the image is its own, and the host stays closed', (t) => {
  const d = dataDir();
  const vol = join(work, 'vol');
  mkdirSync(vol, { mode: 0o1777 });
  chmodSync(vol, 0o1777);
  writeFileSync(join(vol, 'secret'), 'host only\n', { mode: 0o600 });
  try {
    const script = `${IDS}; echo made > /vol/made; cat /vol/secret; echo secret=$?; echo x > /etc/pod-file && echo etc=ok`;
    const r = d.podlog(['run', '--private-users', '--volume', `v,kind=host,source=${vol}`, '--mount', 'volume=v,target=/vol', aciPath('busybox-gzip'), '--exec', '/bin/sh', '--', '-c', script]);
    t.is(r.status, 0, r.stderr);
    const [pod] = d.pods();
    const events = d.events(pod!.uuid);
    const users = usersOf(events);
    t.is(users.count, 65536);
    t.true(users.shift >= 0x80000 && users.shift % 65536 === 0 && users.shift + users.count <= 0x70000000, `a block of systemd's container range: ${users.shift}`);
    const lines = r.stdout.split('\n').map((l) => l.trim());
    t.deepEqual(lines[0]!.split(/\s+/), ['0', String(users.shift), '65536'], 'uid_map: the pod\'s 0 is the recorded shift');
    t.deepEqual(lines.slice(1, 3), ['0', '0'], "the app is the pod's root");
    t.true(lines.includes('busybox=0:0'), "the image's files are the pod root's");
    t.true(lines.includes('etc=ok'), "the pod's root writes in its own root");
    const made = statSync(join(vol, 'made'));
    t.deepEqual([made.uid, made.gid], [users.shift, users.shift], "what the pod's root makes in a host volume is the shifted id's on the host");
    t.true(lines.includes('secret=1'), "root in the pod cannot read host root's 0600 file");
    t.regex(r.stderr + r.stdout, /Permission denied/);
    t.is(readFileSync(join(vol, 'secret'), 'utf8'), 'host only\n');
    // How the files came to be the pod's is in the log, and the pod was prepared accordingly.
    const types = events.map((e) => e.type);
    if (users.ownership === 'idmap') t.true(types.includes('OverlayPrepared') && !types.includes('AppRootCopyRequested'));
    else t.true(types.includes('AppRootCopied') && !types.includes('OverlayPrepareRequested'));
    t.is(d.podlog(['gc', '--grace-period=0s']).status, 0);
    t.false(existsSync(podDir(d.dir, pod!.uuid)));
    t.is(mountTable(), mountsBefore, 'no mount left');
  } finally {
    d.cleanup();
  }
});

test.serial('two pods that exist at once get blocks that do not overlap; --no-overlay is idmapped too', (t) => {
  const d = dataDir();
  try {
    for (const extra of [[], ['--no-overlay']]) {
      const r = d.podlog(['run', '--private-users', ...extra, aciPath('busybox-gzip'), '--exec', '/bin/sh', '--', '-c', `${IDS}; touch /made; ls -ln /made | awk '{ print "made=" $3 }'`]);
      t.is(r.status, 0, r.stderr);
      t.true(r.stdout.includes('busybox=0:0') && r.stdout.includes('made=0'), r.stdout);
    }
    const shifts = d.pods().map((p) => usersOf(d.events(p.uuid)).shift);
    t.is(shifts.length, 2);
    t.true(Math.abs(shifts[0]! - shifts[1]!) >= 65536, `${shifts.join(' and ')} overlap`);
  } finally {
    d.cleanup();
  }
});

test.serial("enter joins the pod's user namespace", async (t) => {
  const d = dataDir();
  try {
    const uuidFile = join(d.dir, 'uuid');
    const run = d.start(['run', '--private-users', '--uuid-file-save', uuidFile, aciPath('busybox-gzip'), '--exec', '/bin/sleep', '--', '30']);
    const uuid = await waitForFile(uuidFile);
    let entered = d.podlog(['enter', uuid, '--', '/bin/sh', '-c', IDS]);
    // The pod may still be starting: enter needs it running.
    for (let i = 0; i < 100 && entered.status !== 0; i++) {
      await new Promise((ok) => setTimeout(ok, 50));
      entered = d.podlog(['enter', uuid, '--', '/bin/sh', '-c', IDS]);
    }
    t.is(entered.status, 0, entered.stderr);
    const shift = usersOf(d.events(uuid)).shift;
    t.deepEqual(entered.stdout.split('\n')[0]!.trim().split(/\s+/), ['0', String(shift), '65536']);
    t.true(entered.stdout.includes('busybox=0:0'));
    t.is(d.podlog(['stop', uuid]).status, 0);
    await new Promise((ok) => run.once('exit', ok));
  } finally {
    d.cleanup();
  }
});

test.serial('where the file system cannot be idmapped (ramfs), each app gets a copy with its owners shifted, and the log says chown', (t) => {
  // ramfs has no idmapped mounts; mounted in a mount namespace of the test's own.
  const dir = join(work, 'ramfs');
  mkdirSync(dir);
  const script = [
    'set -e',
    `mount -t ramfs podlog-test "${dir}"`,
    `"${podlogBin}" --dir "${dir}/d" run --private-users "${aciPath('busybox-gzip')}" --exec /bin/sh -- -c "$IDS"`,
    `"${podlogBin}" --dir "${dir}/d" events --json`,
    `stat -c host-owner=%u "${dir}"/d/pods/*/apps/busybox/rootfs/bin/busybox`,
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, IDS } });
  t.is(r.status, 0, r.stderr);
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Events[number]);
  const users = usersOf(events);
  t.is(users.ownership, 'chown');
  t.true(events.some((e) => e.type === 'AppRootCopied'), 'the app runs on a copy');
  t.true(r.stdout.includes('busybox=0:0'), "the copy's files are the pod root's inside");
  t.true(r.stdout.includes(`host-owner=${users.shift}`), 'and the shifted id on the host');
  t.true(r.stdout.split('\n').some((l) => l.trim().split(/\s+/).join(' ') === `0 ${users.shift} 65536`));
});

test.serial('an empty volume owned by an id the pod does not have is refused before anything is made', (t) => {
  const d = dataDir();
  try {
    const r = d.podlog(['run', '--private-users', '--volume', 'e,kind=empty,uid=70000', aciPath('busybox-gzip'), '--exec', '/bin/true']);
    t.is(r.status, 254);
    t.regex(r.stderr, /--volume e,kind=empty,uid=70000: uid 70000 is not one of the pod's 65536 ids \(--private-users\)/);
    t.deepEqual(d.pods(), []);
  } finally {
    d.cleanup();
  }
});
