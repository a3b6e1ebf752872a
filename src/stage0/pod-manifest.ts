/**
 * The reified pod manifest stage0 writes for stage1 (rkt's generatePodManifest and
 * generateRuntimeApp, rkt-semantics §2.2 and §2.10): every app by image id, with its `app` section
 * resolved from the image and the CLI's overrides.
 */
import { isDeepStrictEqual } from 'node:util';
import { PodlogError } from '../errors.js';
import type { ImageApp, ImageManifest } from '../images/aci-manifest.js';
import { checkMountPath, cleanPath, isAcName, isEnvName, parseKeyValue, parseMountFlag, parsePortFlag, parseVolumeFlag, type AppConfig, type ExposedPort, type PrepareConfig } from './config.js';
import { debug } from './debug.js';
import { appIsolators } from './isolators.js';

/** appc's Volume: a host path, or an empty directory the pod's apps share (in the pod directory). */
export interface Volume {
  /** The name mounts refer to it by (an ACName). */
  name: string;
  /** `host`: a file or directory of the host; `empty`: a directory made for the pod. */
  kind: 'host' | 'empty';
  /** host: an absolute path, its real one (no symlink on the way). */
  source?: string;
  /** Mounted read-only in every app. */
  readOnly?: boolean;
  /** host: bind the mounts below the source too (MS_REC); podlog, like rkt fly, defaults to false. */
  recursive?: boolean;
  /** empty: an octal mode, and the owner, of the directory stage1 creates. */
  mode?: string;
  /** empty: the directory's owner. */
  uid?: number;
  /** empty: the directory's group. */
  gid?: number;
}

/** appc's Mount: where a volume appears in an app's root. */
export interface Mount {
  /** The volume's name. */
  volume: string;
  /** An absolute path in the app's root. */
  path: string;
}

/** appc's RuntimeApp: one app of a pod manifest. */
export interface RuntimeApp {
  /** The app's name in the pod. */
  name: string;
  /** The image by its id, with the name and labels it was resolved by. */
  image: {
    /** The image's id (`sha512-…`). */
    id: string;
    /** Its name (`example.com/app`). */
    name: string;
    /** Its labels (version, os, arch). */
    labels?: ImageManifest['labels'];
  };
  /** What it runs: the image's app section with the overrides (exec, user, environment, isolators …) applied. */
  app: ImageApp;
  /** appc's readOnlyRootFS (rkt's --readonly-rootfs): the app's root is mounted read-only, its volumes as they are. */
  readOnlyRootFS?: boolean;
  /** Its mounts, its own (--mount after its image) before the pod's ({@link mergeMounts}). */
  mounts: Mount[];
}

/** appc's PodManifest, reified (every app by image id): what stage1 runs, in the pod directory's `pod` file. */
export interface PodManifest {
  /** appc's kind of document. */
  acKind: 'PodManifest';
  /** The appc schema version it follows. */
  acVersion: string;
  /** The pod's apps, in the order they were given. */
  apps: RuntimeApp[];
  /** Volumes the apps' mounts name. */
  volumes: Volume[];
  /** Pod-wide isolators: podlog writes none (each app has its own). */
  isolators: unknown[];
  /** appc annotations of the pod (stage1's, such as whether it is mutable). */
  annotations: Array<{
    /** An AC identifier such as `coreos.com/rkt/stage1/mutable`. */
    name: string;
    /** Its value (`true`). */
    value: string;
  }>;
  /** App ports published on the host (--port). */
  ports: ExposedPort[];
  /** --user-annotation: free-form, for people and tools. */
  userAnnotations?: Record<string, string>;
  /** --user-label: what pods are filtered by. */
  userLabels?: Record<string, string>;
}

/**
 * The pod manifest as the log keeps it (PodManifestWritten): every environment value replaced, its name
 * kept, since events outlive the pod and are read by every host of a shared log. The file keeps them (0600).
 */
export const loggedManifest = (m: PodManifest): PodManifest => ({
  ...m,
  apps: m.apps.map((a) =>
    a.app?.environment === undefined ? a : { ...a, app: { ...a.app, environment: a.app.environment.map(({ name }) => ({ name, value: '<redacted>' })) } },
  ),
});

/** --port flags as the pod manifest's ports, each naming a port an app's image declares (rkt's ForwardedPorts check). */
const exposedPorts = (flags: string[], images: Array<ImageApp | undefined>): ExposedPort[] =>
  flags.map((flag) => {
    const port = parsePortFlag(flag);
    const declared = images.flatMap((app) => (app?.ports ?? []).map((p) => p.name));
    if (!declared.includes(port.name)) {
      throw new PodlogError('EUSAGE', `--port ${flag}: unknown port ${JSON.stringify(port.name)}: no app declares it (${declared.length > 0 ? `the apps' ports: ${declared.join(', ')}` : 'the apps declare no port'})`);
    }
    return port;
  });

/** An app section with its isolators checked and in stage1's form, the flags' in place of the image's. */
const withIsolators = (name: string, app: ImageApp, config?: AppConfig): ImageApp => {
  const isolators = appIsolators(name, app.isolators, config);
  return isolators !== undefined ? { ...app, isolators } : app;
};

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
    const path = cleanPath(m.path);
    if (seen.has(path)) return false;
    seen.add(path);
    return true;
  });
};

