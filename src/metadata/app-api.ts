/**
 * The appc metadata API apps call (`$AC_METADATA_URL/acMetadata/v1/...`, the ACE spec's "App
 * Container Metadata Service"): the pod's manifest, UUID and annotations, each app's image manifest,
 * image id and annotations, and the pod's HMAC identity. The pod a request is about is the pod whose
 * address it comes from: TCP's handshake makes that address unforgeable from another pod's
 * interface, and no token has to be handed to the apps (or kept out of the log).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from './body.js';
import { isPodUuid, type Registry } from './registry.js';

const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=us-ascii';
/** A form bigger than this is no signing request. */
const MAX_FORM = 1 << 20;

type Pod = NonNullable<ReturnType<Registry['from']>>;
interface Reply {
  status: number;
  type?: string;
  body: string;
  allow?: string;
}

const json = (value: unknown): Reply => ({ status: 200, type: JSON_TYPE, body: JSON.stringify(value) });
const text = (value: string): Reply => ({ status: 200, type: TEXT_TYPE, body: value });
const error = (status: number, message: string): Reply => ({ status, type: TEXT_TYPE, body: `${message}\n` });

type Annotation = { name: string; value: string };
const annotations = (v: unknown): Annotation[] =>
  Array.isArray(v) ? v.filter((a): a is Annotation => typeof a?.name === 'string' && typeof a.value === 'string') : [];

/** The ACE spec: the image's annotations, with the pod manifest's app annotations over them. */
const appAnnotations = (pod: Pod, app: string): Annotation[] => {
  const merged = new Map<string, string>();
  for (const a of annotations(pod.apps[app]?.imageManifest.annotations)) merged.set(a.name, a.value);
  for (const a of annotations(pod.manifest.apps.find((x) => x.name === app)?.annotations)) merged.set(a.name, a.value);
  return [...merged].map(([name, value]) => ({ name, value }));
};

const annotationValue = (list: Annotation[], name: string): Reply => {
  const found = list.find((a) => a.name === name);
  return found === undefined ? error(404, `no annotation ${JSON.stringify(name)}`) : text(found.value);
};

/** A GET of the pod's or an app's metadata; undefined for a path that is none. */
const metadata = (pod: Pod, path: string[]): Reply | undefined => {
  const [scope, ...rest] = path;
  if (scope === 'pod') {
    const [what, name, ...more] = rest;
    if (more.length > 0) return undefined;
    if (what === 'manifest' && name === undefined) return json(pod.manifest);
    if (what === 'uuid' && name === undefined) return text(pod.uuid);
    // Exactly the manifest's (the ACE validator compares them, and `null` is not `[]`).
    if (what === 'annotations') return name === undefined ? json(pod.manifest.annotations ?? null) : annotationValue(annotations(pod.manifest.annotations), name);
    return undefined;
  }
  if (scope === 'apps') {
    const [app, what, sub, ...more] = rest;
    if (app === undefined || more.length > 0) return undefined;
    const entry = pod.manifest.apps.find((a) => a.name === app);
    if (entry === undefined) return error(404, `the pod has no app ${JSON.stringify(app)}`);
    if (what === 'annotations') return sub === undefined ? json(appAnnotations(pod, app)) : annotationValue(appAnnotations(pod, app), sub);
    if (what === 'image' && sub === 'manifest') return json(pod.apps[app]?.imageManifest);
    if (what === 'image' && sub === 'id') return text(entry.image.id);
  }
  return undefined;
};

/** POST pod/hmac/sign and pod/hmac/verify. */
const hmac = async (registry: Registry, pod: Pod, op: string, req: IncomingMessage): Promise<Reply> => {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return error(415, 'post a form (application/x-www-form-urlencoded)');
  const body = await readBody(req, MAX_FORM);
  if (body === undefined) return error(413, `the form is bigger than ${MAX_FORM} bytes`);
  const form = new URLSearchParams(body.toString('utf8'));
  const content = form.get('content');
  if (content === null) return error(400, 'the form has no "content"');
  if (op === 'sign') return text(registry.sign(pod.uuid, content)!);
  const uuid = form.get('uuid');
  const signature = form.get('signature');
  if (uuid === null || signature === null) return error(400, 'the form needs "content", "uuid" and "signature"');
  if (!isPodUuid(uuid)) return error(400, `uuid: ${JSON.stringify(uuid)} is not a pod UUID`);
  return registry.verify(uuid, content, signature) ? text('') : error(403, 'the signature does not verify');
};

const route = async (registry: Registry, req: IncomingMessage): Promise<Reply> => {
  const url = new URL(req.url ?? '/', 'http://metadata');
  const parts = url.pathname.split('/').filter((p) => p !== '').map(decodeURIComponent);
  if (parts[0] !== 'acMetadata' || parts[1] !== 'v1') return error(404, 'not a metadata path: /acMetadata/v1/...');
  if (req.headers['metadata-flavor'] !== 'AppContainer') return error(400, 'the header "Metadata-Flavor: AppContainer" is required');
  const pod = registry.from(req.socket.remoteAddress ?? '');
  if (pod === undefined) return error(403, `${req.socket.remoteAddress ?? 'this address'} is no registered pod's address`);
  const path = parts.slice(2);
  if (path[0] === 'pod' && path[1] === 'hmac' && (path[2] === 'sign' || path[2] === 'verify') && path.length === 3) {
    return req.method === 'POST' ? hmac(registry, pod, path[2], req) : { ...error(405, 'POST a form here'), allow: 'POST' };
  }
  const found = metadata(pod, path);
  if (found === undefined) return error(404, `no metadata at ${url.pathname}`);
  return req.method === 'GET' || req.method === 'HEAD' ? found : { ...error(405, 'only GET here'), allow: 'GET, HEAD' };
};

/** The request handler of the apps' listener. */
export const appApi = (registry: Registry) => (req: IncomingMessage, res: ServerResponse): void => {
  route(registry, req).then(
    (r) => {
      const headers: Record<string, string | number> = { 'Content-Length': Buffer.byteLength(r.body) };
      if (r.type !== undefined) headers['Content-Type'] = r.type;
      if (r.allow !== undefined) headers.Allow = r.allow;
      res.writeHead(r.status, headers);
      res.end(req.method === 'HEAD' ? undefined : r.body);
    },
    () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    },
  );
};
