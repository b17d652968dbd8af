/**
 * Guest physical RAM as the machine's loaders and firmware-level devices see it: byte and word
 * access by guest physical address, bounds-checked.
 */
import { DIRTY_BITMAP, PAGE_SHIFT, RAM_BASE, RAM_HOST } from '../cpu/layout.ts';
import type { PageGate } from '../cpu/hart.ts';
import type { GuestMemory } from '../devices/memory.ts';
import { VirtusError } from '../util/errors.ts';

export class GuestRam implements GuestMemory {
  readonly base = RAM_BASE;
  readonly size: number;
  /** The RAM bytes (a view into the machine's memory). */
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly dirty: Uint8Array;
  /** Pages dirty before the last takeDirty() (so written() still knows every page ever written). */
  private readonly before: Uint8Array;
  /**
   * Called after every write made through this object (loaders, device DMA), with the guest
   * physical range written. The machine uses it to invalidate translated code.
   */
  onWrite: ((pa: number, len: number) => void) | null = null;
  /** Post-copy: the pages still to come (null: all of RAM is here). */
  gate: PageGate | null = null;

  constructor(memory: WebAssembly.Memory, size: number) {
    this.size = size;
    this.bytes = new Uint8Array(memory.buffer, RAM_HOST, size);
    this.view = new DataView(memory.buffer, RAM_HOST, size);
    this.dirty = new Uint8Array(memory.buffer, DIRTY_BITMAP, Math.ceil(size / 4096 / 8));
    this.before = new Uint8Array(this.dirty.length);
  }

  /**
   * The pages written since the last call (one bit per page), and a fresh start of the dirty
   * log. The caller must flush the harts' TLBs afterwards: a write TLB entry is only made for a
   * page already dirty, so stores through older entries would not be logged.
   */
  takeDirty(): Uint8Array {
    const d = this.dirty.slice();
    for (let i = 0; i < d.length; i++) this.before[i] = this.before[i]! | d[i]!;
    this.dirty.fill(0);
    return d;
  }

  /** True when page `p` (from the start of RAM) was ever written; otherwise it holds zeros. */
  pageWritten(p: number): boolean {
    return ((this.dirty[p >>> 3]! | this.before[p >>> 3]!) & (1 << (p & 7))) !== 0;
  }

  /** Every page ever written (loaders, DMA, guest stores), one bit per page: the rest is zeros. */
  written(): Uint8Array {
    const w = this.dirty.slice();
    for (let i = 0; i < w.length; i++) w[i] = w[i]! | this.before[i]!;
    return w;
  }

  /** Records a write of [pa, pa + len) in the dirty log and tells the machine. */
  private wrote(pa: number, len: number): void {
    if (len <= 0) return;
    const first = (pa - RAM_BASE) >>> PAGE_SHIFT;
    const last = (pa - RAM_BASE + len - 1) >>> PAGE_SHIFT;
    for (let p = first; p <= last; p++) this.dirty[p >>> 3] |= 1 << (p & 7);
    this.onWrite?.(pa, len);
  }

  /** True when [pa, pa + len) lies inside RAM. */
  contains(pa: number, len = 1): boolean {
    return pa >= RAM_BASE && pa + len <= RAM_BASE + this.size;
  }

  /** The end of RAM (exclusive), as a guest physical address. */
  get end(): number {
    return RAM_BASE + this.size;
  }

  private off(pa: number, len: number): number {
    if (!this.contains(pa, len)) {
      throw new VirtusError('RAM_RANGE', `address 0x${pa.toString(16)} (+${len}) is outside guest RAM`);
    }
    if (this.gate !== null && len > 0) this.gate.need(pa, len);
    return pa - RAM_BASE;
  }

  need(pa: number, len: number): void {
    if (this.gate !== null && len > 0 && this.contains(pa, len)) this.gate.need(pa, len);
  }

  /** Marks the pages set in `bits` written (post-copy: pages that arrived outside this object). */
  markWritten(bits: Uint8Array): void {
    for (let i = 0; i < bits.length; i++) this.dirty[i] = this.dirty[i]! | bits[i]!;
  }

  /** Copies `data` into RAM at guest physical `pa`. */
  load(pa: number, data: Uint8Array): void {
    this.bytes.set(data, this.off(pa, data.length));
    this.wrote(pa, data.length);
  }

  /** Zero-fills [pa, pa + len). */
  zero(pa: number, len: number): void {
    const o = this.off(pa, len);
    this.bytes.fill(0, o, o + len);
    this.wrote(pa, len);
  }

  /** A copy of [pa, pa + len). */
  read(pa: number, len: number): Uint8Array {
    const o = this.off(pa, len);
    return this.bytes.slice(o, o + len);
  }

  readU32(pa: number): number {
    return this.view.getUint32(this.off(pa, 4), true);
  }
  writeU32(pa: number, v: number): void {
    this.view.setUint32(this.off(pa, 4), v >>> 0, true);
    this.wrote(pa, 4);
  }
  readU64(pa: number): bigint {
    return this.view.getBigUint64(this.off(pa, 8), true);
  }
  writeU64(pa: number, v: bigint): void {
    this.view.setBigUint64(this.off(pa, 8), BigInt.asUintN(64, v), true);
    this.wrote(pa, 8);
  }

  /**
   * A writable view of [pa, pa + len) for a device that fills guest memory in place (DMA).
   * Call `commit` afterwards so the write reaches the dirty log.
   */
  window(pa: number, len: number): Uint8Array {
    const o = this.off(pa, len);
    return this.bytes.subarray(o, o + len);
  }

  /** Records that a device wrote [pa, pa + len) through window(). */
  commit(pa: number, len: number): void {
    this.off(pa, len);
    this.wrote(pa, len);
  }
}
