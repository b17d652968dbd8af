/**
 * A read-only memory window (QEMU virt's MROM at 0x1000 holds the fw_dynamic information
 * OpenSBI reads at boot). Writes are ignored, as on ROM.
 */
import type { Device } from '../device.ts';

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
}