/**
 * rkt stage1's GenerateMounts, done once at prepare so that the pod manifest names every mount:
 * the image's mount points rank below the app's mounts (MergeMounts again, the image's as the
 * lower level); a mount point left is satisfied by the volume of its name, else by an implicit
 * empty volume `<app>-<mount point>` (root's, 0755, read-only if the mount point is), which lives
 * and goes with the pod. stage1 then mounts exactly what the manifest says.
 */
const withImageMounts = (pm: PodManifest, images: Array<ImageApp | undefined>): PodManifest => {
  const volumes = [...pm.volumes];
  const apps = pm.apps.map((ra, i) => {
    const points = (ra.app ?? images[i])?.mountPoints ?? [];
    const image = points.map((mp) => ({
      volume: mp.name,
      path: checkMountPath(mp.path, (what) => new PodlogError('EBADMANIFEST', `image ${ra.image.name}: mount point ${mp.name}: ${what}`)),
    }));
    const mounts = mergeMounts(image, ra.mounts ?? []).map((m) => {
      if (volumes.some((v) => v.name === m.volume)) return m;
      const mp = points.find((p) => p.name === m.volume)!;
      const name = `${ra.name}-${mp.name}`;
      debug(`no volume specified for mount point ${JSON.stringify(mp.name)} of app ${ra.name}, implicitly creating an "empty" volume ${name}; it is removed with the pod`);
      volumes.push({ name, kind: 'empty', mode: '0755', uid: 0, gid: 0, ...(mp.readOnly === true ? { readOnly: true } : {}) });
      return { volume: name, path: m.path };
    });
    return { ...ra, mounts };
  });
  return { ...pm, apps, volumes };
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

/** An app with its image resolved and its name chosen: what {@link generatePodManifest} writes. */
export interface ResolvedApp {
  /** The app as asked for. */
  config: AppConfig;
  /** Its name in the pod. */
  name: string;
  /** The id of the image it runs. */
  imageId: string;
  /** That image's manifest. */
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

/**
 * The pod manifest, from a config checkPrepareConfig returned: pure, it reads no file and cannot fail on the user's input.
 *
 * @throws `PodlogError` EINTERNAL for a config that was not checked; EUSAGE or EBADMANIFEST for what
 * only the images can refuse (a --port no app declares, an isolator an image gets wrong).
 */
export const generatePodManifest = (apps: ResolvedApp[], cfg: PrepareConfig): PodManifest => {
  if (cfg.envFromFile.length > 0 || cfg.podManifest !== undefined) {
    throw new PodlogError('EINTERNAL', 'generatePodManifest takes a checked config (checkPrepareConfig reads the --set-env-file and --pod-manifest files)');
  }
  // A pod manifest given is the pod's, as rkt writes it, with each app's image by the id it resolved to.
  const given = cfg.podManifestDocument;
  const images = apps.map((a) => a.manifest.app);
  if (given !== undefined) {
    // Isolators are checked, and written in stage1's form: an app without an app section gets its
    // image's (as rkt's generateRuntimeApp starts from) only when its image's are not in that form.
    const givenApps = given.apps.map((a, i) => {
      const image = { ...a.image, id: apps[i]!.imageId };
      if (a.app !== undefined) return { ...a, image, app: withIsolators(a.name, a.app) };
      const own = withIsolators(a.name, images[i]!);
      return isDeepStrictEqual(own.isolators, images[i]!.isolators) ? { ...a, image } : { ...a, image, app: own };
    });
    return withImageMounts({ ...given, volumes: given.volumes ?? [], ports: given.ports ?? [], apps: givenApps }, images);
  }
  const podMounts = cfg.mounts.map(parseMountFlag);
  return withImageMounts({
    acKind: 'PodManifest',
    acVersion: '0.8.11',
    apps: apps.map(({ config, name, imageId, manifest }) => {
      // Without an app section in the image, the app runs as the caller, as rkt's generateRuntimeApp does.
      const image: ImageApp = manifest.app ?? { user: String(process.getuid?.() ?? 0), group: String(process.getgid?.() ?? 0) };
      const exec = config.exec !== undefined ? [config.exec] : [...(image.exec ?? [])];
      return {
        name,
        image: { id: imageId, name: manifest.name, ...(manifest.labels ? { labels: manifest.labels } : {}) },
        app: withIsolators(name, {
          ...image,
          exec: [...exec, ...config.args],
          ...(config.user !== undefined ? { user: config.user } : {}),
          ...(config.group !== undefined ? { group: config.group } : {}),
          ...(config.workingDir !== undefined ? { workingDirectory: config.workingDir } : {}),
          environment: appEnvironment(manifest.app, config, cfg),
        }, config),
        ...(config.readonlyRootfs === true ? { readOnlyRootFS: true } : {}),
        mounts: mergeMounts(podMounts, (config.mounts ?? []).map(parseMountFlag)),
      };
    }),
    volumes: cfg.volumes.map(parseVolumeFlag),
    isolators: [],
    annotations: [{ name: 'coreos.com/rkt/stage1/mutable', value: String(cfg.mutable) }],
    ports: exposedPorts(cfg.ports, images),
    ...(Object.keys(cfg.userAnnotations).length ? { userAnnotations: cfg.userAnnotations } : {}),
    ...(Object.keys(cfg.userLabels).length ? { userLabels: cfg.userLabels } : {}),
  }, images);
};
