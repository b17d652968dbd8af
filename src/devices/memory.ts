/**
 * Guest physical memory as devices see it: DMA by guest physical address, bounds-checked,
 * with every write recorded (the dirty log for migration, invalidation of translated code).
 * The machine's RAM (machine/ram.ts) implements it; devices depend on this interface only,
 * never on the machine.
 */

/** What a device may do with guest RAM. Addresses are guest physical; out-of-range access throws a VirtusError('RAM_RANGE'). */
export interface GuestMemory {
  /** First guest physical address of RAM. */
  readonly base: number;
  /** RAM size in bytes. */
  readonly size: number;
  /** The RAM bytes, from `base` (for fast paths that bounds-check themselves; writes must be committed). */
  readonly bytes: Uint8Array;
  /** True when [pa, pa + len) lies inside RAM. */
  contains(pa: number, len?: number): boolean;
  /** A copy of [pa, pa + len). */
  read(pa: number, len: number): Uint8Array;
  /** Copies `data` into RAM at `pa`. */
  load(pa: number, data: Uint8Array): void;
  readU32(pa: number): number;
  writeU32(pa: number, v: number): void;
  readU64(pa: number): bigint;
  writeU64(pa: number, v: bigint): void;
  /** A writable view of [pa, pa + len) for DMA in place; call commit() after writing through it. */
  window(pa: number, len: number): Uint8Array;
  /** Records that [pa, pa + len) was written through window(). */
  commit(pa: number, len: number): void;
  /**
   * Waits until [pa, pa + len) is present (a machine received by post-copy migration fetches
   * RAM as it is touched): call before touching `bytes` directly. Every other method waits itself.
   */
  need(pa: number, len: number): void;
}
