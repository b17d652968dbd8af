/**
 * Wisp version 1, the protocol v86-style browser machines use to reach the network through a
 * server: TCP and UDP streams multiplexed over one WebSocket (any message transport here).
 * A packet is a type byte, a little-endian 32-bit stream ID and a payload; CONNECT opens a
 * stream (type, port, hostname), DATA carries bytes, CONTINUE grants the client a number of
 * DATA packets it may send on a TCP stream (stream 0 gives the initial grant), CLOSE ends a
 * stream with a reason. Wisp has no half-close: a stream ends both ways at once.
 *
 * Packets are untrusted on both ends: a packet too short for its type is refused with
 * VirtusError('WISP_PACKET').
 */
import { VirtusError } from '../util/errors.ts';

export const CONNECT = 0x01;
export const DATA = 0x02;
export const CONTINUE = 0x03;
export const CLOSE = 0x04;
export const STREAM_TCP = 0x01;
export const STREAM_UDP = 0x02;
/** Close reasons. */
export const CLOSE_VOLUNTARY = 0x02;
export const CLOSE_NETWORK = 0x03;
export const CLOSE_INVALID = 0x41;
export const CLOSE_UNREACHABLE = 0x42;
export const CLOSE_REFUSED = 0x44;
export const CLOSE_BLOCKED = 0x48;

export interface WispPacket {
  type: number;
  stream: number;
  payload: Uint8Array;
}

/** Encodes a packet. */
export function wispPacket(type: number, stream: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const b = new Uint8Array(5 + payload.length);
  b[0] = type;
  new DataView(b.buffer).setUint32(1, stream >>> 0, true);
  b.set(payload, 5);
  return b;
}

/** A CONNECT packet. */
export function wispConnect(stream: number, kind: number, port: number, host: string): Uint8Array {
  const name = new TextEncoder().encode(host);
  const p = new Uint8Array(3 + name.length);
  p[0] = kind;
  p[1] = port & 255;
  p[2] = port >> 8;
  p.set(name, 3);
  return wispPacket(CONNECT, stream, p);
}

/** A 4-byte little-endian number payload (CONTINUE). */
export function u32Payload(n: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, n >>> 0, true);
  return p;
}

/** Decodes a packet, checking the payload of the fixed-size types. */
export function parseWisp(b: Uint8Array): WispPacket {
  if (b.length < 5) throw new VirtusError('WISP_PACKET', `a Wisp packet of ${b.length} bytes is shorter than its 5-byte header`);
  const type = b[0]!;
  const stream = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(1, true);
  const payload = b.subarray(5);
  const need = type === CONNECT ? 3 : type === CONTINUE ? 4 : type === CLOSE ? 1 : 0;
  if (type < CONNECT || type > CLOSE) throw new VirtusError('WISP_PACKET', `unknown Wisp packet type 0x${type.toString(16)}`);
  if (payload.length < need) throw new VirtusError('WISP_PACKET', `a Wisp packet of type ${type} has ${payload.length} payload bytes, fewer than ${need}`);
  return { type, stream, payload };
}

/** A message transport: a WebSocket, or anything carrying whole messages both ways. */
export interface MessageLink {
  send(message: Uint8Array): void;
  close(): void;
}

/** Events of a client stream. */
export interface WispStreamEvents {
  data(bytes: Uint8Array): void;
  /** The stream ended (the server's CLOSE reason, or CLOSE_NETWORK when the link went). */
  closed(reason: number): void;
}

/** One stream of a client. */
export interface WispStream {
  send(bytes: Uint8Array): void;
  /** DATA packets waiting for a CONTINUE. */
  queued(): number;
  close(reason?: number): void;
}

interface ClientStream {
  ev: WispStreamEvents;
  tcp: boolean;
  grant: number;
  queue: Uint8Array[];
  /** A close asked for while DATA waited for a grant: sent once the queue is out. */
  closing: number;
}

/**
 * The client side: opens streams and keeps to the server's grants. Feed it every message
 * from the link with `receive`; until the first CONTINUE arrives, CONNECTs and DATA wait.
 */
export class WispClient {
  private readonly streams = new Map<number, ClientStream>();
  private nextId = 1;
  private initial = -1;
  private backlog: Uint8Array[] = [];
  private dead = false;

  constructor(
    private readonly link: MessageLink,
    private readonly o: { onDrain?: (stream: number) => void } = {},
  ) {}

  private out(b: Uint8Array): void {
    if (this.dead) return;
    if (this.initial < 0) this.backlog.push(b);
    else this.link.send(b);
  }

  /** Opens a TCP or UDP stream to `host:port`. */
  open(kind: number, host: string, port: number, ev: WispStreamEvents): WispStream {
    const id = this.nextId++;
    const s: ClientStream = { ev, tcp: kind === STREAM_TCP, grant: this.initial < 0 ? 0 : this.initial, queue: [], closing: 0 };
    this.streams.set(id, s);
    this.out(wispConnect(id, kind, port, host));
    return {
      send: (b) => {
        if (!this.streams.has(id) || s.closing) return;
        s.queue.push(b.slice());
        if (this.initial >= 0) this.flushStream(id);
      },
      queued: () => s.queue.length,
      close: (reason = CLOSE_VOLUNTARY) => {
        if (!this.streams.has(id) || s.closing) return;
        s.closing = reason;
        if (this.initial >= 0) this.flushStream(id);
      },
    };
  }

  /** A message from the server; a malformed one ends the whole link (VirtusError). */
  receive(message: Uint8Array): void {
    const p = parseWisp(message);
    if (p.type === CONTINUE) {
      const n = new DataView(p.payload.buffer, p.payload.byteOffset, 4).getUint32(0, true);
      if (p.stream === 0) {
        if (this.initial < 0) {
          this.initial = n;
          for (const s of this.streams.values()) s.grant = n;
          const b = this.backlog;
          this.backlog = [];
          for (const m of b) this.link.send(m);
          for (const id of this.streams.keys()) this.flushStream(id);
        }
        return;
      }
      const s = this.streams.get(p.stream);
      if (!s) return;
      s.grant = n;
      this.flushStream(p.stream);
      return;
    }
    const s = this.streams.get(p.stream);
    if (!s) return;
    if (p.type === DATA) s.ev.data(p.payload);
    else if (p.type === CLOSE) {
      this.streams.delete(p.stream);
      s.ev.closed(p.payload[0]!);
    }
  }

  private flushStream(id: number): void {
    const s = this.streams.get(id);
    if (!s) return;
    while (s.queue.length > 0 && (!s.tcp || s.grant > 0)) {
      s.grant--;
      this.out(wispPacket(DATA, id, s.queue.shift()!));
    }
    if (s.queue.length > 0) return;
    if (s.closing) {
      this.streams.delete(id);
      this.out(wispPacket(CLOSE, id, new Uint8Array([s.closing])));
    } else this.o.onDrain?.(id);
  }

  /** The link is gone: every stream ends with CLOSE_NETWORK. */
  down(): void {
    this.dead = true;
    const all = [...this.streams.values()];
    this.streams.clear();
    for (const s of all) s.ev.closed(CLOSE_NETWORK);
  }
}
