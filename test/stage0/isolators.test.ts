/** The isolators stage0 writes for stage1: quantities, the flags in place of the image's, the checks, the ignored ones. */
import test from 'ava';
import { parseRunFlags } from '../../src/cli/run-flags.js';
import { PodlogError } from '../../src/errors.js';
import { appIsolators, checkIsolatorFlags, ignoredIsolators } from '../../src/stage0/isolators.js';
import { cpuMillicores, memoryBytes, parseQuantity } from '../../src/stage0/resources.js';

const fail = (what: string) => new PodlogError('EUSAGE', what);

test('Kubernetes quantities, as appc isolators and rkt flags write them', (t) => {
  t.is(parseQuantity('128M'), 128e6);
  t.is(parseQuantity('128Mi'), 128 * 2 ** 20);
  t.is(parseQuantity('1.5Gi'), 1.5 * 2 ** 30);
  t.is(parseQuantity('500m'), 0.5);
  t.is(parseQuantity('2'), 2);
  t.is(parseQuantity('1e3'), 1000);
  t.is(parseQuantity('.5'), 0.5);
  for (const bad of ['', 'M', '12MB', '-1', '1 G', '0x10', '1.2.3']) t.is(parseQuantity(bad), undefined, bad);
});

test('memory in bytes and CPU in millicores, with the floors Docker and the kernel have', (t) => {
  t.is(memoryBytes('32M', fail), '32000000');
  t.is(memoryBytes('32Mi', fail), '33554432');
  t.is(memoryBytes('33554432', fail), '33554432', 'the canonical form reads as itself');
  t.throws(() => memoryBytes('1M', fail), { message: /below the minimum memory limit of 6 MiB/ });
  t.throws(() => memoryBytes('lots', fail), { message: /"lots" is not a quantity/ });
  t.is(cpuMillicores('100m', fail), '100m');
  t.is(cpuMillicores('1.5', fail), '1500m');
  t.is(cpuMillicores('0.25', fail), '250m');
  t.throws(() => cpuMillicores('5m', fail), { message: /below the minimum CPU limit of 10m/ });
});

