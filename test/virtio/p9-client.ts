/**
 * Test support: a 9P2000.L client (as Linux's 9pnet speaks it) over the virtio test driver,
 * and a share of a fresh host folder to point it at. The client builds its messages with its
 * own encoder (not the server's wire.ts, so a bug there cannot hide itself) and reuses one
 * request and one reply buffer in guest RAM, so sessions may move megabytes.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { VirtioP9 } from '../../src/devices/virtio/9p/9p.ts';
import { T } from '../../src/devices/virtio/9p/wire.ts';
import { NodeHostFs } from '../../src/host/node/host-fs.ts';
import { Driver, NEXT, WRITE } from './driver.ts';

export const MSIZE = 65536;
export const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000, O_DIRECTORY = 0o200000;
export const AT_REMOVEDIR = 0x200;
/** Rread/Rreaddir: size[4] type[1] tag[2] count[4]. */
export const IO_HEADER = 11;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A reply was Rlerror. */
export class Lerror extends Error {
  constructor(readonly errno: number) {
    super(`Rlerror ${errno}`);
  }
}

/** Little-endian message builder (the test's own, independent of the server's writer). */
export class Msg {
  private buf = new Uint8Array(256);
  private at = 7;
  private room(n: number): number {
    if (this.at + n > this.buf.length) {
      const next = new Uint8Array(2 * (this.at + n));
      next.set(this.buf);
      this.buf = next;
    }
    this.at += n;
    return this.at - n;
  }
  u8(x: number): this {
    this.buf[this.room(1)] = x & 0xff;
    return this;
  }
  u16(x: number): this {
    return this.u8(x).u8(x >>> 8);
  }
  u32(x: number): this {
    return this.u16(x & 0xffff).u16(x >>> 16);
  }
  u64(x: number | bigint): this {
    const b = BigInt.asUintN(64, BigInt(x));
    return this.u32(Number(b & 0xffff_ffffn)).u32(Number(b >> 32n));
  }
  str(s: string): this {
    const b = enc.encode(s);
    return this.u16(b.length).bytes(b);
  }
  bytes(b: Uint8Array): this {
    const p = this.room(b.length);
    this.buf.set(b, p);
    return this;
  }
  /** The message with its header: size[4] type[1] tag[2]. */
  finish(type: number, tag: number): Uint8Array {
    const v = new DataView(this.buf.buffer);
    v.setUint32(0, this.at, true);
    v.setUint8(4, type);
    v.setUint16(5, tag, true);
    return this.buf.slice(0, this.at);
  }
}

/** Little-endian reader of a reply. */
export class Reply {
  at = 0;
  private readonly v: DataView;
  constructor(readonly b: Uint8Array) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u8(): number {
    return this.v.getUint8(this.at++);
  }
  u16(): number {
    const x = this.v.getUint16(this.at, true);
    this.at += 2;
    return x;
  }
  u32(): number {
    const x = this.v.getUint32(this.at, true);
    this.at += 4;
    return x;
  }
  u64(): bigint {
    const x = this.v.getBigUint64(this.at, true);
    this.at += 8;
    return x;
  }
  bytes(n: number): Uint8Array {
    assert.ok(this.at + n <= this.b.length, `reply field of ${n} bytes runs past the reply`);
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  str(): string {
    return dec.decode(this.bytes(this.u16()));
  }
  qid(): Qid {
    return { type: this.u8(), version: this.u32(), path: this.u64() };
  }
  get left(): number {
    return this.b.length - this.at;
  }
}

export interface Qid {
  type: number;
  version: number;
  path: bigint;
}

export interface DirEntry {
  name: string;
  qid: Qid;
  offset: bigint;
  type: number;
}

/** A 9P2000.L client speaking through the virtio driver. */
export class Client {
  tag = 1;
  /** Bugs the server reported (share() wires them here); every request checks there are none. */
  readonly bugs: unknown[] = [];
  /** The size of the last raw reply. */
  lastReplySize = 0;
  private readonly reqAddr: number;
  private readonly repAddr: number;

