/**
 * rkt's `--net` (common.NetList): each flag's value is a comma-separated list of `NAME` or
 * `NAME:CNI_ARGS`, every flag adding to one set. No flag means `default`. `host` shares the
 * caller's network namespace; `none` is a namespace with loopback only; `all` joins every
 * configured network; anything else names networks.
 *
 * Where rkt silently let `host` or `none` win over the other names given with them, podlog refuses
 * the mix: a pod would otherwise run without a network its user asked for.
 */
import { PodlogError } from '../errors.js';

export type NetSelection =
  | { mode: 'host' }
  | { mode: 'none' }
  /** `nets`: the networks named, each with its CNI_ARGS (`''` for none), in the order given. */
  | { mode: 'contained'; all: boolean; nets: Map<string, string> };

const usage = (message: string): PodlogError => new PodlogError('EUSAGE', `--net: ${message}`);

/** CNI_ARGS as the spec writes them: `K=V` pairs joined by ';', keys of letters, digits and '_'. */
const CNI_ARG = /^[A-Za-z0-9_]+=[^;]*$/;

const checkArgs = (name: string, args: string): void => {
  for (const pair of args.split(';')) {
    if (!CNI_ARG.test(pair)) throw usage(`network "${name}": CNI arguments must be KEY=VALUE pairs joined by ';' (got ${JSON.stringify(args)})`);
  }
};

/** Adds one flag's value to `into` (rkt's NetList.Set). */
const addValue = (into: Map<string, string>, value: string): void => {
  for (const item of value.split(',')) {
    const [name, ...rest] = item.split(':');
    if (name === undefined || name === '') throw usage('a network name must not be empty');
    if (into.has(name)) throw usage(`network "${name}" is named twice`);
    if (rest.length > 1) throw usage(`network "${name}" has more than one ':' (write its arguments as NAME:K=V;K2=V2)`);
    const args = rest[0];
    if (args !== undefined) {
      if (name === 'all' || name === 'host' || name === 'none') throw usage(`"${name}" takes no arguments`);
      checkArgs(name, args);
    }
    into.set(name, args ?? '');
  }
};

/** The networks the `--net` flags select (`values`: each flag's value, in order). */
export const parseNetFlags = (values: readonly string[]): NetSelection => {
  const nets = new Map<string, string>();
  for (const value of values) addValue(nets, value);
  if (nets.size === 0) return { mode: 'contained', all: false, nets: new Map([['default', '']]) };
  for (const alone of ['host', 'none'] as const) {
    if (!nets.has(alone)) continue;
    if (nets.size > 1) throw usage(`"${alone}" cannot be combined with other networks (got ${[...nets.keys()].join(',')})`);
    return { mode: alone };
  }
  const all = nets.delete('all');
  return { mode: 'contained', all, nets };
};