test("the flags' isolators replace the image's of their kind; the rest of the image's stay", (t) => {
  const image = [
    { name: 'resource/memory', value: { limit: '1Gi', request: '512Mi' } },
    { name: 'os/linux/capabilities-remove-set', value: { set: ['CAP_CHOWN'] } },
    { name: 'os/linux/oom-score-adj', value: 100 },
    { name: 'resource/network-bandwidth', value: { limit: '1G' } },
  ];
  const flags = parseRunFlags(['img', '--memory=64Mi', '--caps-retain=CAP_KILL', '--cpu=250m']).apps[0]!;
  t.deepEqual(appIsolators('web', image, flags), [
    { name: 'os/linux/oom-score-adj', value: 100 },
    { name: 'resource/network-bandwidth', value: { limit: '1G' } },
    { name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_KILL'] } },
    { name: 'resource/memory', value: { limit: '67108864' } },
    { name: 'resource/cpu', value: { limit: '250m' } },
  ]);
  t.deepEqual(appIsolators('web', image, undefined)![0], { name: 'resource/memory', value: { request: '512Mi', limit: '1073741824' } }, "an image's limit is made canonical too");
  t.is(appIsolators('web', undefined, parseRunFlags(['img']).apps[0]), undefined, 'none: no isolators key at all');
});

test("an image's bad isolators are refused by app and isolator name", (t) => {
  const refuse = (isolators: Array<{ name: string; value: unknown }>, message: RegExp) =>
    t.throws(() => appIsolators('web', isolators, undefined), { instanceOf: PodlogError, message });
  refuse([{ name: 'os/linux/cpu-shares', value: 1 }], /app web: isolator os\/linux\/cpu-shares: 1 is not an integer from 2 to 262144/);
  refuse([{ name: 'os/linux/oom-score-adj', value: '5' }], /"5" is not an integer from -1000 to 1000/);
  refuse([{ name: 'resource/cpu', value: { limit: 2 } }], /limit 2 is not a quantity string/);
  refuse([{ name: 'resource/memory', value: { max: '1G' } }], /unknown field "max"/);
  refuse([{ name: 'os/linux/no-new-privileges', value: 'yes' }], /"yes" is not true or false/);
  refuse([{ name: 'resource/memory', value: { limit: '1G' } }, { name: 'resource/memory', value: { limit: '2G' } }], /resource\/memory: it is given twice/);
  refuse(
    [{ name: 'os/linux/capabilities-retain-set', value: { set: ['CAP_KILL'] } }, { name: 'os/linux/capabilities-remove-set', value: { set: ['CAP_KILL'] } }],
    /capabilities-retain-set and os\/linux\/capabilities-remove-set cannot both be set/,
  );
});

test('flags are checked before anything is resolved, naming the flag', (t) => {
  const check = (argv: string[]) => checkIsolatorFlags(parseRunFlags(['img', ...argv]).apps[0]!);
  t.throws(() => check(['--memory=1k']), { message: /^--memory: "1k" is below the minimum memory limit/ });
  t.throws(() => check(['--cpu=fast']), { message: /^--cpu: "fast" is not a quantity of cores/ });
  t.throws(() => check(['--cpu-shares=1']), { message: /^--cpu-shares: 1 is not an integer from 2 to 262144/ });
  t.throws(() => check(['--oom-score-adj=2000']), { message: /^--oom-score-adj: 2000 is not an integer from -1000 to 1000/ });
  t.throws(() => parseRunFlags(['img', '--oom-score-adj=high']), { message: /--oom-score-adj: "high" is not an integer/ });
  t.throws(() => parseRunFlags(['img', '--seccomp=remove,mkdir']), { message: /--seccomp remove,mkdir: needs mode=retain or mode=remove/ });
  t.throws(() => parseRunFlags(['img', '--seccomp=mode=remove,errno=EPERM,errno=EIO,mkdir']), { message: /errno= is given twice/ });
  t.throws(() => check(['--seccomp=mode=remove']), { message: /^--seccomp: "set" must be a non-empty list/ });
  t.throws(() => check(['--seccomp=mode=remove,errno=EWHATEVER,mkdir']), { message: /^--seccomp: unknown errno "EWHATEVER"/ });
  t.throws(() => check(['--seccomp=mode=remove,mkdir,notasyscall,@rkt/nothing']), { message: /^--seccomp: unknown syscall or group "notasyscall", "@rkt\/nothing"/ });
  t.throws(() => check(['--caps-retain=CAP_KILL', '--caps-remove=CAP_CHOWN']), { message: /cannot both be given for one app/ });
  t.notThrows(() => check(['--memory=64M', '--cpu=1', '--cpu-shares=512', '--oom-score-adj=-500', '--seccomp=mode=remove,errno=ENOSYS,mkdir']));
  t.deepEqual(parseRunFlags(['img', '--seccomp=mode=retain,@podlog/default-whitelist,errno=EPERM,mkdir']).apps[0]!.seccomp, {
    mode: 'retain', set: ['@podlog/default-whitelist', 'mkdir'], errno: 'EPERM',
  });
  t.is(parseRunFlags(['img', '--readonly-rootfs']).apps[0]!.readonlyRootfs, true);
});

test('a remove set of what stage1 calls after loading the filter needs no-new-privileges', (t) => {
  const refused = [{ name: 'os/linux/no-new-privileges', value: false }, { name: 'os/linux/seccomp-remove-set', value: { set: ['mkdir', 'setresuid'] } }];
  t.throws(() => appIsolators('web', refused, undefined), { message: /app web: isolator os\/linux\/seccomp-remove-set: it removes setresuid, which stage1 calls after loading the filter when os\/linux\/no-new-privileges is false/ });
  t.notThrows(() => appIsolators('web', [refused[1]!], undefined), 'with no_new_privs (the default) the filter is loaded last');
  t.notThrows(() => appIsolators('web', [refused[0]!, { name: 'os/linux/seccomp-remove-set', value: { set: ['mkdir'] } }], undefined));
});

test('appc resource isolators: a default flag and a request are kept as they are', (t) => {
  t.deepEqual(appIsolators('web', [{ name: 'resource/memory', value: { default: true, request: '1G' } }], undefined), [{ name: 'resource/memory', value: { default: true, request: '1G' } }]);
  t.throws(() => appIsolators('web', [{ name: 'resource/memory', value: { default: 'yes' } }], undefined), { message: /"default" must be true or false/ });
});

test('the isolators podlog does not apply are listed by app', (t) => {
  t.deepEqual(
    ignoredIsolators([
      { name: 'a', app: { isolators: [{ name: 'resource/memory', value: { limit: '1G' } }, { name: 'os/linux/selinux-context', value: {} }, { name: 'resource/cpu', value: { request: '1' } }] } },
      { name: 'b', app: { isolators: [{ name: 'resource/block-iops', value: {} }] } },
      { name: 'c' },
    ]),
    [{ app: 'a', name: 'os/linux/selinux-context' }, { app: 'a', name: 'resource/cpu' }, { app: 'b', name: 'resource/block-iops' }],
    'a request alone is not applied',
  );
});
