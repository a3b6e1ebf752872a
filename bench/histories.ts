/** Pod histories as the engine writes them, for the benchmarks that need a log of many pods. */
import { stage1Image } from '../src/stage0/stage1.js';
import type { PodEventData, PodEventType } from '../src/events/catalogue.js';

export type Step = { type: PodEventType; data: PodEventData[PodEventType] };

const IMAGE_NAME = 'podlog.test/busybox';
const IMAGE = 'sha512-a6b3d9574c582bd3522e6398a40675ffba4377c58764268844f9db7a38db3e17';

/** What `podlog run` records for a pod that ends in `state`. */
export const history = (uuid: string, state: 'running' | 'exited' | 'deleted' | 'prepared' | 'aborted', code: number): Step[] => {
  const prepare: Step[] = [
    {
      type: 'PrepareRequested',
      data: {
        uuid,
        apps: [{ name: 'busybox', image: IMAGE, imageName: IMAGE_NAME, exec: ['/bin/sh', '-c', `exit ${code}`] }],
        mutable: false,
        overlay: true,
        stage1: stage1Image(),
      },
    },
    { type: 'PodCreated', data: {} },
    { type: 'ImageRenderRequested', data: { app: 'busybox', image: IMAGE } },
  ];
  if (state === 'aborted') return [...prepare, { type: 'PrepareAborted', data: { reason: 'ENOENT: the tree vanished' } }];
  const prepared: Step[] = [
    ...prepare,
    { type: 'ImageRendered', data: { app: 'busybox', imageId: IMAGE, treeStoreId: `deps-${IMAGE}` } },
    { type: 'OverlayPrepareRequested', data: {} },
    { type: 'OverlayPrepared', data: {} },
    { type: 'PodManifestWriteRequested', data: {} },
    { type: 'PodManifestWritten', data: {} },
    { type: 'PodPrepared', data: {} },
  ];
  if (state === 'prepared') return prepared;
  const running: Step[] = [
    ...prepared,
    { type: 'Stage1StartRequested', data: { net: 'none', dns: 'default', hostname: `podlog-${uuid}` } },
    { type: 'PodStarted', data: { pid: 100_000 + Math.floor(Math.random() * 100_000) } },
  ];
  if (state === 'running') return running;
  const exited: Step[] = [...running, { type: 'AppExited', data: { app: 'busybox', code } }, { type: 'PodExited', data: { code } }];
  if (state === 'exited') return exited;
  return [...exited, { type: 'PodMarkedGarbage', data: { reason: 'gc' } }, { type: 'GcRequested', data: {} }, { type: 'PodDeleted', data: {} }];
};
