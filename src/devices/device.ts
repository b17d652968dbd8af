/**
 * The one interface every memory-mapped device implements. A device sees offsets inside its
 * own window, raises interrupts through an IrqLine, and never touches a hart or the interrupt
 * controller directly. Accesses are 1, 2 or 4 bytes and naturally aligned (the bus splits
 * 8-byte accesses into two 4-byte ones, low word first).
 */
export interface Device {
  /** Short name for statistics and the device tree (e.g. `uart0`). */
  readonly name: string;
  /** Size of the device's MMIO window in bytes. */
  readonly size: number;
  /** Reads `width` bytes at `offset`; returns the value zero-extended (unmapped registers read 0). */
  read(offset: number, width: 1 | 2 | 4): number;
  /** Writes the low `width` bytes of `value` at `offset`. */
  write(offset: number, width: 1 | 2 | 4, value: number): void;
  /** Returns the device to its power-on state. */
  reset?(): void;
}

/** An interrupt line from a device to an interrupt controller (level-triggered). */
export interface IrqLine {
  set(level: boolean): void;
}
