/**
 * A client of one repository in an OCI registry (distribution-spec 1.1): the API calls a
 * push and a pull need, authentication (auth.ts) and the choice of HTTPS or plain HTTP.
 *
 * HTTPS always, except for a loopback registry or with --insecure, where HTTPS is tried
 * first without certificate checks and plain HTTP used when the registry does not speak
 * TLS (as Docker treats its insecure registries, localhost among them).
 */
import type { Readable } from 'node:stream';
import { VirtusError } from '../util/errors.ts';
import { MAX_MANIFEST, OCI_INDEX, OCI_MANIFEST } from './artifact.ts';
import { basicAuth, dockerCredentials, parseChallenges, type Credentials } from './auth.ts';
import type { BlobWriter } from './blob-writer.ts';
import { DIGEST_RE, digestMismatch, digestOf } from './digest.ts';
import { discard, isLoopback, isTransient, networkError, readBody, send, type Body, type Request, type Response, type TransportOptions } from './http.ts';

export interface ClientOptions {
  /** Allow plain HTTP and unverified certificates for a registry that is not on loopback. */
  insecure?: boolean;
  /** Blobs larger than this are uploaded in chunks of this size (PATCH); default 32 MiB. */
  chunkSize?: number;
  /** Credentials; default: from the Docker config file. */
  credentials?: Credentials | null;
  /** Called with registry warnings (distribution-spec "Warnings"), once each. */
  onWarning?: (text: string) => void;
}

/** The Accept header of a manifest GET: the types virtus can read or explain. */
const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');
const DEFAULT_CHUNK = 32 * 2 ** 20;
/** Bounded body reads for token and error responses. */
const SMALL = 64 * 1024;