  /** `bufSize` is the room for a request and for a reply in guest RAM. */
  constructor(
    readonly d: Driver,
    readonly bufSize = MSIZE,
  ) {
    this.reqAddr = d.alloc(bufSize, 8);
    this.repAddr = d.alloc(bufSize, 8);
  }

  /** Sends raw message bytes, returns the raw reply. */
  raw(msg: Uint8Array, room = this.bufSize): Uint8Array {
    assert.ok(msg.length <= this.bufSize && room <= this.bufSize, 'message fits the test buffers');
    const ring = this.d.rings[0]!;
    this.d.ram.load(this.reqAddr, msg);
    const a = ring.free;
    const b = (a + 1) % ring.size;
    ring.free = (b + 1) % ring.size;
    this.d.putDesc(ring.desc, a, this.reqAddr, msg.length, NEXT, b);
    this.d.putDesc(ring.desc, b, this.repAddr, room, WRITE);
    this.d.publish(0, a);
    this.d.kick(0);
    const used = this.d.used(0);
    assert.equal(used.length, 1, 'one reply per request');
    assert.equal(used[0]!.id, a);
    this.lastReplySize = used[0]!.len;
    if (this.bugs.length) throw this.bugs[0];
    return this.d.read(this.repAddr, used[0]!.len);
  }

  rpc(type: number, body: (m: Msg) => void, room = this.bufSize): Reply {
    const m = new Msg();
    body(m);
    const reply = new Reply(this.raw(m.finish(type, this.tag++ & 0xffff), room));
    assert.equal(reply.u32(), reply.b.length, 'the size field is the used length');
    const rtype = reply.u8();
    reply.u16();
    if (rtype === 7) throw new Lerror(reply.u32());
    assert.equal(rtype, type + 1);
    return reply;
  }

