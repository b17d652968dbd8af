/**
 * Test support: a virtio driver written from the specification, driving a VirtioMmio
 * transport through its registers over a small guest RAM, as a guest kernel would: status
 * handshake, feature negotiation, split rings (direct and indirect chains), notifications
 * and interrupt acknowledgement. Tests also poke the rings by hand to break the protocol.
 */
import { memoryBytes } from '../../src/cpu/layout.ts';
import { VirtioMmio, REG } from '../../src/devices/virtio/mmio.ts';
import { F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK, type VirtioDevice } from '../../src/devices/virtio/types.ts';
import { GuestRam } from '../../src/machine/ram.ts';

export const NEXT = 1;
export const WRITE = 2;
export const INDIRECT = 4;

/** A fresh GuestRam of `size` bytes (not shared, as in a browser without isolation). */
export function makeRam(size = 1 << 20): GuestRam {
  const pages = Math.ceil(memoryBytes(size) / 65536);
  return new GuestRam(new WebAssembly.Memory({ initial: pages, maximum: pages }), size);
}

/** A buffer of a request: readable bytes, or room for the device to write. */
export type Buf = { data: Uint8Array } | { room: number };

export interface Ring {
  size: number;
  desc: number;
  avail: number;
  used: number;
  /** Next free descriptor (descriptors are handed out round-robin). */
  free: number;
  /** Used entries consumed so far. */
  seen: number;
  availIdx: number;
}

export class Driver {
  readonly ram: GuestRam;
  readonly mmio: VirtioMmio;
  readonly line = { level: false, set(l: boolean) { this.level = l; } };
  readonly errors: string[] = [];
  readonly rings: Ring[] = [];
  private heap: number;

  constructor(readonly device: VirtioDevice, ramSize = 1 << 20) {
    this.ram = makeRam(ramSize);
    this.mmio = new VirtioMmio(this.ram, this.line, { onError: (_d, r) => this.errors.push(r) });
    this.mmio.attach(device);
    this.heap = this.ram.base + 0x1000;
  }

  r(off: number): number {
    return this.mmio.read(off, 4);
  }
  w(off: number, v: number): void {
    this.mmio.write(off, 4, v);
  }

  /** Bytes of guest RAM, `align`-aligned, zeroed. */
  alloc(n: number, align = 16): number {
    this.heap = Math.ceil(this.heap / align) * align;
    const at = this.heap;
    this.heap += n;
    if (this.heap > this.ram.end) throw new Error('test RAM exhausted');
    this.ram.zero(at, n);
    return at;
  }

  offered(): bigint {
    this.w(REG.DEVICE_FEATURES_SEL, 0);
    const lo = BigInt(this.r(REG.DEVICE_FEATURES));
    this.w(REG.DEVICE_FEATURES_SEL, 1);
    return (BigInt(this.r(REG.DEVICE_FEATURES)) << 32n) | lo;
  }

