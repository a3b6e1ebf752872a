/** Everything stage0 works with on one data dir: the log, the engine, the effects, the images. */
import { PodEngine } from '../engine/engine.js';
import type { CommandContext } from '../events/metadata.js';
import { openImageStore, type ImageStore } from '../images/store.js';
import { openStore, type StoreAccess } from '../store/open.js';
import type { EventStore } from '../store/port.js';
import { Stage0Effects } from './effects.js';

export interface Stage0 {
  dataDir: string;
  store: EventStore;
  engine: PodEngine;
  effects: Stage0Effects;
  images: ImageStore;
  close(): Promise<void>;
}

export interface Stage0Options {
  debug?: boolean;
  /** `read` for verbs that report (list, status): a data dir without a log is empty and nothing is created. */
  access?: Exclude<StoreAccess, 'inspect'>;
}

export const openStage0 = async (dataDir: string, ctx: CommandContext, { debug = false, access = 'write' }: Stage0Options = {}): Promise<Stage0> => {
  const store = await openStore(dataDir, { access });
  const images = openImageStore(dataDir, store, ctx);
  const effects = new Stage0Effects({ dataDir, images, debug, treeStore: images.layout.trees });
  return { dataDir, store, engine: new PodEngine(store, effects, ctx), effects, images, close: () => store.close() };
};
