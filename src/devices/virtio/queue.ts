/**
 * A split virtqueue (virtio 1.2 §2.7) as the device side sees it: descriptor chains taken
 * from the available ring, used entries written back, and the decision whether a used
 * buffer notification is due (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with
 * VIRTIO_F_EVENT_IDX).
 *
 * Everything the driver wrote is untrusted. Ring addresses are checked when the queue is
 * enabled; every head index, descriptor index, address and length when a chain is walked.
 * A violation calls `host.fail()` (the transport then sets DEVICE_NEEDS_RESET, §2.1.2) and the
 * queue hands out nothing more; nothing here throws into the CPU loop.
 */
import type { GuestMemory } from '../memory.ts';
import { StateReader, u64State } from '../state.ts';
import { F_EVENT_IDX, F_INDIRECT_DESC } from './types.ts';

// virtio 1.2 §2.7.5: descriptor flags
const DESC_F_NEXT = 1;
const DESC_F_WRITE = 2;
const DESC_F_INDIRECT = 4;
/** virtio 1.2 §2.7.6 */
const AVAIL_F_NO_INTERRUPT = 1;
/** The largest indirect table walked (QEMU's limit too), beyond the queue size. */
const INDIRECT_MAX = 1024;
/** virtio 1.2 §2.7.5: a chain carries at most 2^32 bytes in total. */
const CHAIN_BYTES_MAX = 2 ** 32;
/**
 * What walking one descriptor costs a device's turn, in bytes of work: a queue the driver
 * refills with the same long chain cannot make a turn walk more than TURN_BYTES / 256
 * descriptors (32768, a full queue of Linux's largest requests).
 */
export const DESC_COST = 256;

/** A guest-physical buffer of a chain, inside RAM (checked). */
export interface Segment {
  addr: number;
  len: number;
}

/** A descriptor chain: what the driver offered, split by direction (§2.7.4: readable first). */
export interface Chain {
  /** Head descriptor index: the id the used entry reports. */
  head: number;
  readable: Segment[];
  writable: Segment[];
  readLen: number;
  writeLen: number;
}

/** What a queue needs from its transport. */
export interface QueueHost {
  readonly ram: GuestMemory;
  features(): bigint;
  /** True while the driver is live and the device is not broken. */
  usable(): boolean;
  /** Reports a protocol violation (sets DEVICE_NEEDS_RESET). */
  fail(reason: string): void;
  /** Work left in this turn, and charging it (types.ts, TURN_BYTES). */
  credit(): number;
  spend(bytes: number): void;
}

/** Saved queue state: registers, ring positions, and chains taken but not yet used. */
export interface QueueState {
  size: number;
  ready: boolean;
  desc: string;
  driver: string;
  device: string;
  lastAvail: number;
  usedIdx: number;
  inflight: number[];
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

export class Virtqueue {
  /** QueueSize as the driver set it (§4.2.2); defaults to the maximum. */
  size: number;
  /** QueueReady. */
  ready = false;
  /** Descriptor, driver (available ring) and device (used ring) area addresses. */
  desc = 0n;
  driver = 0n;
  device = 0n;
  /** Next available ring entry to take (free-running 16-bit). */
  lastAvail = 0;
  /** The used ring's idx as the device last wrote it. */
  usedIdx = 0;
  /** Heads taken from the ring and not yet returned, oldest first. */
  private inflight: number[] = [];
  /** Heads to hand out again before new ones (chains in flight when the state was saved). */
  private replay: number[] = [];
  /** usedIdx when the first entry since the last notification decision was added, or -1. */
  private batchStart = -1;
  private d = 0;
  private a = 0;
  private u = 0;
  private readonly view: DataView;

