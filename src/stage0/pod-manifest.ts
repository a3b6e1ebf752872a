/**
 * The reified pod manifest stage0 writes for stage1 (rkt's generatePodManifest and
 * generateRuntimeApp, rkt-semantics §2.2 and §2.10): every app by image id, with its `app` section
 * resolved from the image and the CLI's overrides.
 */
import { posix } from 'node:path';
import { PodlogError } from '../errors.js';
import type { ImageApp, ImageManifest } from '../images/aci-manifest.js';
import { isAcName, isEnvName, parseKeyValue, type AppConfig, type PrepareConfig } from './config.js';

export interface Mount {
  volume: string;
  path: string;
  appVolume?: unknown;
}

export interface RuntimeApp {
  name: string;
  image: { id: string; name: string; labels?: ImageManifest['labels'] };
  app: ImageApp;
  mounts: Mount[];
}

export interface PodManifest {
  acKind: 'PodManifest';
  acVersion: string;
  apps: RuntimeApp[];
  volumes: unknown[];
  isolators: unknown[];
  annotations: Array<{ name: string; value: string }>;
  ports: unknown[];
  userAnnotations?: Record<string, string>;
  userLabels?: Record<string, string>;
}

/** appc's SanitizeACName: lower case, invalid characters to '-', no leading or trailing '-'. */
export const sanitizeAcName = (s: string): string => {
  const name = s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '');
  if (name === '') throw new PodlogError('EBADNAME', `cannot make an app name from ${JSON.stringify(s)}`);
  return name;
};

/** rkt's ImageNameToAppName: the image name's last path segment, sanitized. */
export const imageNameToAppName = (imageName: string): string => sanitizeAcName(imageName.split('/').pop() ?? imageName);

/** rkt's MergeMounts: per-app mounts first, then the pod's; the first per cleaned path wins. */
export const mergeMounts = (podMounts: Mount[], appMounts: Mount[]): Mount[] => {
  const seen = new Set<string>();
  return [...appMounts, ...podMounts].filter((m) => {
    const path = posix.normalize(m.path).replace(/(.)\/$/, '$1');
    if (seen.has(path)) return false;
    seen.add(path);
    return true;
  });
};

/**
 * The environment of one app, later sources over earlier ones: the caller's (--inherit-env, the
 * names stage1 accepts), the image's, --set-env-file, --set-env (checkPrepareConfig has put those
 * two in that order in explicitEnv), then the app's own --environment. This is the precedence rkt
 * documents (its --set-env help: "will be overridden by --environment"); rkt's code applies
 * --set-env after --environment, which makes a flag given for one app lose to one given for all.
 * stage1 then adds PATH when none is set, HOME, AC_APP_NAME and container=podlog.
 */
const appEnvironment = (image: ImageApp | undefined, app: AppConfig, cfg: PrepareConfig): Array<{ name: string; value: string }> => {
  const inherited = cfg.inheritEnv ? Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && isEnvName(e[0])) : [];
  const env = new Map<string, string>([
    ...inherited,
    ...(image?.environment ?? []).map((e) => [e.name, e.value] as const),
    ...cfg.explicitEnv.map((line) => parseKeyValue(line, '--set-env')),
    ...Object.entries(app.environment),
  ]);
  return [...env].map(([name, value]) => ({ name, value }));
};

export interface ResolvedApp {
  config: AppConfig;
  name: string;
  imageId: string;
  manifest: ImageManifest;
}

/** Names each app (--name, else from its image name) and refuses duplicates and apps with nothing to run. */
export const nameApps = (apps: Array<{ config: AppConfig; imageId: string; manifest: ImageManifest }>): ResolvedApp[] => {
  const names = new Set<string>();
  return apps.map(({ config, imageId, manifest }) => {
    const name = config.name ?? imageNameToAppName(manifest.name);
    if (!isAcName(name)) throw new PodlogError('EBADNAME', `invalid app name format: ${JSON.stringify(name)}`);
    if (names.has(name)) throw new PodlogError('EBADNAME', `multiple apps with name ${name}`);
    names.add(name);
    if (!manifest.app && config.exec === undefined) {
      throw new PodlogError('EBADMANIFEST', `image ${manifest.name} has no app section and --exec argument is not provided`);
    }
    // rkt's words; refused here, before the pod exists, where --exec can still give one.
    if (config.exec === undefined && (manifest.app?.exec ?? []).length === 0) {
      throw new PodlogError('EBADMANIFEST', `image ${JSON.stringify(manifest.name)} has an empty "exec" (try --exec=BINARY)`);
    }
    return { config, name, imageId, manifest };
  });
};

/** The pod manifest, from a config checkPrepareConfig returned: pure, it reads no file and cannot fail on the user's input. */
export const generatePodManifest = (apps: ResolvedApp[], cfg: PrepareConfig): PodManifest => {
  if (cfg.envFromFile.length > 0 || cfg.podManifest !== undefined) {
    throw new PodlogError('EINTERNAL', 'generatePodManifest takes a checked config (checkPrepareConfig reads the --set-env-file and --pod-manifest files)');
  }
  // A pod manifest given is the pod's, as rkt writes it, with each app's image by the id it resolved to.
  const given = cfg.podManifestDocument;
  if (given !== undefined) return { ...given, apps: given.apps.map((a, i) => ({ ...a, image: { ...a.image, id: apps[i]!.imageId } })) };
  return {
    acKind: 'PodManifest',
    acVersion: '0.8.11',
    apps: apps.map(({ config, name, imageId, manifest }) => {
      // Without an app section in the image, the app runs as the caller, as rkt's generateRuntimeApp does.
      const image: ImageApp = manifest.app ?? { user: String(process.getuid?.() ?? 0), group: String(process.getgid?.() ?? 0) };
      const exec = config.exec !== undefined ? [config.exec] : [...(image.exec ?? [])];
      return {
        name,
        image: { id: imageId, name: manifest.name, ...(manifest.labels ? { labels: manifest.labels } : {}) },
        app: {
          ...image,
          exec: [...exec, ...config.args],
          ...(config.user !== undefined ? { user: config.user } : {}),
          ...(config.group !== undefined ? { group: config.group } : {}),
          ...(config.workingDir !== undefined ? { workingDirectory: config.workingDir } : {}),
          environment: appEnvironment(manifest.app, config, cfg),
        },
        mounts: [],
      };
    }),
    volumes: [],
    isolators: [],
    annotations: [{ name: 'coreos.com/rkt/stage1/mutable', value: String(cfg.mutable) }],
    ports: [],
    ...(Object.keys(cfg.userAnnotations).length ? { userAnnotations: cfg.userAnnotations } : {}),
    ...(Object.keys(cfg.userLabels).length ? { userLabels: cfg.userLabels } : {}),
  };
};
