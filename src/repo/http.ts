/**
 * The HTTP transport of the registry client, on node:http and node:https rather than the
 * global fetch: uploads stream from files with an exact Content-Length and a byte count
 * for progress, downloads stream to files and may be cut mid-body (and resumed), redirects
 * are followed by hand so that Authorization never crosses to another host
 * (distribution-spec "API": clients MUST NOT forward it across host boundaries), and
 * connection failures arrive with their errno, turned here into one clear line.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { VirtusError } from '../util/errors.ts';

/** A request body: bytes, or a stream made on demand (a retry after a 401 opens it again). */
export type Body = Buffer | { length: number; open(): Readable };

export interface Request {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Body;
  /** Called with the number of body bytes sent so far. */
  onSent?: (n: number) => void;
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered (after redirects). */
  url: URL;
  /** The body, not yet read. Read it, or call discard(). */
  body: IncomingMessage;
}

export interface TransportOptions {
  /** Whether plain HTTP may be used for this URL (loopback registries, --insecure). */
  allowPlain(url: URL): boolean;
  /** Skip TLS certificate verification (--insecure, as Docker's insecure registries). */
  skipVerify: boolean;
  /** Idle time after which a connection is given up (ms). */
  idleTimeout?: number;
}

const MAX_REDIRECTS = 10;
const agents = {
  http: new http.Agent({ keepAlive: true }),
  https: new https.Agent({ keepAlive: true }),
  httpsNoVerify: new https.Agent({ keepAlive: true, rejectUnauthorized: false }),
};

/** True for a host name that is the loopback interface: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** One line for a failed connection: what the user can check. */
export function networkError(e: unknown, url: URL): VirtusError {
  const err = e as NodeJS.ErrnoException;
  const where = url.host;
  const why: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is the registry running, on this port?)',
    ENOTFOUND: 'unknown host',
    EAI_AGAIN: 'the host name could not be resolved',
    ECONNRESET: 'the connection was reset',
    ETIMEDOUT: 'no answer (timed out)',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    EPIPE: 'the connection was closed',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed (use --insecure to accept it)',
    SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate is not trusted (use --insecure to accept it)',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate cannot be verified (use --insecure to accept it)',
    CERT_HAS_EXPIRED: 'its TLS certificate has expired',
    ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate is for another host',
  };
  const text = why[err.code ?? ''] ?? err.message ?? String(e);
  return new VirtusError('REGISTRY_UNREACHABLE', `cannot reach registry ${where}: ${text}`, { cause: e });
}

/** True for errors worth a retry (the connection broke), false for answers and refusals. */
export function isTransient(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code ?? (e as { cause?: NodeJS.ErrnoException }).cause?.code;
  return ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORTED'].includes(code ?? '');
}

function once(req: Request, o: TransportOptions): Promise<Response> {
  const { url } = req;
  if (url.protocol === 'http:' && !o.allowPlain(url)) {
    return Promise.reject(new VirtusError('INSECURE', `refusing plain HTTP to ${url.host}: only loopback registries, or --insecure, may use it`));
  }
  const secure = url.protocol === 'https:';
  const agent = secure ? (o.skipVerify ? agents.httpsNoVerify : agents.https) : agents.http;
  const headers: Record<string, string | number> = { 'User-Agent': 'virtus/0.1', ...req.headers };
  const body = req.body;
  if (body !== undefined) headers['Content-Length'] = body.length;
  else if (['POST', 'PUT', 'PATCH'].includes(req.method)) headers['Content-Length'] = 0;
  return new Promise((resolve, reject) => {
    const r = (secure ? https : http).request(url, { method: req.method, headers, agent }, (res) => {
      res.on('error', () => {}); // surfaced to whoever reads the body
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    r.setTimeout(o.idleTimeout ?? 60_000, () => r.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    r.on('error', (e) => reject(e));
    if (body === undefined) {
      r.end();
    } else if (Buffer.isBuffer(body)) {
      r.end(body);
      req.onSent?.(body.length);
    } else {
      const src = body.open();
      let sent = 0;
      src.on('data', (c: Buffer) => {
        sent += c.length;
        req.onSent?.(sent);
      });
      src.on('error', (e) => r.destroy(e));
      src.pipe(r);
    }
  });
}

/**
 * Sends a request, following redirects for GET and HEAD (RFC 9110 15.4; a registry may
 * redirect blob downloads to other storage). Network failures are returned as thrown
 * errors with their errno code; statuses, good or bad, are the caller's to judge.
 */
export async function send(req: Request, o: TransportOptions): Promise<Response> {
  let cur = req;
  for (let hop = 0; ; hop++) {
    const res = await once(cur, o);
    const loc = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.status) || !loc || !['GET', 'HEAD'].includes(cur.method) || hop >= MAX_REDIRECTS) return res;
    discard(res);
    const next = new URL(loc, cur.url);
    const headers = { ...cur.headers };
    if (next.host !== cur.url.host || next.protocol !== cur.url.protocol) delete headers.Authorization;
    cur = { ...cur, url: next, headers };
  }
}

/** Reads a whole (small) body, refusing one larger than `max` bytes. */
export async function readBody(res: Response, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > max) {
      res.body.destroy();
      throw new VirtusError('TOO_LARGE', `${what}: the registry sent more than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Drains a body we do not need, so the connection can be reused. */
export function discard(res: Response): void {
  res.body.resume();
}
