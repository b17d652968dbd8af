/**
 * A read-only memory window (QEMU virt's MROM at 0x1000 holds the fw_dynamic information
 * OpenSBI reads at boot). Writes are ignored, as on ROM.
 */
import type { Device } from '../device.ts';
import { StateReader } from '../state.ts';

export class Rom implements Device {
  readonly size: number;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(readonly name: string, size: number) {
    this.size = size;
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Replaces the ROM's contents from offset `at` (host side only). */
  program(at: number, data: Uint8Array): void {
    this.bytes.fill(0);
    this.bytes.set(data, at);
  }

  read(offset: number, width: 1 | 2 | 4): number {
    if (width === 1) return this.bytes[offset]!;
    if (width === 2) return this.view.getUint16(offset, true);
    return this.view.getUint32(offset, true);
  }

  write(): void {}

  /** The contents up to the last non-zero byte, as hex. */
  save(): { data: string } {
    let n = this.bytes.length;
    while (n > 0 && this.bytes[n - 1] === 0) n--;
    return { data: Array.from(this.bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join('') };
  }

  restore(state: unknown): void {
    const r: StateReader = new StateReader(this.name, state, ['data']);
    const data = (state as { data: unknown }).data;
    if (typeof data !== 'string' || !/^([0-9a-f]{2})*$/.test(data) || data.length > 2 * this.size) {
      r.fail(`data must be hex of at most ${this.size} bytes`);
    }
    this.bytes.fill(0);
    for (let i = 0; i < data.length / 2; i++) this.bytes[i] = parseInt(data.slice(2 * i, 2 * i + 2), 16);
  }
}