  /** §3.1.1 up to FEATURES_OK; returns whether the device kept FEATURES_OK. */
  negotiate(features: bigint): boolean {
    this.w(REG.STATUS, 0);
    this.w(REG.STATUS, STATUS_ACKNOWLEDGE);
    this.w(REG.STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    this.w(REG.DRIVER_FEATURES_SEL, 0);
    this.w(REG.DRIVER_FEATURES, Number(features & 0xffff_ffffn));
    this.w(REG.DRIVER_FEATURES_SEL, 1);
    this.w(REG.DRIVER_FEATURES, Number(features >> 32n));
    this.w(REG.STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    return (this.r(REG.STATUS) & STATUS_FEATURES_OK) !== 0;
  }

  /** Sets up queue `i` with `size` entries (§4.2.3.2). */
  setupQueue(i: number, size?: number): Ring {
    this.w(REG.QUEUE_SEL, i);
    const n = size ?? this.r(REG.QUEUE_NUM_MAX);
    const ring: Ring = { size: n, desc: this.alloc(16 * n, 16), avail: this.alloc(6 + 2 * n, 2), used: this.alloc(6 + 8 * n, 4), free: 0, seen: 0, availIdx: 0 };
    this.w(REG.QUEUE_NUM, n);
    const set = (lo: number, addr: number) => {
      this.w(lo, addr >>> 0);
      this.w(lo + 4, Math.floor(addr / 2 ** 32));
    };
    set(REG.QUEUE_DESC_LOW, ring.desc);
    set(REG.QUEUE_DRIVER_LOW, ring.avail);
    set(REG.QUEUE_DEVICE_LOW, ring.used);
    this.w(REG.QUEUE_READY, 1);
    this.rings[i] = ring;
    return ring;
  }

  /** The whole initialization with `extra` device features (all the transport's by default). */
  init(o: { features?: bigint; transport?: bigint; queueSize?: number } = {}): void {
    const f = (o.transport ?? F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX) | (o.features ?? 0n);
    if (!this.negotiate(f & this.offered())) throw new Error('FEATURES_OK refused');
    this.device.queueMax.forEach((_, i) => this.setupQueue(i, o.queueSize));
    this.w(REG.STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  }

  /** Writes descriptor `i` of the table at `table`. */
  putDesc(table: number, i: number, addr: number, len: number, flags: number, next = 0): void {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, addr >>> 0, true);
    v.setUint32(4, Math.floor(addr / 2 ** 32), true);
    v.setUint32(8, len >>> 0, true);
    v.setUint16(12, flags, true);
    v.setUint16(14, next, true);
    this.ram.load(table + 16 * i, b);
  }

  /** Places buffers for `bufs`; returns their guest addresses. */
  buffers(bufs: Buf[]): Array<{ addr: number; len: number; write: boolean }> {
    return bufs.map((b) => {
      if ('data' in b) {
        const addr = this.alloc(Math.max(1, b.data.length), 8);
        this.ram.load(addr, b.data);
        return { addr, len: b.data.length, write: false };
      }
      return { addr: this.alloc(Math.max(1, b.room), 8), len: b.room, write: true };
    });
  }

  /** Makes a chain available on queue `q` (through an indirect table with `indirect`); returns head and buffers. */
  submit(q: number, bufs: Buf[], o: { indirect?: boolean; kick?: boolean } = {}) {
    const ring = this.rings[q]!;
    const placed = this.buffers(bufs);
    let head: number;
    if (o.indirect) {
      const table = this.alloc(16 * placed.length, 16);
      placed.forEach((p, i) => this.putDesc(table, i, p.addr, p.len, (p.write ? WRITE : 0) | (i < placed.length - 1 ? NEXT : 0), i + 1));
      head = ring.free;
      this.putDesc(ring.desc, head, table, 16 * placed.length, INDIRECT);
      ring.free = (ring.free + 1) % ring.size;
    } else {
      const ids = placed.map(() => {
        const id = ring.free;
        ring.free = (ring.free + 1) % ring.size;
        return id;
      });
      placed.forEach((p, i) => this.putDesc(ring.desc, ids[i]!, p.addr, p.len, (p.write ? WRITE : 0) | (i < placed.length - 1 ? NEXT : 0), ids[i + 1] ?? 0));
      head = ids[0]!;
    }
    this.publish(q, head);
    if (o.kick ?? true) this.kick(q);
    return { head, bufs: placed };
  }

  /** Adds `head` to the available ring and bumps idx. */
  publish(q: number, head: number): void {
    const ring = this.rings[q]!;
    const e = new Uint8Array(2);
    new DataView(e.buffer).setUint16(0, head, true);
    this.ram.load(ring.avail + 4 + 2 * (ring.availIdx % ring.size), e);
    ring.availIdx = (ring.availIdx + 1) & 0xffff;
    this.setU16(ring.avail + 2, ring.availIdx);
  }

  setU16(pa: number, v: number): void {
    const e = new Uint8Array(2);
    new DataView(e.buffer).setUint16(0, v, true);
    this.ram.load(pa, e);
  }

  u16(pa: number): number {
    return (this.ram.readU32(pa - (pa % 4)) >>> (8 * (pa % 4))) & 0xffff;
  }

  kick(q: number): void {
    this.w(REG.QUEUE_NOTIFY, q);
  }

  /** Used entries added since the last call. */
  used(q: number): Array<{ id: number; len: number }> {
    const ring = this.rings[q]!;
    const idx = this.u16(ring.used + 2);
    const out: Array<{ id: number; len: number }> = [];
    while (ring.seen !== idx) {
      const at = ring.used + 4 + 8 * (ring.seen % ring.size);
      out.push({ id: this.ram.readU32(at), len: this.ram.readU32(at + 4) });
      ring.seen = (ring.seen + 1) & 0xffff;
    }
    return out;
  }

  /** Reads and acknowledges InterruptStatus. */
  ack(): number {
    const s = this.r(REG.INTERRUPT_STATUS);
    this.w(REG.INTERRUPT_ACK, s);
    return s;
  }

  read(addr: number, len: number): Uint8Array {
    return this.ram.read(addr, len);
  }
}
