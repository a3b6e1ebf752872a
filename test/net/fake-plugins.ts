/**
 * CNI plugins written as tiny shell scripts, for tests of how podlog runs plugins: each call is
 * recorded (the exact environment the plugin was exec'd with, and its stdin), and each plugin answers
 * as told. They touch no network, so these tests need no namespace.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Behaviour {
  /** What ADD prints on stdout (a result, or anything). */
  add?: string;
  /** What every command prints and exits with instead (an error). */
  fail?: { stdout: string; status: number; stderr?: string; only?: 'ADD' };
  /** Seconds to sleep before answering. */
  sleep?: number;
}

export interface Call {
  command: string;
  plugin: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

export interface FakePlugins {
  dir: string;
  /** Writes plugin `name` into the plugin dir. */
  plugin: (name: string, behaviour?: Behaviour) => void;
  /** Every call so far, in order. */
  calls: () => Call[];
  remove: () => void;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

export const fakePlugins = (): FakePlugins => {
  const root = mkdtempSync(join(tmpdir(), 'podlog-cni-fake-'));
  const dir = join(root, 'bin');
  const log = join(root, 'calls');
  mkdirSync(dir);
  mkdirSync(log);
  return {
    dir,
    plugin: (name, b = {}) => {
      const failing = b.fail === undefined ? '' : `${b.fail.only === undefined ? '' : `[ "$CNI_COMMAND" = ${b.fail.only} ] && `}{ printf '%s' ${quote(b.fail.stdout)}; printf '%s' ${quote(b.fail.stderr ?? '')} >&2; exit ${b.fail.status}; }`;
      writeFileSync(
        join(dir, name),
        [
          '#!/bin/sh',
          // /proc/$$/environ is the environment as exec'd, before the shell adds to it.
          `n=$(ls ${quote(log)} | wc -l); f=${quote(log)}/$(printf %04d "$n")-${name}`,
          `tr '\\0' '\\n' < /proc/$$/environ > "$f.env"; cat > "$f.stdin"`,
          b.sleep === undefined ? '' : `exec sleep ${b.sleep}`,
          failing,
          `[ "$CNI_COMMAND" = ADD ] && printf '%s' ${quote(b.add ?? '{}')}`,
          'exit 0',
          '',
        ].join('\n'),
      );
      chmodSync(join(dir, name), 0o755);
    },
    calls: () =>
      readdirSync(log)
        .filter((f) => f.endsWith('.env'))
        .sort()
        .map((f) => {
          const base = f.slice(0, -'.env'.length);
          const env = Object.fromEntries(
            readFileSync(join(log, f), 'utf8')
              .split('\n')
              .filter((l) => l !== '')
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          );
          return { command: env.CNI_COMMAND ?? '', plugin: base.slice(5), env, stdin: JSON.parse(readFileSync(join(log, `${base}.stdin`), 'utf8')) };
        }),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
};
