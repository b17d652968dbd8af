/**
 * Guest physical RAM as the machine's loaders and firmware-level devices see it: byte and word
 * access by guest physical address, bounds-checked.
 */
import { RAM_BASE, RAM_HOST } from '../cpu/layout.ts';
import { VirtusError } from '../util/errors.ts';

export class GuestRam {
  readonly base = RAM_BASE;
  readonly size: number;
  /** The RAM bytes (a view into the machine's memory). */
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(memory: WebAssembly.Memory, size: number) {
    this.size = size;
    this.bytes = new Uint8Array(memory.buffer, RAM_HOST, size);
    this.view = new DataView(memory.buffer, RAM_HOST, size);
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
    return pa - RAM_BASE;
  }

  /** Copies `data` into RAM at guest physical `pa`. */
  load(pa: number, data: Uint8Array): void {
    this.bytes.set(data, this.off(pa, data.length));
  }

  /** Zero-fills [pa, pa + len). */
  zero(pa: number, len: number): void {
    const o = this.off(pa, len);
    this.bytes.fill(0, o, o + len);
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
  }
  readU64(pa: number): bigint {
    return this.view.getBigUint64(this.off(pa, 8), true);
  }
  writeU64(pa: number, v: bigint): void {
    this.view.setBigUint64(this.off(pa, 8), BigInt.asUintN(64, v), true);
  }
}
