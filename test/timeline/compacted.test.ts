/**
 * A compacted pod's host is the one its tombstone names (src/cli/event-selection.ts factsOf), in the
 * timeline as in events: after `rm` and `log compact` its PodCompacted is all the log keeps of it, and the
 * trace puts its track under its host, not under "host (not recorded)".
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aciPath } from '../helpers/fixtures.js';
import { podlogBin } from '../stage0/podlog.js';
import type { Trace } from './trace-format.js';

const HOST = 'compacting-host';
const dir = mkdtempSync(join(tmpdir(), 'podlog-timeline-compacted-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const ok = (args: string[]): string => {
  const r = spawnSync(podlogBin, ['--dir', dir, '--host-id', HOST, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`podlog ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
};

test("a compacted pod's track is under the host that prepared and compacted it", (t) => {
  const pod = ok(['prepare', '--insecure-options=image', aciPath('busybox-gzip')]).trim().split('\n').at(-1)!;
  ok(['rm', pod]);
  t.true(ok(['log', 'compact']).includes(`compacted pod ${pod}`));
  const trace = JSON.parse(ok(['timeline', '--format', 'trace'])) as Trace;
  const thread = trace.traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name' && String(e.args!.name).startsWith(pod.slice(0, 8)));
  t.truthy(thread, 'the compacted pod has a track');
  const process = trace.traceEvents.find((e) => e.ph === 'M' && e.name === 'process_name' && e.pid === thread!.pid);
  t.is(process?.args?.name, `host ${HOST}`);
  t.regex(ok(['timeline', '--format', 'svg']), new RegExp(`pod ${pod}\nhost ${HOST}\n`));
});
