/**
 * The server side of the Wisp relay (src/net/wisp.ts) on a Node HTTP server: `virtus web`
 * mounts it so the page's machine reaches the network through the server it was loaded
 * from, and `--nic user,wisp=ws://..` uses it from the CLI. Each client stream becomes a
 * host TCP connection or UDP socket; `allow` decides which destinations may be reached (an
 * open relay is an open proxy). Malformed packets close the WebSocket.
 */
import { createSocket } from 'node:dgram';
import type { IncomingMessage, Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  CLOSE, CLOSE_BLOCKED, CLOSE_INVALID, CLOSE_NETWORK, CLOSE_REFUSED, CLOSE_UNREACHABLE, CLOSE_VOLUNTARY, CONNECT, CONTINUE, DATA,
  STREAM_TCP, STREAM_UDP, parseWisp, u32Payload, wispPacket,
} from '../../../net/wisp.ts';
import { acceptKey, WebSocketConn } from './websocket.ts';

/** DATA packets a client may send on a TCP stream before the next CONTINUE. */
export const WISP_BUFFER = 128;
/** Bytes queued on a host socket beyond which the next CONTINUE waits for 'drain'. */
const HIGH_WATER = 1 << 20;

export interface WispServerOptions {
  /** The URL path served (default '/wisp/'). */
  path?: string;
  /** Whether a stream to `host:port` may be opened (default: any). */
  allow?: (host: string, port: number, kind: 'tcp' | 'udp') => boolean;
  log?: (line: string) => void;
  /**
   * Whether a WebSocket handshake from a page of `origin` is accepted (default: any). A relay a
   * page uses must refuse other sites' pages: a browser lets any site open a WebSocket to
   * localhost, and the relay would be their way into the host's network.
   */
  origin?: (origin: string | undefined, host: string | undefined) => boolean;
}

interface Stream {
  close(): void;
  data(b: Uint8Array): void;
}

/** Serves one WebSocket as a Wisp server. */
export function serveWisp(ws: WebSocketConn, o: WispServerOptions): void {
  const streams = new Map<number, Stream>();
  const send = (type: number, id: number, p?: Uint8Array) => ws.send(wispPacket(type, id, p));
  const end = (id: number, reason: number) => {
    if (!streams.delete(id)) return;
    send(CLOSE, id, new Uint8Array([reason]));
  };
  send(CONTINUE, 0, u32Payload(WISP_BUFFER));
  ws.onClose = () => {
    for (const s of streams.values()) s.close();
    streams.clear();
  };
  ws.onMessage = (m) => {
    let p;
    try {
      p = parseWisp(m);
    } catch (e) {
      o.log?.(`virtus: wisp: ${(e as Error).message}; closing the connection`);
      ws.close(1002);
      return;
    }
    if (p.type === CONNECT) {
      if (p.stream === 0 || streams.has(p.stream)) return end(p.stream, CLOSE_INVALID);
      const kind = p.payload[0];
      const port = p.payload[1]! | (p.payload[2]! << 8);
      const host = new TextDecoder().decode(p.payload.subarray(3));
      if ((kind !== STREAM_TCP && kind !== STREAM_UDP) || port === 0 || host === '' || host.length > 253) {
        return void send(CLOSE, p.stream, new Uint8Array([CLOSE_INVALID]));
      }
      if (o.allow && !o.allow(host, port, kind === STREAM_TCP ? 'tcp' : 'udp')) return void send(CLOSE, p.stream, new Uint8Array([CLOSE_BLOCKED]));
      streams.set(p.stream, kind === STREAM_TCP ? tcp(p.stream, host, port) : udp(p.stream, host, port));
      return;
    }
    const s = streams.get(p.stream);
    if (!s) return;
    if (p.type === DATA) s.data(p.payload);
    else if (p.type === CLOSE) {
      streams.delete(p.stream);
      s.close();
    }
  };

  function tcp(id: number, host: string, port: number): Stream {
    const sock: Socket = connect({ host, port });
    sock.setNoDelay(true);
    let received = 0;
    let waiting = false;
    let up = false;
    const grant = () => {
      received = 0;
      waiting = false;
      if (streams.has(id)) send(CONTINUE, id, u32Payload(WISP_BUFFER));
    };
    sock.on('connect', () => (up = true));
    sock.on('data', (b: Buffer) => {
      if (streams.has(id)) send(DATA, id, b);
      // The WebSocket's own buffer backs up into the host socket.
      if (ws.buffered > HIGH_WATER) {
        sock.pause();
        const t = setInterval(() => {
          if (ws.buffered <= HIGH_WATER / 2 || !streams.has(id)) {
            clearInterval(t);
            sock.resume();
          }
        }, 5);
      }
    });
    sock.on('drain', () => {
      if (waiting) grant();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const reason = up ? CLOSE_NETWORK : e.code === 'ECONNREFUSED' ? CLOSE_REFUSED : e.code === 'ENOTFOUND' || e.code === 'EHOSTUNREACH' ? CLOSE_UNREACHABLE : CLOSE_NETWORK;
      end(id, reason);
    });
    sock.on('close', () => end(id, CLOSE_VOLUNTARY));
    return {
      close: () => sock.destroy(),
      data: (b) => {
        sock.write(b);
        if (++received >= WISP_BUFFER / 2) {
          if (sock.writableLength < HIGH_WATER) grant();
          else waiting = true;
        }
      },
    };
  }

  function udp(id: number, host: string, port: number): Stream {
    const s = createSocket('udp4');
    s.on('error', () => end(id, CLOSE_NETWORK));
    s.on('message', (b) => {
      if (streams.has(id)) send(DATA, id, b);
    });
    return {
      close: () => {
        try {
          s.close();
        } catch {
          // already closed
        }
      },
      data: (b) => s.send(b, port, host),
    };
  }
}

/**
 * Accepts a WebSocket handshake (RFC 6455 §4.2) and returns the connection, or answers 400/403
 * and returns null. `origin` decides which pages may connect (see WispServerOptions.origin).
 */
export function acceptWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  origin?: (origin: string | undefined, host: string | undefined) => boolean,
): WebSocketConn | null {
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return null;
  }
  if (origin && !origin(req.headers.origin, req.headers.host)) {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
    return null;
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
  return new WebSocketConn(socket as Socket, 'server', head);
}

/** Mounts the relay on `server`: WebSocket upgrades to `path` are served as Wisp, others refused. */
export function attachWisp(server: Server, o: WispServerOptions = {}): void {
  const path = o.path ?? '/wisp/';
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== path) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    const ws = acceptWebSocket(req, socket, head, o.origin);
    if (ws) serveWisp(ws, o);
  });
}
