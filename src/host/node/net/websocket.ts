/**
 * A small WebSocket (RFC 6455) endpoint over a Node socket, both roles: the server side of an
 * upgraded HTTP request (`virtus web`'s Wisp relay) and a client (`--nic user,wisp=ws://..`).
 * Binary and text messages (fragmented or not), ping/pong and close; frames from the peer are
 * untrusted: a client frame without a mask, a server frame with one, a reserved opcode or a
 * message over MAX_MESSAGE bytes closes the connection (code 1002/1009).
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { VirtusError } from '../../../util/errors.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** The largest message taken from a peer. */
export const MAX_MESSAGE = 4 << 20;

/** The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** One WebSocket connection. */
export class WebSocketConn {
  onClose: () => void = () => {};
  private handler: ((m: Uint8Array) => void) | null = null;
  /** Messages that arrived before a handler was set (the handshake's trailing bytes). */
  private early: Uint8Array[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partBytes = 0;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly role: 'server' | 'client',
    head: Buffer = Buffer.alloc(0),
  ) {
    socket.setNoDelay(true);
    socket.on('data', (b: Buffer) => this.input(b));
    socket.on('close', () => this.gone());
    socket.on('error', () => this.gone());
    if (head.length) queueMicrotask(() => this.input(head));
  }

  /** Where messages go; messages that came before it was set are handed over first. */
  set onMessage(f: (m: Uint8Array) => void) {
    this.handler = f;
    for (const m of this.early.splice(0)) f(m);
  }

  private deliver(m: Uint8Array): void {
    if (this.handler) this.handler(m);
    else this.early.push(m);
  }

  private gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose();
  }

  /** Bytes queued on the socket. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  private frame(opcode: number, payload: Uint8Array): void {
    if (this.closed) return;
    const mask = this.role === 'client';
    const n = payload.length;
    const head = Buffer.alloc(2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + (mask ? 4 : 0));
    head[0] = 0x80 | opcode;
    let at = 2;
    if (n < 126) head[1] = n;
    else if (n < 65536) {
      head[1] = 126;
      head.writeUInt16BE(n, 2);
      at = 4;
    } else {
      head[1] = 127;
      head.writeBigUInt64BE(BigInt(n), 2);
      at = 10;
    }
    if (mask) {
      // RFC 6455 §5.3: a client masks every frame with a fresh key.
      head[1]! |= 0x80;
      const key = randomBytes(4);
      key.copy(head, at);
      const body = Buffer.from(payload);
      for (let i = 0; i < n; i++) body[i]! ^= key[i & 3]!;
      this.socket.write(Buffer.concat([head, body]));
    } else {
      this.socket.write(Buffer.concat([head, payload]));
    }
  }

  /** Sends a binary message. */
  send(m: Uint8Array): void {
    this.frame(2, m);
  }

  /** Closes with `code` (RFC 6455 §7.4). */
  close(code = 1000): void {
    if (this.closed) return;
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    this.frame(8, p);
    this.socket.end();
    this.closed = true;
    this.onClose();
  }

  private input(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    while (!this.closed && this.buf.length >= 2) {
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        const big = this.buf.readBigUInt64BE(2);
        len = big > BigInt(MAX_MESSAGE) ? MAX_MESSAGE + 1 : Number(big);
        at = 10;
      }
      const opcode = b0 & 0x0f;
      if ((b0 & 0x70) !== 0 || masked !== (this.role === 'server') || ![0, 1, 2, 8, 9, 10].includes(opcode)) return this.close(1002);
      if (len > MAX_MESSAGE || this.partBytes + len > MAX_MESSAGE) return this.close(1009);
      const need = at + (masked ? 4 : 0) + len;
      if (this.buf.length < need) return;
      const payload = Buffer.from(this.buf.subarray(at + (masked ? 4 : 0), need));
      if (masked) {
        const key = this.buf.subarray(at, at + 4);
        for (let i = 0; i < len; i++) payload[i]! ^= key[i & 3]!;
      }
      this.buf = this.buf.subarray(need);
      if (opcode === 8) {
        this.close(1000);
        return;
      }
      if (opcode === 9) {
        this.frame(10, payload);
        continue;
      }
      if (opcode === 10) continue;
      this.parts.push(payload);
      this.partBytes += len;
      if (b0 & 0x80) {
        const m = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
        this.parts = [];
        this.partBytes = 0;
        this.deliver(new Uint8Array(m.buffer, m.byteOffset, m.length));
      }
    }
  }
}

/** Opens a client connection to `url` (ws: only). */
export function wsConnect(url: string): Promise<WebSocketConn> {
  const u = new URL(url);
  if (u.protocol !== 'ws:') return Promise.reject(new VirtusError('BAD_NIC', `${url}: only ws:// URLs are supported`, { exitCode: 2 }));
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname, port: u.port || 80, path: u.pathname + u.search,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' },
    });
    req.on('upgrade', (res, socket, head) => {
      if (res.headers['sec-websocket-accept'] !== acceptKey(key)) {
        socket.destroy();
        reject(new VirtusError('NET_WISP', `${url}: the server's WebSocket handshake is wrong`, { exitCode: 2 }));
        return;
      }
      resolve(new WebSocketConn(socket, 'client', head));
    });
    req.on('response', (res) => reject(new VirtusError('NET_WISP', `${url}: the server answered HTTP ${res.statusCode}, not a WebSocket`, { exitCode: 2 })));
    req.on('error', (e) => reject(new VirtusError('NET_WISP', `${url}: cannot connect: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { exitCode: 2 })));
    req.end();
  });
}
