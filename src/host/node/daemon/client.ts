/**
 * The CLI's side of the daemon's API: which daemon (`--host`, else $VIRTUS_HOST, else the
 * default state directory's socket), JSON requests over a unix socket or TCP (with the bearer
 * token: $VIRTUS_TOKEN, else the `token` file of the default state directory), API errors
 * turned back into VirtusErrors with their codes, event streams and the console WebSocket.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { defaultSocket, defaultStateDir } from './state-dir.ts';

/** Where a daemon listens, with the token a TCP client presents. */
export type DaemonAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number; token: string | null };

/** The daemon a command talks to. */
export function daemonAddress(host: string | undefined, env: NodeJS.ProcessEnv = process.env): DaemonAddress {
  const text = host ?? env.VIRTUS_HOST ?? `unix:${defaultSocket(env)}`;
  if (text.startsWith('unix:') && text.length > 5) return { kind: 'unix', path: text.slice(5) };
  const m = /^(?:tcp:)?(.+):(\d{1,5})$/.exec(text);
  if (!m) throw new VirtusError('BAD_FLAG', `--host: expected unix:PATH or tcp:HOST:PORT, not "${text}"`, { exitCode: 2 });
  let token: string | null = env.VIRTUS_TOKEN ?? null;
  if (token === null) {
    try {
      token = readFileSync(join(defaultStateDir(env), 'token'), 'utf8').trim();
    } catch {
      token = null;
    }
  }
  return { kind: 'tcp', host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]), token };
}

/** A string naming the daemon in messages. */
export function addressText(a: DaemonAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`;
}

/** Requests to one daemon. */
export class DaemonClient {
  constructor(readonly address: DaemonAddress) {}

  private options(method: string, path: string): RequestOptions {
    const a = this.address;
    const headers: Record<string, string> = {};
    if (a.kind === 'tcp' && a.token) headers.authorization = `Bearer ${a.token}`;
    return a.kind === 'unix' ? { socketPath: a.path, method, path, headers } : { host: a.host, port: a.port, method, path, headers };
  }

  /** Sends a request; resolves with the response (any status). */
  raw(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const o = this.options(method, path);
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      if (data) Object.assign(o.headers!, { 'content-type': 'application/json', 'content-length': String(data.length) });
      const req = httpRequest(o, resolve);
      req.on('error', (e: NodeJS.ErrnoException) => {
        const hint = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is `virtus daemon` running? --host or VIRTUS_HOST names another)' : '';
        reject(new VirtusError('DAEMON_UNREACHABLE', `cannot reach the daemon at ${addressText(this.address)}: ${e.message}${hint}`));
      });
      req.end(data);
    });
  }

  /** A JSON request; an error answer becomes a VirtusError with the API's code. */
  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if ((res.statusCode ?? 500) >= 400) {
      let code = 'DAEMON_ERROR';
      let message = `${res.statusCode} ${text.slice(0, 200)}`;
      try {
        const e = (JSON.parse(text) as { error: { code: string; message: string } }).error;
        code = e.code;
        message = e.message;
      } catch {
        // not an API error body
      }
      throw new VirtusError(code, message);
    }
    if (!text) return {} as T;
    return (res.headers['content-type'] ?? '').includes('json') ? (JSON.parse(text) as T) : (text as unknown as T);
  }

  /** Follows a server-sent event stream; `on` returns true to stop. */
  async events(path: string, on: (type: string, data: Record<string, unknown>) => boolean | void, signal?: AbortSignal): Promise<void> {
    const res = await this.raw('GET', path);
    if (signal?.aborted) res.destroy();
    signal?.addEventListener('abort', () => res.destroy());
    if ((res.statusCode ?? 500) >= 400) {
      res.resume();
      throw new VirtusError('DAEMON_ERROR', `${path}: ${res.statusCode}`);
    }
    res.setEncoding('utf8');
    let buf = '';
    for await (const chunk of res.on('error', () => {})) {
      buf += chunk as string;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type && data && on(type, JSON.parse(data) as Record<string, unknown>)) {
          res.destroy();
          return;
        }
      }
    }
  }

  /**
   * Opens a machine's console WebSocket; `output` gets its messages from the first (the daemon
   * sends the recent output as soon as the socket opens, possibly with the handshake's answer).
   */
  async console(ref: string, output: (bytes: Buffer) => void): Promise<import('ws').WebSocket> {
    const { WebSocket } = await import('ws');
    const a = this.address;
    const path = `/vms/${encodeURIComponent(ref)}/console`;
    const url = a.kind === 'unix' ? `ws+unix:${a.path}:${path}` : `ws://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}${path}`;
    const ws = new WebSocket(url, { headers: a.kind === 'tcp' && a.token ? { authorization: `Bearer ${a.token}` } : {} });
    ws.on('message', (data: Buffer) => output(data));
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const e = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: { code: string; message: string } }).error;
            reject(new VirtusError(e.code, e.message));
          } catch {
            reject(new VirtusError('DAEMON_ERROR', `console: ${res.statusCode}`));
          }
        });
      });
      ws.once('error', (e) => reject(new VirtusError('DAEMON_UNREACHABLE', `cannot reach the daemon at ${addressText(a)}: ${e.message}`)));
    });
  }
}
