/** The image store's public API: what stage0 and the CLI use. */
export { VALID_OS_ARCH, checkOsArch, type ImageManifest, type ImageApp, type ImageDependency } from './aci-manifest.js';
export type { ImageRecord, TreeRecord, ImageIndex } from './index-projection.js';
export { storeLayout, type StoreLayout } from './layout.js';
export { withPrepareLock } from './locks.js';
export { openImageStore, type ImageStore, type ImportOptions, type RenderResult } from './store.js';
