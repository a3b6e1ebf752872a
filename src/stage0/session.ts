/** Everything stage0 works with on one data dir: the log, the engine, the effects, the images. */
import { bindHostId } from '../config.js';
import { PodEngine } from '../engine/engine.js';
import type { EffectInterpreter } from '../engine/effects.js';
import type { CommandContext } from '../events/metadata.js';
import type { ImageStore } from '../images/store.js';
import { openStore, type StoreAccess } from '../store/open.js';
import type { EventStore } from '../store/port.js';
import type { Stage0Effects } from './effects.js';

/** A data dir opened for stage0's verbs: the first argument of every verb of this module. */
export interface Stage0 {
  /** The data dir: pods, images and (by default) the SQLite log are under it. */
  dataDir: string;
  /** The host this session acts for: on a shared log, only its own pods' effects are run here. */
  hostId: string;
  /** The event log, e.g. for `watch` and `readBatches`. */
  store: EventStore;
  /** Loads pods by folding their streams, and records their events (the machine decides what is allowed). */
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
  /** Closes the log; the session is not to be used after. */
  close(): Promise<void>;
}

/** How {@link openStage0} opens a data dir. */
export interface Stage0Options {
  /** Stage0's debug lines on stderr (see `initDebug`). */
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

/**
 * Opens a data dir's log (creating it for `write`, migrating it if it is older) and binds the data dir
 * to `ctx.hostId`; images and the effect interpreter are loaded when first used.
 *
 * @param ctx - Who acts: the command line and correlation id every event records, and this host's id.
 * @throws `PodlogError` EUSAGE for a store URL that is not one; EHOST_ID when the data dir belongs to
 * another host id; the store's codes (ESTORE_UNAVAILABLE, a log from a newer podlog) when it cannot be opened.
 */
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