  constructor(
    readonly index: number,
    readonly max: number,
    private readonly host: QueueHost,
  ) {
    this.size = max;
    const b = host.ram.bytes;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Back to the reset state (§4.2.2: QueueReady clears on reset). */
  reset(): void {
    this.size = this.max;
    this.ready = false;
    this.desc = this.driver = this.device = 0n;
    this.lastAvail = this.usedIdx = 0;
    this.inflight = [];
    this.replay = [];
    this.batchStart = -1;
  }

  /** Number of chains taken and not yet returned. */
  get pending(): number {
    return this.inflight.length;
  }

  /**
   * True while `chain` was taken from this queue and not returned, and the queue is still in
   * use: a device serving a request over several turns checks this before each piece, since
   * a reset, a restore or the driver disabling the queue withdraws the chain.
   */
  holds(chain: Chain): boolean {
    return this.ready && this.host.usable() && this.inflight.includes(chain.head);
  }

  /** The driver disabled the queue (§4.2.2 QueueReady): chains in flight are withdrawn. */
  disable(): void {
    this.ready = false;
    this.inflight = [];
    this.replay = [];
    this.batchStart = -1;
  }

  /** The driver enabled the queue (§4.2.3.2): fresh rings, nothing in flight. */
  enable(): void {
    this.lastAvail = this.usedIdx = 0;
    this.inflight = [];
    this.replay = [];
    this.batchStart = -1;
    this.ready = true;
  }

  /**
   * Checks the queue's configuration when the driver enables it (§2.7: sizes, alignment;
   * the areas must lie in RAM). Returns what is wrong, or null.
   */
  check(): string | null {
    const n = this.size;
    if (!isPow2(n) || n > this.max) return `queue ${this.index}: size ${n} is not a power of 2 up to ${this.max}`;
    const area = (name: string, at: bigint, align: number, len: number): string | null => {
      if (at % BigInt(align) !== 0n) return `queue ${this.index}: ${name} area 0x${at.toString(16)} is not ${align}-byte aligned`;
      if (at > BigInt(Number.MAX_SAFE_INTEGER) || !this.host.ram.contains(Number(at), len)) {
        return `queue ${this.index}: ${name} area 0x${at.toString(16)} (+${len}) is outside RAM`;
      }
      return null;
    };
    const err = area('descriptor', this.desc, 16, 16 * n) ?? area('driver', this.driver, 2, 6 + 2 * n) ?? area('device', this.device, 4, 6 + 8 * n);
    if (err) return err;
    this.d = Number(this.desc) - this.host.ram.base;
    this.a = Number(this.driver) - this.host.ram.base;
    this.u = Number(this.device) - this.host.ram.base;
    return null;
  }

  /** Waits for RAM bytes [off, off + len) before touching them through the view (post-copy). */
  private need(off: number, len: number): void {
    this.host.ram.need(this.host.ram.base + off, len);
  }

  private u16(off: number): number {
    this.need(off, 2);
    return this.view.getUint16(off, true);
  }

  private setU16(off: number, v: number): void {
    this.need(off, 2);
    this.view.setUint16(off, v, true);
    this.host.ram.commit(this.host.ram.base + off, 2);
  }

  private eventIdx(): boolean {
    return (this.host.features() & F_EVENT_IDX) !== 0n;
  }

  /** True when the driver has made chains available that were not taken yet. */
  hasAvailable(): boolean {
    if (!this.ready || !this.host.usable()) return false;
    return this.replay.length > 0 || this.u16(this.a + 2) !== this.lastAvail;
  }

  /**
   * Takes the next available chain, or null when there is none (or the queue is not
   * usable, or this turn's credit is spent: the chain waits for the next turn, or the chain
   * is malformed: then the device is failed). Walking the chain is charged to the turn.
   */
  pop(): Chain | null {
    if (!this.ready || !this.host.usable() || this.host.credit() <= 0) return null;
    const again = this.replay.shift();
    if (again !== undefined) {
      const c = this.walk(again);
      if (c) this.inflight.push(again);
      return c;
    }
    const availIdx = this.u16(this.a + 2);
    const waiting = (availIdx - this.lastAvail) & 0xffff;
    if (waiting === 0) return null;
    if (waiting > this.size) {
      return this.broken(`queue ${this.index}: available idx ${availIdx} is ${waiting} entries ahead of ${this.lastAvail}, more than the queue holds (${this.size})`);
    }
    const head = this.u16(this.a + 4 + 2 * (this.lastAvail % this.size));
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    // §2.7.10: with EVENT_IDX, avail_event asks for a notification once the driver adds the
    // entry after the last one taken.
    if (this.eventIdx()) this.setU16(this.u + 4 + 8 * this.size, this.lastAvail);
    const chain = this.walk(head);
    if (chain) this.inflight.push(head);
    return chain;
  }

  private broken(reason: string): null {
    this.host.fail(reason);
    return null;
  }

  /** Follows the chain at `head` (§2.7.5, indirect tables §2.7.5.3), checking every field. */
  private walk(head: number): Chain | null {
    const q = `queue ${this.index}`;
    if (head >= this.size) return this.broken(`${q}: head index ${head} is beyond the queue size ${this.size}`);
    const ram = this.host.ram;
    const chain: Chain = { head, readable: [], writable: [], readLen: 0, writeLen: 0 };
    let table = this.d;
    let entries = this.size;
    let indirect = false;
    let i = head;
    let seen = 0;
    for (;;) {
      this.host.spend(DESC_COST);
      if (++seen > entries) return this.broken(`${q}: chain at head ${head} is longer than its table (${entries} entries): a loop?`);
      const at = table + 16 * i;
      this.need(at, 16);
      const lo = this.view.getUint32(at, true);
      const hi = this.view.getUint32(at + 4, true);
      const len = this.view.getUint32(at + 8, true);
      const flags = this.u16(at + 12);
      const next = this.u16(at + 14);
      const addr = hi * 2 ** 32 + lo;
      if (flags & DESC_F_INDIRECT) {
        if (!(this.host.features() & F_INDIRECT_DESC)) return this.broken(`${q}: indirect descriptor without VIRTIO_F_INDIRECT_DESC`);
        if (indirect) return this.broken(`${q}: indirect descriptor inside an indirect table`);
        if (flags & DESC_F_NEXT) return this.broken(`${q}: indirect descriptor with NEXT set`);
        if (len === 0 || len % 16 !== 0) return this.broken(`${q}: indirect table length ${len} is not a non-zero multiple of 16`);
        if (len / 16 > Math.max(INDIRECT_MAX, this.size)) return this.broken(`${q}: indirect table of ${len / 16} entries is too long`);
        if (hi >= 0x20_0000 || !ram.contains(addr, len)) return this.broken(`${q}: indirect table at 0x${addr.toString(16)} (+${len}) is outside RAM`);
        table = addr - ram.base;
        entries = len / 16;
        indirect = true;
        seen = 0;
        i = 0;
        continue;
      }
      if (len > 0 && (hi >= 0x20_0000 || !ram.contains(addr, len))) {
        return this.broken(`${q}: buffer at 0x${((BigInt(hi) << 32n) | BigInt(lo)).toString(16)} (+${len}) is outside RAM`);
      }
      if (flags & DESC_F_WRITE) {
        chain.writable.push({ addr, len });
        chain.writeLen += len;
      } else {
        // §2.7.4.2: device-readable descriptors come before device-writable ones.
        if (chain.writable.length > 0) return this.broken(`${q}: device-readable descriptor after a device-writable one in the chain at head ${head}`);
        chain.readable.push({ addr, len });
        chain.readLen += len;
      }
      if (chain.readLen + chain.writeLen > CHAIN_BYTES_MAX) return this.broken(`${q}: chain at head ${head} holds more than 4 GiB`);
      if (!(flags & DESC_F_NEXT)) return chain;
      if (next >= entries) return this.broken(`${q}: next index ${next} is beyond the table (${entries} entries)`);
      i = next;
    }
  }

  /** Returns a chain to the driver with `written` bytes written into its writable part (§2.7.8). */
  push(chain: Chain, written: number): void {
    const k = this.inflight.indexOf(chain.head);
    if (k >= 0) this.inflight.splice(k, 1);
    if (!this.ready || !this.host.usable()) return;
    const slot = this.u + 4 + 8 * (this.usedIdx % this.size);
    this.need(slot, 8);
    this.view.setUint32(slot, chain.head, true);
    this.view.setUint32(slot + 4, Math.min(written, chain.writeLen), true);
    this.host.ram.commit(this.host.ram.base + slot, 8);
    if (this.batchStart < 0) this.batchStart = this.usedIdx;
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.setU16(this.u + 2, this.usedIdx);
  }

  /**
   * Whether the used entries added since the last call call for a used buffer notification
   * (§2.7.7): with EVENT_IDX, when the used idx passed used_event; otherwise unless the
   * driver set VIRTQ_AVAIL_F_NO_INTERRUPT.
   */
  needsNotification(): boolean {
    if (this.batchStart < 0) return false;
    const old = this.batchStart;
    this.batchStart = -1;
    if (!this.ready || !this.host.usable()) return false;
    if (this.eventIdx()) {
      const usedEvent = this.u16(this.a + 4 + 2 * this.size);
      return ((this.usedIdx - usedEvent - 1) & 0xffff) < ((this.usedIdx - old) & 0xffff);
    }
    return (this.u16(this.a) & AVAIL_F_NO_INTERRUPT) === 0;
  }

  save(): QueueState {
    return {
      size: this.size, ready: this.ready, desc: u64State(this.desc), driver: u64State(this.driver), device: u64State(this.device),
      lastAvail: this.lastAvail, usedIdx: this.usedIdx, inflight: [...this.replay, ...this.inflight],
    };
  }

  /** Restores from untrusted state; a ready queue must describe rings inside RAM. */
  restore(state: unknown, component: string): void {
    const r = new StateReader(`${component} queue ${this.index}`, state, ['size', 'ready', 'desc', 'driver', 'device', 'lastAvail', 'usedIdx', 'inflight']);
    // QueueNum is any 32-bit value until the queue is enabled (§4.2.2); check() vets a ready queue's.
    const size = r.uint('size', 0xffff_ffff);
    const ready = r.bool('ready');
    const desc = r.u64('desc');
    const driver = r.u64('driver');
    const device = r.u64('device');
    const lastAvail = r.uint('lastAvail', 0xffff);
    const usedIdx = r.uint('usedIdx', 0xffff);
    const inflight = r.uintArray('inflight', this.max, 0xffff, { upTo: true });
    if (!ready && inflight.length > 0) r.fail('a queue that is not ready has no chains in flight');
    inflight.forEach((h, i) => {
      if (h >= size) r.fail(`inflight[${i}] = ${h} is beyond the queue size ${size}`);
    });
    const saved = { size: this.size, desc: this.desc, driver: this.driver, device: this.device };
    Object.assign(this, { size, desc, driver, device });
    const err = ready ? this.check() : null;
    if (err) {
      Object.assign(this, saved);
      if (this.ready) this.check();
      r.fail(err);
    }
    this.ready = ready;
    this.lastAvail = lastAvail;
    this.usedIdx = usedIdx;
    this.inflight = [];
    this.replay = [...inflight];
    this.batchStart = -1;
  }
}
