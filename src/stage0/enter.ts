/** enter (rkt's stage0.Enter): a command in a running pod's namespaces and app root, through stage1. */
import { PodlogError } from '../errors.js';
import type { Stage0 } from './session.js';
import { insecureFlags } from './config.js';
import { CrossingEntrypoint } from './stage1.js';
import { podDir } from './pod-dir.js';
import { RKT_STATE_NAMES } from '../../machines/pod.js';

/**
 * The app to enter: the one named, or the pod's only one (rkt lists them when there are several).
 *
 * @throws `PodlogError` ENOAPP when `wanted` is not one of `apps`, or none is named and there are several.
 */
export const chooseApp = (apps: string[], wanted?: string): string => {
  if (wanted !== undefined) {
    if (!apps.includes(wanted)) throw new PodlogError('ENOAPP', `app ${JSON.stringify(wanted)} is not in the pod (apps: ${apps.join(', ')})`);
    return wanted;
  }
  if (apps.length !== 1) throw new PodlogError('ENOAPP', `the pod has several apps (${apps.join(', ')}): choose one with --app`);
  return apps[0]!;
};

/**
 * Runs `cmd` (rkt's shell, bash or sh, when empty) in app `app` of a running pod, in its namespaces and
 * root, through stage1's enter entrypoint, with the terminal passed through.
 *
 * @param uuid - The pod's full UUID.
 * @param app - The app's name; may be left out when the pod has one app.
 * @returns The command's exit code.
 * @throws `PodlogError` EWRONG_STATE when the pod is not running, ENOAPP as {@link chooseApp}.
 */
export const enter = async (s: Stage0, uuid: string, app: string | undefined, cmd: string[]): Promise<number> => {
  const view = await s.engine.load(uuid);
  if (view.state !== 'running') throw new PodlogError('EWRONG_STATE', `cannot enter pod ${uuid}: it is ${RKT_STATE_NAMES[view.state]}`);
  const name = chooseApp(view.context.apps.map((a) => a.name), app);
  // Without a command, stage1 chooses rkt's shell (bash where the image has it, else sh) inside the app's root.
  const command = cmd.length ? ['--', ...cmd] : [];
  // A command entered is no more confined than the pod's apps (--insecure-options); kernel paths are the pod's mounts.
  const insecure = insecureFlags((view.context.insecure ?? []).filter((i) => i !== 'paths'));
  return (await new CrossingEntrypoint(podDir(s.dataDir, uuid), 'enter', ['--app', name, ...insecure, ...command], true).run()).code;
};
