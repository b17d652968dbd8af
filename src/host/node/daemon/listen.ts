/**
 * The daemon's listeners: one HTTP server per `--listen` (unix:PATH or tcp:HOST:PORT), all
 * serving the one API handler. Connections that arrive over TCP are remembered so the API
 * can demand the bearer token of them; a unix socket is made mode 0600 in a 0700 directory,
 * so its file permissions decide who may connect.
 */
import { chmodSync, existsSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { VirtusError } from '../../../util/errors.ts';

/** One --listen. */
export type ListenSpec = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/** Parses unix:PATH or tcp:HOST:PORT. */
export function parseListen(text: string, flag = '--listen'): ListenSpec {
  if (text.startsWith('unix:') && text.length > 5) return { kind: 'unix', path: text.slice(5) };
  const m = /^tcp:(.+):(\d{1,5})$/.exec(text);
  if (m && Number(m[2]) <= 65535) return { kind: 'tcp', host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
  throw new VirtusError('BAD_FLAG', `${flag}: expected unix:PATH or tcp:HOST:PORT, not "${text}"`, { exitCode: 2 });
}

/** The API's servers, one per --listen. */
export class Listeners {
  private readonly servers: Server[] = [];
  private readonly tcp = new WeakSet<Socket>();
  private readonly open = new Set<Socket>();
  private handler: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  /** Where each listener ended up (tcp:HOST:PORT with the bound port). */
  readonly addresses: string[] = [];
  private readonly sockets: string[] = [];

  /** The server the API is built on (its handler is the API's; the others copy it). */
  readonly primary: Server = createServer();

  /** For the framework: remembers the handler, hands it the primary server. */
  factory = (handler: (req: IncomingMessage, res: ServerResponse) => void): Server => {
    this.handler = handler;
    this.primary.on('request', handler);
    return this.primary;
  };

  isTcp = (socket: Socket): boolean => this.tcp.has(socket);

  async listen(specs: ListenSpec[]): Promise<void> {
    if (!this.handler) throw new Error('listen before the API is built');
    for (const [i, spec] of specs.entries()) {
      const server = i === 0 ? this.primary : createServer(this.handler);
      // WebSocket upgrades are served by the primary server's upgrade listener.
      if (i > 0) server.on('upgrade', (req, sock, head) => this.primary.emit('upgrade', req, sock, head));
      server.on('connection', (s: Socket) => {
        if (spec.kind === 'tcp') this.tcp.add(s);
        this.open.add(s);
        s.once('close', () => this.open.delete(s));
      });
      server.keepAliveTimeout = 5000;
      await new Promise<void>((resolve, reject) => {
        const fail = (e: Error): void => reject(new VirtusError('LISTEN', `--listen ${spec.kind === 'unix' ? `unix:${spec.path}` : `tcp:${spec.host}:${spec.port}`}: ${e.message}`, { exitCode: 2 }));
        server.once('error', fail);
        if (spec.kind === 'unix') {
          if (existsSync(spec.path)) {
            if (!statSync(spec.path).isSocket()) return fail(new Error('exists and is not a socket'));
            rmSync(spec.path);
          }
          server.listen(spec.path, () => {
            chmodSync(spec.path, 0o600);
            this.sockets.push(spec.path);
            this.addresses.push(`unix:${spec.path}`);
            resolve();
          });
        } else {
          server.listen(spec.port, spec.host, () => {
            const a = server.address() as { port: number };
            this.addresses.push(`tcp:${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${a.port}`);
            resolve();
          });
        }
      });
      this.servers.push(server);
    }
  }

  /**
   * Stops listening and drops every connection: requests, event streams and consoles (an
   * upgraded WebSocket is no longer the HTTP server's, but the listener still counts it).
   */
  async close(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.open) s.destroy();
    await closed;
    for (const p of this.sockets) rmSync(p, { force: true });
  }
}
