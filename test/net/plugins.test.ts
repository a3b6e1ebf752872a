/**
 * Finding plugin binaries: --net-plugins-dir first, then Debian's /usr/lib/cni, then /opt/cni/bin;
 * only an executable file counts; a missing one is named with every directory searched.
 */
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPlugin, pluginDirs } from '../../src/net/plugins.js';

test('--net-plugins-dir comes first and may override a packaged plugin; a file that is not executable, or a directory, does not count', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podlog-cni-dir-'));
  try {
    t.deepEqual(pluginDirs(), ['/usr/lib/cni', '/opt/cni/bin']);
    t.deepEqual(pluginDirs(dir), [dir, '/usr/lib/cni', '/opt/cni/bin']);
    t.is(findPlugin('ptp', pluginDirs()), '/usr/lib/cni/ptp', 'the Debian package is installed here');
    writeFileSync(join(dir, 'ptp'), '#!/bin/sh\n');
    chmodSync(join(dir, 'ptp'), 0o755);
    writeFileSync(join(dir, 'bridge'), '#!/bin/sh\n');
    chmodSync(join(dir, 'bridge'), 0o644);
    mkdirSync(join(dir, 'tuning'));
    t.is(findPlugin('ptp', pluginDirs(dir)), join(dir, 'ptp'));
    t.is(findPlugin('bridge', pluginDirs(dir)), '/usr/lib/cni/bridge');
    t.is(findPlugin('tuning', pluginDirs(dir)), '/usr/lib/cni/tuning');
    const e = t.throws(() => findPlugin('flannel', pluginDirs(dir)));
    t.like(e, { code: 'ENET_PLUGIN_NOT_FOUND' });
    t.regex(e!.message, new RegExp(`^CNI plugin "flannel" not found in ${dir}, /usr/lib/cni, /opt/cni/bin: install the Debian package containernetworking-plugins`));
    t.like(t.throws(() => findPlugin('../bin/sh', pluginDirs(dir))), { code: 'ENET_CONFIG' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
