/**
 * Image references. A remote one names a registry, a repository and a tag or digest
 * (`REGISTRY/REPO[:TAG][@DIGEST]`); a local one names an image in the store
 * (`NAME[:TAG]`, `NAME@DIGEST`, or a digest or its hex prefix).
 *
 * Repository names and tags follow distribution-spec 1.1 ("Pulling manifests"); the
 * registry is the first path component, recognised as Docker does: it has a dot or a
 * port, or is `localhost` or a bracketed IPv6 address. There is no default registry:
 * a remote reference always says where it goes.
 */
import { VirtusError } from '../util/errors.ts';
import { DIGEST_RE, parseDigest } from './digest.ts';

/** distribution-spec: `<name>`, path components separated by slashes. */
const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** distribution-spec: a tag is at most 128 characters. */
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** A registry host: a DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port. */
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
/** The tag a reference without one means. */
export const DEFAULT_TAG = 'latest';
/** Many clients limit registry + "/" + name to 255 characters (distribution-spec, implementers note). */
const MAX_NAME = 255;

/** A repository in a registry, and the manifest wanted from it. */
export interface RemoteRef {
  /** host[:port], as written (e.g. 127.0.0.1:5000). */
  registry: string;
  /** The repository's name in the registry (distribution-spec `<name>`). */
  repository: string;
  /** The tag; undefined when only a digest was given. */
  tag?: string;
  digest?: string;
}

/** An image in the local store: its name (which may begin with a registry) and a tag or digest. */
export interface LocalRef {
  name: string;
  tag?: string;
  digest?: string;
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.startsWith('[');
}

/** Splits `path[:tag][@digest]`; the tag's colon is the last one after the last slash. */
function splitTagDigest(text: string, what: string): { path: string; tag?: string; digest?: string } {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1), what);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  let tag: string | undefined;
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new VirtusError('BAD_REFERENCE', `${what}: '${tag}' is not a valid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')`, { exitCode: 2 });
  }
  return { path: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

function checkName(name: string, what: string, whole: string): void {
  if (!NAME_RE.test(name)) {
    throw new VirtusError('BAD_REFERENCE', `${what}: '${name}' in '${whole}' is not a valid repository name (lowercase letters and digits, separated by '.', '_', '-' or '/')`, { exitCode: 2 });
  }
}

/** Parses `REGISTRY/REPO[:TAG][@DIGEST]`; without tag or digest the tag is `latest`. */
export function parseRemoteRef(text: string, what = 'reference'): RemoteRef {
  const slash = text.indexOf('/');
  const host = slash > 0 ? text.slice(0, slash) : '';
  if (!host || !looksLikeHost(host)) {
    throw new VirtusError('BAD_REFERENCE', `${what}: '${text}' names no registry; write REGISTRY/REPO[:TAG], e.g. 127.0.0.1:5000/machines/debian:latest`, { exitCode: 2 });
  }
  if (!HOST_RE.test(host)) throw new VirtusError('BAD_REFERENCE', `${what}: '${host}' is not a valid registry host[:port]`, { exitCode: 2 });
  const { path, tag, digest } = splitTagDigest(text.slice(slash + 1), what);
  checkName(path, what, text);
  if (host.length + 1 + path.length > MAX_NAME) throw new VirtusError('BAD_REFERENCE', `${what}: '${text}' is longer than ${MAX_NAME} characters`, { exitCode: 2 });
  return { registry: host, repository: path, ...(digest !== undefined ? { digest } : {}), ...(tag !== undefined || digest === undefined ? { tag: tag ?? DEFAULT_TAG } : {}) };
}

/** A remote reference written back as text. */
export function formatRemoteRef(r: RemoteRef): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/**
 * Parses a local image reference: `NAME[:TAG]` (tag `latest` when absent) or `NAME@DIGEST`.
 * NAME may begin with a registry (`127.0.0.1:5000/machines/debian`), as pulled images are named.
 * A bare digest, or `sha256:` and 4 or more of its hex digits, is returned as
 * `{ name: '', digest }` (the store matches a short one by prefix; it also tries a bare
 * hex NAME as a prefix when no image has that name).
 */
export function parseLocalRef(text: string, what = 'image'): LocalRef {
  if (DIGEST_RE.test(text)) return { name: '', digest: text };
  if (/^sha256:[a-f0-9]{4,63}$/.test(text)) return { name: '', digest: text.slice('sha256:'.length) };
  const { path, tag, digest } = splitTagDigest(text, what);
  const slash = path.indexOf('/');
  const first = slash > 0 ? path.slice(0, slash) : '';
  if (first && looksLikeHost(first)) {
    if (!HOST_RE.test(first)) throw new VirtusError('BAD_REFERENCE', `${what}: '${first}' is not a valid registry host[:port]`, { exitCode: 2 });
    checkName(path.slice(slash + 1), what, text);
  } else {
    checkName(path, what, text);
  }
  if (path.length > MAX_NAME) throw new VirtusError('BAD_REFERENCE', `${what}: '${text}' is longer than ${MAX_NAME} characters`, { exitCode: 2 });
  return { name: path, ...(digest !== undefined ? { digest } : {}), ...(tag !== undefined || digest === undefined ? { tag: tag ?? DEFAULT_TAG } : {}) };
}

/** `name:tag`, or `name@digest` for an untagged image: the key of the store's index. */
export function refKey(r: LocalRef): string {
  if (r.tag !== undefined) return `${r.name}:${r.tag}`;
  return `${r.name}@${r.digest}`;
}

/** The local name a pulled image is kept under: the registry and repository, as written. */
export function localRefOf(r: RemoteRef, digest: string): LocalRef {
  const name = `${r.registry}/${r.repository}`;
  return r.tag !== undefined ? { name, tag: r.tag } : { name, digest };
}
