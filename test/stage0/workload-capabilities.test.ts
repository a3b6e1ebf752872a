/**
 * An app's capabilities: rkt's default set, an image's `os/linux/capabilities-retain-set`, and
 * `--caps-retain` / `--caps-remove` after the app's image, which replace the image's set. Read from
 * inside the app (/proc/self/status), and tried (chown). And rkt's --insecure-options for a run,
 * which leave capabilities, kernel paths or seccomp unconfined, and say so in status.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { aciPath } from '../helpers/fixtures.js';
import { dataDir, startRun, waitForRunning } from './podlog.js';

const busybox = aciPath('busybox-gzip');
const STATUS = ['--exec', '/bin/sh', '--', '-c', 'grep ^Cap /proc/self/status'];
/** CapEff and CapBnd as /proc prints them. */
const caps = (out: string): { eff?: string; bnd?: string } => ({ eff: /^CapEff:\s+(\S+)/m.exec(out)?.[1], bnd: /^CapBnd:\s+(\S+)/m.exec(out)?.[1] });

test('the default set is rkt\'s (and Docker\'s); --caps-retain leaves only its own; --caps-remove takes from the default', (t) => {
  const d = dataDir();
  try {
    const plain = d.podlog(['run', busybox, ...STATUS]);
    t.is(plain.status, 0, plain.stderr);
    t.deepEqual(caps(plain.stdout), { eff: '00000000a80425fb', bnd: '00000000a80425fb' });
    const retained = d.podlog(['run', busybox, '--caps-retain=CAP_NET_BIND_SERVICE', ...STATUS]);
    t.is(retained.status, 0, retained.stderr);
    t.deepEqual(caps(retained.stdout), { eff: '0000000000000400', bnd: '0000000000000400' }, 'bit 10 alone');
    const removed = d.podlog(['run', busybox, '--caps-remove=CAP_CHOWN', '--exec', '/bin/sh', '--', '-c', 'touch /f; chown 1 /f; echo chown=$?']);
    t.regex(removed.stdout, /chown=1/);
    t.regex(removed.stderr, /Operation not permitted/);
    const kept = d.podlog(['run', busybox, '--exec', '/bin/sh', '--', '-c', 'touch /f; chown 1 /f; echo chown=$?']);
    t.regex(kept.stdout, /chown=0/, 'the default set has CAP_CHOWN');
  } finally {
    d.cleanup();
  }
});

test("an image's retain set applies, and --caps-retain replaces it", (t) => {
  const d = dataDir();
  try {
    const image = d.podlog(['run', aciPath('caps')]);
    t.is(image.status, 0, image.stderr);
    t.deepEqual(caps(image.stdout), { eff: '0000000000000420', bnd: '0000000000000420' }, 'CAP_KILL and CAP_NET_BIND_SERVICE');
    const flag = d.podlog(['run', aciPath('caps'), '--caps-retain=CAP_CHOWN']);
    t.deepEqual(caps(flag.stdout), { eff: '0000000000000001', bnd: '0000000000000001' });
    const [, pod] = d.pods();
    const manifest = JSON.parse(d.podlog(['cat-manifest', pod!.uuid]).stdout);
    t.deepEqual(manifest.apps[0].app.isolators, [{ name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_CHOWN'] } }], 'in the pod manifest, in place of the image\'s');
  } finally {
    d.cleanup();
  }
});

test('unknown capability names, and both flags for one app, are refused before a pod exists', (t) => {
  const d = dataDir();
  try {
    for (const [flags, message] of [
      [['--caps-retain=CAP_FLY'], /--caps-retain: unknown capability "CAP_FLY"/],
      [['--caps-remove=chown'], /--caps-remove: unknown capability "chown"/],
      [['--caps-retain=CAP_KILL', '--caps-remove=CAP_CHOWN'], /--caps-retain and --caps-remove cannot both be given for one app/],
    ] as const) {
      const r = d.podlog(['run', busybox, ...flags]);
      t.is(r.status, 254);
      t.regex(r.stderr, message);
    }
    t.deepEqual(d.pods(), []);
  } finally {
    d.cleanup();
  }
});

test('--insecure-options=capabilities,paths,seccomp: full capabilities, no masked kernel files, no seccomp filter; status says so', (t) => {
  const d = dataDir();
  try {
    const probe = ['--exec', '/bin/sh', '--', '-c', 'grep -E "^(CapBnd|Seccomp):" /proc/self/status; stat -c "keys=%F" /proc/keys'];
    const confined = d.podlog(['run', busybox, ...probe]);
    t.is(confined.status, 0, confined.stderr);
    t.regex(confined.stdout, /^Seccomp:\s+2$/m, 'filtered');
    t.regex(confined.stdout, /keys=character special file/, "/proc/keys masked by /dev/null");
    const open = d.podlog(['run', '--insecure-options=all-run', busybox, ...probe]);
    t.is(open.status, 0, open.stderr);
    t.regex(open.stdout, /^Seccomp:\s+0$/m, 'no filter');
    t.regex(open.stdout, /keys=regular (empty )?file/, "the kernel file itself");
    const own = readFileSync('/proc/self/status', 'utf8');
    t.is(caps(open.stdout).bnd, /^CapBnd:\s+(\S+)/m.exec(own)?.[1], "the bounding set stage1's own: every capability");
    const [, pod] = d.pods();
    t.regex(d.podlog(['status', pod!.uuid]).stdout, /^insecure-options=capabilities,paths,seccomp$/m);
    t.notRegex(d.podlog(['status', d.pods()[0]!.uuid]).stdout, /insecure-options/);
    const events = d.events(pod!.uuid);
    t.deepEqual(events.find((e) => e.type === 'Stage1StartRequested')!.data.insecure, ['capabilities', 'paths', 'seccomp'], 'in the log');
    const seccompOnly = d.podlog(['run', '--insecure-options=seccomp', busybox, ...probe]);
    t.regex(seccompOnly.stdout, /^Seccomp:\s+0$/m);
    t.regex(seccompOnly.stdout, /keys=character special file/, "paths stay masked");
  } finally {
    d.cleanup();
  }
});

test('a command entered in a pod run with --insecure-options=capabilities,seccomp is as unconfined as its apps', async (t) => {
  const d = dataDir();
  try {
    const { uuid, exited } = await startRun(d, ['--insecure-options=capabilities,seccomp', aciPath('worker')]);
    await waitForRunning(d, uuid);
    const entered = d.podlog(['enter', uuid, '--', '/bin/sh', '-c', 'grep -E "^(CapBnd|Seccomp):" /proc/self/status']);
    t.is(entered.status, 0, entered.stderr);
    t.regex(entered.stdout, /^Seccomp:\s+0$/m);
    t.is(caps(entered.stdout).bnd, /^CapBnd:\s+(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    t.is(d.podlog(['stop', uuid]).status, 0);
    t.is(await exited, 0);
  } finally {
    d.cleanup();
  }
});
