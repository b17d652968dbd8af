/**
 * The Virtual Machine Generation ID (Microsoft's VMGenID specification, as Linux's `vmgenid`
 * driver reads it through the `microsoft,vmgenid` device-tree binding): 16 read-only bytes
 * holding a 128-bit identifier, and an interrupt that says it changed. The monitor gives a
 * machine a new identifier whenever it becomes a copy that may run beside its original (a
 * restored snapshot, a clone), so the guest's kernel reseeds its random number generator
 * instead of repeating its original's numbers.
 */
import type { Device, IrqLine } from '../device.ts';
import { VirtusError } from '../../util/errors.ts';

/** The MMIO window (the identifier is its first 16 bytes). */
export const VMGENID_SIZE = 0x1000;
/** Bytes of the identifier. */
export const VMGENID_BYTES = 16;

/** A random identifier (RFC 4122 version 4, as QEMU's guid=auto makes one). */
export function randomGenerationId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The identifier's bytes as the guest reads them: a GUID in Microsoft's layout (the first
 * three fields little-endian, as QEMU's vmgenid stores it).
 */
function guidBytes(guid: string): Uint8Array {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(guid)) {
    throw new VirtusError('BAD_GUID', `${guid} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`);
  }
  const h = guid.replace(/-/g, '');
  const b = Uint8Array.from({ length: 16 }, (_, i) => parseInt(h.slice(2 * i, 2 * i + 2), 16));
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

export class VmGenId implements Device {
  readonly name = 'vmgenid';
  readonly size = VMGENID_SIZE;
  private bytes: Uint8Array;
  private id: string;

  constructor(
    private readonly irq: IrqLine,
    guid: string,
  ) {
    this.id = guid;
    this.bytes = guidBytes(guid);
  }

  /** The identifier, in the form QMP's query-vm-generation-id answers. */
  get guid(): string {
    return this.id;
  }

  /** Gives the machine a new identifier and tells the guest (an edge on its interrupt). */
  renew(guid: string): void {
    this.bytes = guidBytes(guid);
    this.id = guid;
    this.irq.set(true);
    this.irq.set(false);
  }

  read(offset: number, width: 1 | 2 | 4): number {
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = v * 256 + (offset + i < VMGENID_BYTES ? this.bytes[offset + i]! : 0);
    return v;
  }

  write(): void {
    // Read-only: the guest cannot choose its own generation.
  }
}
