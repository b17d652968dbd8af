/**
 * 9P wire format: little-endian integers of 1, 2, 4 and 8 bytes, strings as a 16-bit length
 * and UTF-8 bytes, qids as type[1] version[4] path[8]; every message starts with
 * size[4] type[1] tag[2]. The reader throws WireError when a message ends early, which the
 * server answers with Rlerror(EPROTO); it never reads past the message.
 */

/** 9P2000.L message types (T = request, R = T + 1). */
export const T = {
  lerror: 6, statfs: 8, lopen: 12, lcreate: 14, symlink: 16, mknod: 18, rename: 20, readlink: 22, getattr: 24,
  setattr: 26, xattrwalk: 30, xattrcreate: 32, readdir: 40, fsync: 50, lock: 52, getlock: 54, link: 70, mkdir: 72,
  renameat: 74, unlinkat: 76, version: 100, auth: 102, attach: 104, flush: 108, walk: 110, read: 116, write: 118,
  clunk: 120, remove: 122,
} as const;
export const R_LERROR = 7;

/** Size of the common header: size[4] type[1] tag[2]. */
export const HEADER = 7;

/** A qid: the server's identity of a file. */
export interface Qid {
  type: number;
  version: number;
  path: bigint;
}

/** A message ended before all its fields. */
export class WireError extends Error {}

const decoder = new TextDecoder('utf-8', { fatal: false });
const encoder = new TextEncoder();

/** Reads one message's fields in order, never past its end. */
export class WireReader {
  private at = 0;
  private readonly v: DataView;

  constructor(private readonly buf: Uint8Array, start = 0) {
    this.v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.at = start;
  }

  private need(n: number): number {
    const p = this.at;
    if (p + n > this.buf.length) throw new WireError(`message ends at byte ${this.buf.length}, field needs ${p + n}`);
    this.at += n;
    return p;
  }

  u8(): number {
    return this.v.getUint8(this.need(1));
  }
  u16(): number {
    return this.v.getUint16(this.need(2), true);
  }
  u32(): number {
    return this.v.getUint32(this.need(4), true);
  }
  u64(): bigint {
    return this.v.getBigUint64(this.need(8), true);
  }
  str(): string {
    const n = this.u16();
    const p = this.need(n);
    return decoder.decode(this.buf.subarray(p, p + n));
  }
  /** `n` raw bytes (a view, not a copy). */
  bytes(n: number): Uint8Array {
    const p = this.need(n);
    return this.buf.subarray(p, p + n);
  }
}

/**
 * Builds one message. The buffer grows as fields are added; every field is written after
 * its room is made, into the buffer as it is then.
 */
export class WireWriter {
  private buf: Uint8Array;
  private v: DataView;
  private at = HEADER;

  constructor(initial = 256) {
    this.buf = new Uint8Array(Math.max(initial, HEADER));
    this.v = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes; returns where they go. */
  private room(n: number): number {
    if (this.at + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
      next.set(this.buf.subarray(0, this.at));
      this.buf = next;
      this.v = new DataView(next.buffer);
    }
    const p = this.at;
    this.at += n;
    return p;
  }

  /** Bytes written so far, header included. */
  get length(): number {
    return this.at;
  }

  u8(x: number): this {
    const p = this.room(1);
    this.v.setUint8(p, x);
    return this;
  }
  u16(x: number): this {
    const p = this.room(2);
    this.v.setUint16(p, x, true);
    return this;
  }
  u32(x: number): this {
    const p = this.room(4);
    this.v.setUint32(p, x >>> 0, true);
    return this;
  }
  u64(x: bigint | number): this {
    const p = this.room(8);
    this.v.setBigUint64(p, BigInt.asUintN(64, BigInt(x)), true);
    return this;
  }
  str(s: string): this {
    return this.u16Bytes(encoder.encode(s));
  }
  qid(q: Qid): this {
    return this.u8(q.type).u32(q.version).u64(q.path);
  }
  bytes(b: Uint8Array): this {
    const p = this.room(b.length);
    this.buf.set(b, p);
    return this;
  }
  /** A string already encoded: its 16-bit length, then its bytes. */
  u16Bytes(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  /** The finished message with its header. */
  finish(type: number, tag: number): Uint8Array {
    this.v.setUint32(0, this.at, true);
    this.v.setUint8(4, type);
    this.v.setUint16(5, tag, true);
    return this.buf.subarray(0, this.at);
  }
}

/** Bytes a string takes on the wire. */
export function strSize(s: string): number {
  return 2 + encoder.encode(s).length;
}
