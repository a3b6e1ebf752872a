/** The metadata every event carries: who recorded it (and whether that process lives), and no secrets. */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { recorderAlive } from '../../src/engine/liveness.js';
import { commandContext, newMetadata } from '../../src/events/metadata.js';
import type { EventMetadata } from '../../src/store/port.js';
import { repoRoot } from '../helpers/fixtures.js';

const RECORD = `
  import { commandContext, newMetadata } from './src/events/metadata.ts';
  process.stdout.write(JSON.stringify(newMetadata(commandContext(['run', 'x']))) + '\\n');
`;

const firstLine = async (child: ChildProcess): Promise<EventMetadata> => {
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return JSON.parse(line.toString()) as EventMetadata;
};

/** A child process that records an event's metadata, prints it, and lives until its stdin closes. */
const recorder = async (): Promise<{ meta: EventMetadata; end: () => Promise<void> }> => {
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', `${RECORD}
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'] });
  const meta = await firstLine(child);
  return {
    meta,
    end: async () => {
      child.stdin!.end();
      await once(child, 'exit');
    },
  };
};

test('a recorder is alive while it runs and dead once it has exited', async (t) => {
  const { meta, end } = await recorder();
  t.not(meta.pid, process.pid);
  t.is(meta.bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  t.true(Number.isInteger(meta.startTicks) && meta.startTicks! > 0);
  t.true(recorderAlive(meta));
  await end();
  t.false(recorderAlive(meta));
});

test('a live pid with another start tick or another boot id is not the recorder; another host is not ours to judge', async (t) => {
  const { meta, end } = await recorder();
  try {
    t.true(recorderAlive(meta));
    t.false(recorderAlive({ ...meta, startTicks: meta.startTicks! + 1 }), 'the pid was reused by a later process');
    t.false(recorderAlive({ ...meta, bootId: '00000000-0000-0000-0000-000000000000' }), 'recorded in an earlier boot');
    t.true(recorderAlive({ ...meta, host: `not-${hostname()}`, bootId: 'other', startTicks: 1 }));
  } finally {
    await end();
  }
});

test('a recorder that has exited but is not reaped yet (a zombie) is dead', async (t) => {
  // The recorder runs in the background of a shell that then becomes `sleep`, which never reaps it.
  const parent = spawn('sh', ['-c', `"$1" --import=tsx --input-type=module -e "$2" & exec sleep 60`, 'sh', process.execPath, RECORD], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const meta = await firstLine(parent);
    let state: string | undefined;
    for (let i = 0; i < 200 && state !== 'Z'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      state = readFileSync(`/proc/${meta.pid}/stat`, 'utf8').split(') ')[1]?.[0];
    }
    t.is(state, 'Z', 'the recorder is a zombie: /proc still has it');
    t.false(recorderAlive(meta));
    const { bootId: _b, startTicks: _s, ...old } = meta;
    t.false(recorderAlive(old));
  } finally {
    parent.kill();
    await once(parent, 'exit');
  }
});

test('an event recorded before boot ids were stored is judged by its pid alone', async (t) => {
  const { meta, end } = await recorder();
  const { bootId: _b, startTicks: _s, ...old } = meta;
  t.true(recorderAlive(old));
  await end();
  t.false(recorderAlive(old));
});

test('this process is its own live recorder', (t) => {
  t.true(recorderAlive(newMetadata(commandContext(['test']))));
});

test('values of --set-env and --environment are redacted in both forms, their names kept', (t) => {
  const argv = [
    '--dir', '/d', 'run', '--set-env=DB_PASSWORD=hunter2', '--set-env', 'TOKEN=abc=def', 'img.aci',
    '--environment=K=v1', '--environment', 'L=v2', '--set-env-file=/run/env', '--set-env=NOEQUALS', '--', 'arg', '--set-env',
  ];
  const { command } = commandContext(argv);
  t.deepEqual(command, [
    '--dir', '/d', 'run', '--set-env=DB_PASSWORD=<redacted>', '--set-env=TOKEN=<redacted>', 'img.aci',
    '--environment=K=<redacted>', '--environment=L=<redacted>', '--set-env-file=/run/env', '--set-env=<redacted>', '--', 'arg', '--set-env',
  ]);
  t.deepEqual(newMetadata(commandContext(argv)).command, command);
  t.notRegex(JSON.stringify(command), /hunter2|abc|def|v1|v2|NOEQUALS/);
});

test('a --store password is redacted, in the URL and in a ?password= parameter; the rest of the URL kept', (t) => {
  const { command } = commandContext([
    '--store', 'postgres://podlog:S3cret@db.example:5432/podlog?schema=fleet', 'run',
    '--store=postgresql:///podlog?host=/run/postgresql&password=hunter2&user=podlog', 'img.aci',
    '--store', 'sqlite:/var/lib/podlog/events.db', '--store=postgres://u:p^s s@w{o}rd@db/podlog',
  ]);
  t.deepEqual(command, [
    '--store=postgres://podlog:<redacted>@db.example:5432/podlog?schema=fleet', 'run',
    '--store=postgresql:///podlog?host=/run/postgresql&password=<redacted>&user=podlog', 'img.aci',
    '--store=sqlite:/var/lib/podlog/events.db', '--store=postgres://u:<redacted>@db/podlog',
  ]);
  t.notRegex(JSON.stringify(command), /S3cret|hunter2|p\^s/);
});
