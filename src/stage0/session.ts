/** Everything stage0 works with on one data dir: the log, the engine, the effects, the images. */
import { bindHostId } from '../config.js';
import { PodEngine } from '../engine/engine.js';
import type { EffectInterpreter } from '../engine/effects.js';
import type { CommandContext } from '../events/metadata.js';
import type { ImageStore } from '../images/store.js';
import { openStore, type StoreAccess } from '../store/open.js';
import type { EventStore } from '../store/port.js';
import type { Stage0Effects } from './effects.js';

export interface Stage0 {
  dataDir: string;
  /** The host this session acts for: on a shared log, only its own pods' effects are run here. */
  hostId: string;
  store: EventStore;
  engine: PodEngine;
  /**
   * Every effect goes through this. The interpreter's code (stage1, networks, images) is loaded at
   * the first effect: most `list` and `status` commands run none, and start-up is part of their cost.
   */
  effects: EffectInterpreter;
  /** The interpreter itself, loaded if it was not: `run` takes from it the stage1 process it started. */
  interpreter(): Promise<Stage0Effects>;
  /** The image store, loaded at first use. */
  images(): Promise<ImageStore>;
  close(): Promise<void>;
}

export interface Stage0Options {
  debug?: boolean;
  /** `read` for verbs that report (list, status): a data dir without a log is empty and nothing is created. */
  access?: Exclude<StoreAccess, 'inspect'>;
  /** The log's URL (default: PODLOG_STORE, else the data dir's SQLite file). */
  url?: string;
}

/** `load`, run once, at the first call. */
const once = <T>(load: () => Promise<T>): (() => Promise<T>) => {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
};

export const openStage0 = async (dataDir: string, ctx: CommandContext, { debug = false, access = 'write', url }: Stage0Options = {}): Promise<Stage0> => {
  const store = await openStore(dataDir, { access, ...(url === undefined ? {} : { url }) });
  if (access === 'write') bindHostId(dataDir, ctx.hostId);
  const images = once(async () => (await import('../images/store.js')).openImageStore(dataDir, store, ctx));
  const interpreter = once(async () => {
    const [{ Stage0Effects }, imageStore] = await Promise.all([import('./effects.js'), images()]);
    return new Stage0Effects({ dataDir, images: imageStore, debug, treeStore: imageStore.layout.trees });
  });
  const effects: EffectInterpreter = {
    run: async (request) => (await interpreter()).run(request),
    reconcile: async (request) => (await interpreter()).reconcile(request),
  };
  return { dataDir, hostId: ctx.hostId, store, engine: new PodEngine(store, effects, ctx), effects, interpreter, images, close: () => store.close() };
};
