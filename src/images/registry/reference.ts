/**
 * `docker://HOST[:PORT]/NAME[:TAG][@sha256:DIGEST]`, parsed with the distribution project's grammar
 * (reference/regexp.go). podlog has no default registry: the first component must name one (it holds
 * a dot or a colon, or is `localhost`, the containers projects' rule), because a short name would mean
 * Docker Hub, which podlog does not guess for the user.
 */
import { PodlogError } from '../../errors.js';
import type { ImageLabel } from '../../events/images.js';

export interface DockerRef {
  /** HOST[:PORT], as the URL and the credentials name it. */
  registry: string;
  /** NAME: the repository path below the registry. */
  repository: string;
  /** The tag asked for, `latest` when neither a tag nor a digest is given. */
  tag?: string;
  /** A manifest digest asked for (`sha256:` and 64 hex digits); it wins over the tag. */
  digest?: string;
  /** The reference normalized: `docker://HOST/NAME:TAG`, `docker://HOST/NAME@DIGEST` or both. */
  reference: string;
}

export const DOCKER_SCHEME = 'docker://';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

export const isDockerRef = (ref: string): boolean => ref.toLowerCase().startsWith(DOCKER_SCHEME);

export const parseDockerRef = (input: string): DockerRef => {
  const bad = (why: string): PodlogError => new PodlogError('EUSAGE', `${input}: ${why}`);
  if (!isDockerRef(input)) throw bad(`not a ${DOCKER_SCHEME} reference`);
  let rest = input.slice(DOCKER_SCHEME.length);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`${JSON.stringify(digest)} is not a digest (sha256: and 64 lowercase hex digits)`);
  }
  const slash = rest.indexOf('/');
  // Host names are case-insensitive: lowercased, as Docker does, so that names and trust prefixes match.
  const host = (slash === -1 ? rest : rest.slice(0, slash)).toLowerCase();
  if (slash === -1 || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    throw bad(`name the registry (docker://HOST[:PORT]/NAME[:TAG]): podlog has no default registry, and ${JSON.stringify(host || rest)} is not a host name (it has no dot or port, and is not localhost)`);
  }
  if (!HOST.test(host)) throw bad(`${JSON.stringify(host)} is not a registry host[:port]`);
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon !== -1) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`${JSON.stringify(tag)} is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  if (!path.split('/').every((c) => COMPONENT.test(c)) || path.length > 255) {
    throw bad(`${JSON.stringify(path)} is not a repository name (lowercase components of letters and digits, separated by / and joined by . _ __ or -)`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  const reference = `${DOCKER_SCHEME}${host}/${path}${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@${digest}`}`;
  return { registry: host, repository: path, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }), reference };
};

/** What a pull of `ref` records as the image's source: the repository and the digest the reference resolved to. */
export const pulledSource = (ref: DockerRef, digest: string): string => `${DOCKER_SCHEME}${ref.registry}/${ref.repository}@${digest}`;

/** The name and version a pull gives the image of `ref` (and `image rm docker://HOST/NAME:TAG` finds it by). */
export const pulledName = (ref: DockerRef): { name: string; labels: ImageLabel[] } => ({
  name: `${ref.registry}/${ref.repository}`,
  labels: ref.tag === undefined ? [] : [{ name: 'version', value: ref.tag }],
});