  version(msize = MSIZE): { msize: number; version: string } {
    const r = this.rpc(T.version, (w) => w.u32(msize).str('9P2000.L'));
    return { msize: r.u32(), version: r.str() };
  }
  attach(fid: number): Qid {
    return this.rpc(T.attach, (w) => w.u32(fid).u32(0xffff_ffff).str('root').str('').u32(0)).qid();
  }
  walk(fid: number, newfid: number, ...names: string[]): Qid[] {
    const r = this.rpc(T.walk, (w) => {
      w.u32(fid).u32(newfid).u16(names.length);
      for (const s of names) w.str(s);
    });
    return Array.from({ length: r.u16() }, () => r.qid());
  }
  lopen(fid: number, flags: number): Qid {
    return this.rpc(T.lopen, (w) => w.u32(fid).u32(flags)).qid();
  }
  lcreate(fid: number, name: string, flags = O_RDWR | O_CREAT, mode = 0o644): Qid {
    return this.rpc(T.lcreate, (w) => w.u32(fid).str(name).u32(flags).u32(mode).u32(0)).qid();
  }
  write(fid: number, offset: number, data: Uint8Array): number {
    return this.rpc(T.write, (w) => w.u32(fid).u64(offset).u32(data.length).bytes(data)).u32();
  }
  read(fid: number, offset: number, count: number): Uint8Array {
    const r = this.rpc(T.read, (w) => w.u32(fid).u64(offset).u32(count));
    return r.bytes(r.u32()).slice();
  }
  clunk(fid: number): void {
    this.rpc(T.clunk, (w) => w.u32(fid));
  }
  remove(fid: number): void {
    this.rpc(T.remove, (w) => w.u32(fid));
  }
  getattr(fid: number) {
    const r = this.rpc(T.getattr, (w) => w.u32(fid).u64(0x7ff));
    const valid = r.u64();
    const qid = r.qid();
    const mode = r.u32();
    r.u32();
    r.u32();
    r.u64();
    r.u64();
    const size = r.u64();
    r.u64();
    r.u64();
    const atime = r.u64();
    r.u64();
    const mtime = r.u64();
    r.u64();
    const ctime = r.u64();
    return { valid, qid, mode, size, atime, mtime, ctime };
  }
  /** One Treaddir: the entries in the reply. */
  readdirOnce(fid: number, offset: bigint, count: number): DirEntry[] {
    const r = this.rpc(T.readdir, (w) => w.u32(fid).u64(offset).u32(count));
    const n = r.u32();
    assert.equal(n, r.left, 'count is the bytes that follow');
    const out: DirEntry[] = [];
    while (r.left > 0) {
      const qid = r.qid();
      const off = r.u64();
      const type = r.u8();
      out.push({ qid, offset: off, type, name: r.str() });
    }
    return out;
  }
  /** Every entry of an open directory, reading `count` bytes at a time. */
  readdirAll(fid: number, count = 200): DirEntry[] {
    const all: DirEntry[] = [];
    let offset = 0n;
    for (;;) {
      const part = this.readdirOnce(fid, offset, count);
      if (part.length === 0) return all;
      all.push(...part);
      offset = part[part.length - 1]!.offset;
    }
  }
  readdir(fid: number, count = 200): string[] {
    return this.readdirAll(fid, count).map((e) => e.name);
  }
  mkdir(dfid: number, name: string, mode = 0o755): Qid {
    return this.rpc(T.mkdir, (w) => w.u32(dfid).str(name).u32(mode).u32(0)).qid();
  }
  mknod(dfid: number, name: string, mode: number): Qid {
    return this.rpc(T.mknod, (w) => w.u32(dfid).str(name).u32(mode).u32(0).u32(0).u32(0)).qid();
  }
  symlink(dfid: number, name: string, target: string): Qid {
    return this.rpc(T.symlink, (w) => w.u32(dfid).str(name).str(target).u32(0)).qid();
  }
  readlink(fid: number): string {
    return this.rpc(T.readlink, (w) => w.u32(fid)).str();
  }
  renameat(od: number, on: string, nd: number, nn: string): void {
    this.rpc(T.renameat, (w) => w.u32(od).str(on).u32(nd).str(nn));
  }
  unlinkat(d: number, name: string, flags = 0): void {
    this.rpc(T.unlinkat, (w) => w.u32(d).str(name).u32(flags));
  }
  link(dfid: number, fid: number, name: string): void {
    this.rpc(T.link, (w) => w.u32(dfid).u32(fid).str(name));
  }
  setattr(fid: number, valid: number, o: { mode?: number; size?: number; mtime?: bigint } = {}): void {
    this.rpc(T.setattr, (w) => w.u32(fid).u32(valid).u32(o.mode ?? 0).u32(0).u32(0).u64(o.size ?? 0).u64(0).u64(0).u64(o.mtime ?? 0n).u64(0));
  }
}

/** The errno of the Rlerror `f` gets (fails when it gets none). */
export function errno(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    if (e instanceof Lerror) return e.errno;
    throw e;
  }
  assert.fail('expected Rlerror');
}

/**
 * A fresh folder under `parent`, shared through a VirtioP9 on the test driver, attached as
 * fid 0 after Tversion(`msize`); `buffers` is the room the client offers for a request and a
 * reply (msize by default).
 */
export function share(parent: string, o: { readOnly?: boolean; clock?: () => bigint; msize?: number; buffers?: number } = {}) {
  const root = join(parent, `share${share.n++}`);
  mkdirSync(root);
  const fs = new NodeHostFs(root, { readOnly: o.readOnly ?? false });
  // A bug in the server fails the test where it happens, not as an EIO somewhere later.
  const dev = new VirtioP9({ tag: 'host0', fs, ...(o.clock ? { clock: o.clock } : {}), onInternalError: (e) => c.bugs.push(e) });
  const msize = o.msize ?? MSIZE;
  const buffers = o.buffers ?? msize;
  const d = new Driver(dev, Math.max(4 << 20, 3 * buffers));
  d.init();
  const c = new Client(d, buffers);
  assert.deepEqual(c.version(msize), { msize, version: '9P2000.L' });
  const rootQid = c.attach(0);
  return { root, fs, dev, d, c, rootQid };
}
share.n = 0;
