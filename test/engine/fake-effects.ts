/**
 * A fake effect interpreter for the engine's unit tests only (the real one drives the native addon
 * and stage1). Its "world" is a directory of marker files, so that a crashed process's effects can be
 * seen by the reconciler in another process, as real effects would be.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PodlogError } from '../../src/errors.js';
import type { EffectInterpreter, EffectRequest, Outcome } from '../../src/engine/effects.js';

export interface FakeOptions {
  /** Effects that fail with EFAKE. */
  failing?: string[];
  /** Milliseconds each effect takes. */
  delayMs?: number;
}

export const fakeEffects = (world: string, options: FakeOptions = {}): EffectInterpreter & { done: string[] } => {
  mkdirSync(world, { recursive: true });
  const marker = (r: EffectRequest) => join(world, `${r.uuid}.${r.effect}${r.effect === 'renderImage' || r.effect === 'copyAppRoot' ? `.${String(r.intent.data.app)}` : ''}`);
  const outcomes = (r: EffectRequest): Outcome[] => {
    switch (r.effect) {
      case 'createPod':
        return [{ type: 'PodCreated', data: {} }];
      case 'renderImage': {
        const app = String(r.intent.data.app);
        return [{ type: 'ImageRendered', data: { app, imageId: `sha512-${app}`, treeStoreId: `deps-sha512-${app}` } }];
      }
      case 'prepareOverlay':
        return [{ type: 'OverlayPrepared', data: {} }];
      case 'copyAppRoot':
        return [{ type: 'AppRootCopied', data: { app: String(r.intent.data.app), method: 'copy' } }];
      case 'writeManifest':
        return [{ type: 'PodManifestWritten', data: {} }];
      case 'attachNetwork':
        return [{ type: 'NetworkAttached', data: { name: String(r.intent.data.name), result: {}, summary: { interfaces: [], ips: [], routes: [], dns: { nameservers: [], search: [], options: [] } } } }];
      case 'detachNetwork':
        return [{ type: 'NetworkDetached', data: { name: String(r.intent.data.name) } }];
      case 'startStage1':
        return [{ type: 'PodStarted', data: { pid: Number(readFileSync(marker(r), 'utf8')) } }];
      case 'stopPod':
        return [{ type: 'StopSignalled', data: { signal: r.intent.data.force ? 'SIGKILL' : 'SIGTERM' } }];
      case 'deletePod':
        return [{ type: 'PodDeleted', data: {} }];
      case 'registerMetadata':
        return [{ type: 'MetadataRegistered', data: { socket: '/run/podlog/metadata-svc.sock', url: 'http://172.16.28.1:18112' } }];
      case 'unregisterMetadata':
        return [{ type: 'MetadataUnregistered', data: { answer: 'unregistered' } }];
      case 'addApp': {
        const { app, image } = r.intent.data as { app: string; image: string };
        return [{ type: 'AppAdded', data: { app, image, treeStoreId: `deps-${image}` } }];
      }
      case 'startApp':
        return [{ type: 'AppStarted', data: { app: String(r.intent.data.app) } }];
      case 'stopApp':
        return [{ type: 'AppStopped', data: { app: String(r.intent.data.app) } }];
      case 'removeApp':
        return [{ type: 'AppRemoved', data: { app: String(r.intent.data.app) } }];
    }
  };
  const done: string[] = [];
  return {
    done,
    async run(r) {
      if (options.delayMs) await new Promise((ok) => setTimeout(ok, options.delayMs));
      if (options.failing?.includes(r.effect)) throw new PodlogError('EFAKE', `${r.effect} failed on purpose`);
      writeFileSync(marker(r), String(process.pid));
      done.push(r.effect);
      return outcomes(r);
    },
    async reconcile(r) {
      // Finish what happened in the world; compensate what did not.
      if (existsSync(marker(r))) return outcomes(r);
      return [{ type: 'EffectFailed', data: { effect: r.effect, code: 'EABANDONED', message: `${r.effect} never happened` } }];
    },
  };
};