/** A manifest as the registry returned it. */
export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export class RegistryClient {
  private base: URL | null = null;
  private authorization: string | null = null;
  private credentials: Credentials | null | undefined;
  private readonly warned = new Set<string>();
  private readonly transport: TransportOptions;
  /** Requests sent (for tests and progress summaries). */
  requests = 0;

  /**
   * @param registry host[:port]
   * @param repository the repository's name in the registry
   * @param actions the token scope's actions: "pull", or "pull,push"
   */
  constructor(readonly registry: string, readonly repository: string, private readonly actions: 'pull' | 'pull,push', private readonly o: ClientOptions = {}) {
    this.credentials = o.credentials;
    const plainOk = isLoopback(registry.replace(/:\d+$/, '')) || o.insecure === true;
    this.transport = { allowPlain: () => plainOk, skipVerify: plainOk };
  }

  private get plainAllowed(): boolean {
    return this.transport.allowPlain(new URL('http://x'));
  }

  private creds(): Credentials | null {
    if (this.credentials === undefined) this.credentials = dockerCredentials(this.registry);
    return this.credentials;
  }

  /**
   * GET /v2/ (distribution-spec "Determining Support"): finds the scheme and checks that
   * an OCI registry answers. Called before anything else.
   */
  async ping(): Promise<void> {
    if (this.base) return;
    const schemes = this.plainAllowed ? ['https:', 'http:'] : ['https:'];
    let lastError: unknown;
    for (const scheme of schemes) {
      const url = new URL(`${scheme}//${this.registry}/v2/`);
      let res: Response;
      try {
        res = await send({ method: 'GET', url }, this.transport);
        this.requests++;
      } catch (e) {
        lastError = e;
        continue; // no TLS there (or nothing at all): try plain HTTP where allowed
      }
      discard(res);
      if (res.status === 200 || res.status === 401) {
        this.base = new URL(`${scheme}//${this.registry}`);
        return;
      }
      throw new VirtusError('NOT_A_REGISTRY', `${this.registry} is not an OCI registry (GET /v2/ answered ${res.status})`);
    }
    throw networkError(lastError, new URL(`https://${this.registry}/`));
  }

  /** A URL on the registry; ping() must have found its scheme. */
  private url(path: string): URL {
    if (!this.base) throw new Error('RegistryClient: ping() first');
    return new URL(path, this.base);
  }

  /** Sends a request with authorization; answers one 401 challenge and retries once. */
  private async request(req: Request): Promise<Response> {
    await this.ping();
    for (let attempt = 0; ; attempt++) {
      const headers = { ...req.headers };
      if (this.authorization && req.url.host === this.base!.host) headers.Authorization = this.authorization;
      let res: Response;
      try {
        res = await send({ ...req, headers }, this.transport);
        this.requests++;
      } catch (e) {
        if (e instanceof VirtusError) throw e;
        throw networkError(e, req.url);
      }
      this.warn(res);
      if (res.status !== 401 || attempt > 0) return res;
      const header = res.headers['www-authenticate'];
      discard(res);
      if (!header) return res;
      await this.authenticate(String(header));
    }
  }

  private warn(res: Response): void {
    const w = res.headers.warning;
    if (!w || !this.o.onWarning) return;
    for (const part of String(w).split(/,(?=\s*299)/)) {
      const text = /^\s*299\s+-\s+"((?:[^"\\]|\\.)*)"/.exec(part)?.[1];
      if (text && !this.warned.has(text)) {
        this.warned.add(text);
        this.o.onWarning(text);
      }
    }
  }

  /** Answers a WWW-Authenticate challenge: Basic with credentials, or a Bearer token. */
  private async authenticate(header: string): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const creds = this.creds();
    if (bearer) {
      this.authorization = `Bearer ${await this.token(bearer.params, creds)}`;
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!creds) throw this.needCredentials();
      this.authorization = basicAuth(creds);
      return;
    }
    throw new VirtusError('AUTH', `${this.registry} asks for authentication this client does not speak (${challenges.map((c) => c.scheme).join(', ') || header})`);
  }

  private needCredentials(): VirtusError {
    return new VirtusError('AUTH', `${this.registry} needs credentials and the Docker config file has none for it (add them with 'docker login ${this.registry}' or in ~/.docker/config.json)`);
  }

  /** Fetches a bearer token from the challenge's realm for this repository's scope. */
  private async token(params: Record<string, string>, creds: Credentials | null): Promise<string> {
    if (!params.realm) throw new VirtusError('AUTH', `${this.registry}: Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      throw new VirtusError('AUTH', `${this.registry}: Bearer realm '${params.realm}' is not a URL`);
    }
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.append('scope', `repository:${this.repository}:${this.actions}`);
    const headers: Record<string, string> = {};
    if (creds) headers.Authorization = basicAuth(creds);
    let res: Response;
    try {
      res = await send({ method: 'GET', url, headers }, { ...this.transport, allowPlain: (u) => this.plainAllowed || isLoopback(u.hostname) });
      this.requests++;
    } catch (e) {
      if (e instanceof VirtusError) throw e;
      throw networkError(e, url);
    }
    const body = await readBody(res, SMALL, 'token');
    if (res.status === 401 || res.status === 403) throw creds ? new VirtusError('AUTH', `${this.registry}: the token server refused the credentials for ${creds.username}`) : this.needCredentials();
    if (res.status !== 200) throw new VirtusError('AUTH', `${this.registry}: the token server answered ${res.status}`);
    try {
      const x = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      const t = typeof x.token === 'string' && x.token ? x.token : x.access_token;
      if (typeof t === 'string' && t) return t;
    } catch {
      // fall through
    }
    throw new VirtusError('AUTH', `${this.registry}: the token server's answer has no token`);
  }

  /** One line for an error status: the registry's error codes (distribution-spec "Error Codes"). */
  private async fail(res: Response, what: string): Promise<never> {
    let detail = '';
    try {
      const body = await readBody(res, SMALL, what);
      const x = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
      detail = (x.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      // not JSON: the status says it
    }
    const tail = detail ? ` (${detail})` : '';
    if (res.status === 401) {
      throw this.authorization ? new VirtusError('AUTH', `${what}: ${this.registry} refused the credentials${tail}`) : this.needCredentials();
    }
    if (res.status === 403) throw new VirtusError('DENIED', `${what}: access denied by ${this.registry}${tail}`);
    if (res.status === 404) throw new VirtusError('NOT_FOUND', `${what}: not found in ${this.registry}${tail}`);
    if (res.status === 429) throw new VirtusError('TOO_MANY_REQUESTS', `${what}: ${this.registry} says too many requests; try again later${tail}`);
    throw new VirtusError('REGISTRY', `${what}: ${this.registry} answered ${res.status}${tail}`);
  }

  private repoPath(kind: string, ref: string): string {
    return `/v2/${this.repository}/${kind}/${ref}`;
  }

  /** HEAD /v2/<name>/blobs/<digest>: whether the registry has the blob. */
  async blobExists(digest: string): Promise<boolean> {
    await this.ping();
    const res = await this.request({ method: 'HEAD', url: this.url(this.repoPath('blobs', digest)) });
    discard(res);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    return this.fail(res, `blob ${digest}`);
  }

  /**
   * Uploads a blob: POST for a session, then one PUT with the whole blob, or for a blob
   * larger than the chunk size, PATCHes of a chunk each and a closing PUT
   * (distribution-spec "Pushing a blob monolithically" / "in chunks"). A chunk cut off
   * by the network is resumed from the offset the registry reports (GET on the session).
   * `open(start, end)` opens the blob's bytes [start, end).
   */
  async uploadBlob(digest: string, size: number, open: (start: number, end: number) => Readable, onSent: (n: number) => void): Promise<void> {
    await this.ping();
    const what = `uploading blob ${digest}`;
    const post = await this.request({ method: 'POST', url: this.url(`/v2/${this.repository}/blobs/uploads/`) });
    discard(post);
    if (post.status !== 202) return this.fail(post, what);
    return this.upload(post, digest, size, open, onSent);
  }

  /**
   * Asks the registry to link a blob it holds in repository `from` into this one
   * (distribution-spec "Mounting a blob from another repository"): true when it did (201);
   * when it answers 202 instead, the blob is uploaded in the session it opened.
   */
  async mountOrUpload(digest: string, from: string, size: number, open: (start: number, end: number) => Readable, onSent: (n: number) => void): Promise<boolean> {
    await this.ping();
    const what = `uploading blob ${digest}`;
    const url = this.url(`/v2/${this.repository}/blobs/uploads/`);
    url.searchParams.set('mount', digest);
    url.searchParams.set('from', from);
    const post = await this.request({ method: 'POST', url });
    discard(post);
    if (post.status === 201) return true;
    if (post.status !== 202) return this.fail(post, what);
    await this.upload(post, digest, size, open, onSent);
    return false;
  }

  private async upload(post: Response, digest: string, size: number, open: (start: number, end: number) => Readable, onSent: (n: number) => void): Promise<void> {
    const what = `uploading blob ${digest}`;
    let location = this.location(post, what);
    const minChunk = Number(post.headers['oci-chunk-min-length']) || 0;
    const chunk = Math.max(this.o.chunkSize ?? DEFAULT_CHUNK, minChunk, 1);
    const body = (start: number, end: number): Body => ({ length: end - start, open: () => open(start, end) });
    let offset = 0;
    if (size > chunk) {
      let retries = 0;
      while (offset < size) {
        const end = Math.min(size, offset + chunk);
        let res: Response;
        try {
          res = await this.request({
            method: 'PATCH',
            url: location,
            headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${end - 1}` },
            body: body(offset, end),
            onSent: (n) => onSent(offset + n),
          });
        } catch (e) {
          if (!isTransient((e as { cause?: unknown }).cause ?? e) || ++retries > 3) throw e;
          ({ location, offset } = await this.uploadStatus(location, what));
          continue;
        }
        discard(res);
        if (res.status === 416) {
          if (++retries > 3) return this.fail(res, what);
          ({ location, offset } = await this.uploadStatus(location, what));
          continue;
        }
        if (res.status !== 202) return this.fail(res, what);
        location = this.location(res, what);
        offset = end;
      }
    }
    const put = new URL(location);
    put.searchParams.append('digest', digest);
    const rest = offset < size ? { headers: { 'Content-Type': 'application/octet-stream' }, body: body(offset, size), onSent: (n: number) => onSent(offset + n) } : {};
    const res = await this.request({ method: 'PUT', url: put, ...rest });
    discard(res);
    if (res.status !== 201) return this.fail(res, what);
    onSent(size);
  }

  /** GET on an upload session: where it stands (distribution-spec end-13). */
  private async uploadStatus(location: URL, what: string): Promise<{ location: URL; offset: number }> {
    const res = await this.request({ method: 'GET', url: location });
    discard(res);
    if (res.status !== 204) return this.fail(res, what);
    const m = /^0-(\d+)$/.exec(String(res.headers.range ?? ''));
    return { location: this.location(res, what), offset: m ? Number(m[1]) + 1 : 0 };
  }

  private location(res: Response, what: string): URL {
    const loc = res.headers.location;
    if (!loc) throw new VirtusError('REGISTRY', `${what}: ${this.registry} gave no upload Location`);
    return new URL(loc, res.url); // may be relative (RFC 7231 7.1.2)
  }

  /** PUT /v2/<name>/manifests/<tag-or-digest>; checks the digest the registry reports. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    await this.ping();
    const what = `pushing the manifest ${this.repository}:${reference}`;
    const res = await this.request({ method: 'PUT', url: this.url(this.repoPath('manifests', reference)), headers: { 'Content-Type': mediaType }, body: bytes });
    discard(res);
    if (res.status !== 201) return this.fail(res, what);
    const said = res.headers['docker-content-digest'];
    const digest = digestOf(bytes);
    if (typeof said === 'string' && DIGEST_RE.test(said) && said !== digest) throw digestMismatch(what, digest, said);
  }

  /**
   * GET /v2/<name>/manifests/<tag-or-digest> with the Accept types virtus knows; the
   * content is checked against the requested digest and the Docker-Content-Digest header.
   */
  async getManifest(reference: string): Promise<FetchedManifest> {
    await this.ping();
    const what = `${this.registry}/${this.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const res = await this.request({ method: 'GET', url: this.url(this.repoPath('manifests', reference)), headers: { Accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) return this.fail(res, what);
    const bytes = await readBody(res, MAX_MANIFEST, what);
    const digest = digestOf(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) throw digestMismatch(`manifest ${what}`, reference, digest);
    const said = res.headers['docker-content-digest'];
    if (typeof said === 'string' && DIGEST_RE.test(said) && said !== digest) throw digestMismatch(`manifest ${what}`, said, digest);
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    return { bytes, digest, mediaType };
  }

  /**
   * GET /v2/<name>/blobs/<digest> into `w`, from `w.offset` on with a Range request when
   * it already holds a part (RFC 9110 14.2); a registry that answers 200 instead of 206
   * sends it all again. Network failures are thrown with the partial data kept.
   */
  async fetchBlob(digest: string, w: BlobWriter, onProgress: (n: number) => void): Promise<void> {
    await this.ping();
    const what = `blob ${digest}`;
    const headers: Record<string, string> = {};
    const start = w.offset;
    if (start > 0) headers.Range = `bytes=${start}-`;
    const res = await this.request({ method: 'GET', url: this.url(this.repoPath('blobs', digest)), headers });
    if (res.status === 416 && start > 0) {
      discard(res);
      w.restart(); // the partial file is not a prefix the registry recognises
      return this.fetchBlob(digest, w, onProgress);
    }
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (!m || Number(m[1]) !== start) {
        res.body.destroy();
        throw new VirtusError('REGISTRY', `${what}: ${this.registry} answered a range from ${m?.[1] ?? '?'}, not ${start}`);
      }
    } else if (res.status === 200) {
      if (start > 0) w.restart();
    } else {
      return this.fail(res, what);
    }
    onProgress(w.offset);
    try {
      for await (const chunk of res.body) {
        w.write(chunk as Buffer);
        onProgress(w.offset);
      }
    } catch (e) {
      res.body.destroy();
      if (e instanceof VirtusError) throw e;
      throw networkError(e, res.url);
    }
    if (!res.body.complete) throw networkError(Object.assign(new Error('the connection closed mid-blob'), { code: 'ECONNRESET' }), res.url);
  }
}
