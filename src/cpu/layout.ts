/**
 * The one place that says where everything lives in the machine's WebAssembly.Memory.
 * The TypeScript interpreter and the generated WebAssembly both address state through these
 * offsets, so they agree by construction.
 *
 *   0x0000_0000  reserved (a page of zeros: a null host offset never aliases state)
 *   0x0001_0000  hart 0 block, then hart 1, ... (HART_BLOCK bytes each, MAX_HARTS of them)
 *   0x0030_0000  shared machine tables: RAM dirty bitmap, translator tables, page flags, the
 *                harts' thread control block
 *   0x0100_0000  guest RAM (guest physical RAM_BASE maps here)
 */

/** Guest physical address of the first byte of RAM on every board we model (QEMU virt, spike). */
export const RAM_BASE = 0x8000_0000;
/** Host byte offset of guest RAM inside the memory. */
export const RAM_HOST = 0x0100_0000;
/** Largest guest RAM the layout supports (keeps the whole memory under 4 GiB). */
export const RAM_MAX = 3 * 1024 * 1024 * 1024;
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

export const MAX_HARTS = 8;
export const HART_BASE = 0x0001_0000;
export const HART_BLOCK = 0x0004_0000;

/** RAM dirty bitmap: one bit per 4 KiB page of RAM_MAX (migration, snapshots). */
export const DIRTY_BITMAP = 0x0030_0000;
export const DIRTY_BITMAP_BYTES = RAM_MAX / PAGE_SIZE / 8;
/** Area the translator may use for its own tables. */
export const JIT_AREA = DIRTY_BITMAP + DIRTY_BITMAP_BYTES;
export const JIT_AREA_END = RAM_HOST;
/**
 * The translator's jump cache, one per hart (src/jit/trampoline.ts): JUMP_CACHE_ENTRIES
 * entries of 16 bytes (virtual pc i64, generation << 2 | privilege i32, region slot << 12 |
 * block index i32).
 */
export const JUMP_CACHE_ENTRIES = 16384;
export const JUMP_CACHE_BYTES = JUMP_CACHE_ENTRIES * 16;
export function jumpCacheBase(hart: number): number {
  return JIT_AREA + hart * JUMP_CACHE_BYTES;
}
/**
 * A second-level data TLB per hart, behind the TLB of the hart block: translated code that
 * misses there looks here before it asks the page-table walk (src/jit/emit-mem.ts). It holds
 * the 4 KiB load and store translations fillTlb made since it was last voided, so it covers
 * 256 MiB where the first level covers 4 MiB (a sweep over a large array misses the first
 * level on every page). Word 0 is its generation (entries of another are void); then
 * TLB2_ENTRIES entries of 16 bytes, direct-mapped by the virtual page: the page | MMU index
 * (i64), the TLB addend (i32), generation << 2 | store allowed << 1 | load allowed (i32).
 */
export const TLB2_ENTRIES = 65536;
export const TLB2_HEADER = 16;
export const TLB2_BYTES = TLB2_HEADER + TLB2_ENTRIES * 16;
export function tlb2Base(hart: number): number {
  return jumpCacheBase(MAX_HARTS) + hart * TLB2_BYTES;
}
/**
 * The machine's flags per RAM page (PAGE_WATCH, PAGE_CODE in hart.ts), one byte per 4 KiB page
 * of RAM_MAX: in the memory, so that harts in other threads share them. Updates that may race
 * between threads are Atomics.or / Atomics.and on them.
 */
export const PAGE_FLAGS = tlb2Base(MAX_HARTS);
export const PAGE_FLAGS_BYTES = RAM_MAX / PAGE_SIZE;
/** The page flags of a machine with `ramSize` bytes of RAM in `memory`. */
export function pageFlagsView(memory: WebAssembly.Memory, ramSize: number): Uint8Array {
  return new Uint8Array(memory.buffer, PAGE_FLAGS, Math.ceil(ramSize / PAGE_SIZE));
}

/** The control block of harts in host threads (machine/smp-shared.ts), SMP_BYTES long. */
export const SMP_AREA = PAGE_FLAGS + PAGE_FLAGS_BYTES;
export const SMP_BYTES = 0x4_0000;

// ---- Inside a hart block (byte offsets from the block start) ----

/** x0..x31, then a write-only sink register x32 that instructions with rd = x0 write to. */
export const X_OFF = 0x000;
export const X_SINK = 32;
/** f0..f31, each 64 bits (single-precision values NaN-boxed). */
export const F_OFF = 0x110;
export const PC_OFF = 0x210;

/**
 * Named 64-bit state slots after the pc, in this order. Everything a hart holds besides its
 * registers and its TLB is one of these, so saving a hart is naming these slots.
 */
export const SLOTS = [
  'priv', // current privilege level (0 U, 1 S, 3 M)
  'mstatus', 'misa', 'medeleg', 'mideleg', 'mie', 'mip', 'mtvec', 'mscratch', 'mepc', 'mcause',
  'mtval', 'mcounteren', 'menvcfg', 'mcountinhibit', 'mhartid',
  'stvec', 'sscratch', 'sepc', 'scause', 'stval', 'scounteren', 'senvcfg', 'satp', 'stimecmp',
  'fcsr',
  'minstret', // instructions this hart has retired since reset: the engines count here, the guest never writes it
  'mcycle', // the mcycle CSR as an offset from minstret, or its frozen value while mcountinhibit.CY is set (csr.ts)
  'instretOffset', // the minstret CSR likewise, with mcountinhibit.IR
  'pmpcfg0', 'pmpcfg2',
  'pmpaddr0', 'pmpaddr1', 'pmpaddr2', 'pmpaddr3', 'pmpaddr4', 'pmpaddr5', 'pmpaddr6', 'pmpaddr7',
  'pmpaddr8', 'pmpaddr9', 'pmpaddr10', 'pmpaddr11', 'pmpaddr12', 'pmpaddr13', 'pmpaddr14', 'pmpaddr15',
  'resValid', // LR reservation held (0/1)
  'resAddr', // reserved physical address
  'mipLines', // pending bits driven by devices (MSIP, MTIP, MEIP, SEIP) rather than software
  'wfi', // 1 while the hart waits for an interrupt
  'tlbGen', // bumped on every TLB flush (the translator checks it)
  'dtlb', // byte offset (from the hart block) of the TLB of the current data MMU index
  'jcGen', // the translator's jump cache generation (entries of other generations are void)
  'jcHits', // regions entered from the jump cache without returning to the engine (--stats)
  'resValue', // the value LR loaded (a word zero-extended): SC stores only if memory still holds it
] as const;
export type Slot = (typeof SLOTS)[number];

export const SLOT_OFF = 0x220;
/** Byte offset of a named slot within a hart block. */
export function slotOffset(s: Slot): number {
  return SLOT_OFF + 8 * SLOTS.indexOf(s);
}

/**
 * Software TLB (Privileged spec ch. 12 leaves caching to the implementation). Direct-mapped,
 * one table per MMU index so privilege changes need no flush. An entry is four 64-bit fields:
 * a read, a write and an exec tag (the page-aligned virtual address an access of that kind may
 * use the entry for, or TLB_INVALID) and the addend (host offset minus virtual address: host =
 * va + addend, mod 2^32).
 * A tag matches only when the access may proceed on the fast path: a write tag is filled only
 * once the page is dirty in the PTE and its RAM page is marked dirty, so stores that must be
 * noticed (dirty tracking, pages holding translated code) always take the slow path.
 */
export const TLB_OFF = 0x1000;
export const TLB_ENTRIES = 1024;
/** An entry's size in bytes, and its log2. */
export const TLB_ENTRY = 32;
export const TLB_ENTRY_SHIFT = 5;
/** Byte offsets of an entry's fields. */
export const TLB_READ = 0;
export const TLB_WRITE = 8;
export const TLB_EXEC = 16;
export const TLB_ADDEND = 24;
/**
 * The same in 32-bit words, as TypeScript indexes the TLB (`Hart.tlb`, an Int32Array): an entry
 * is TLB_WORDS words, and each field's low half is at the index given, its high half next.
 */
export const TLB_WORDS = TLB_ENTRY / 4;
export const TLBW_READ = TLB_READ / 4;
export const TLBW_WRITE = TLB_WRITE / 4;
export const TLBW_EXEC = TLB_EXEC / 4;
export const TLBW_ADDEND = TLB_ADDEND / 4;
export const MMU_U = 0;
export const MMU_S = 1;
export const MMU_S_SUM = 2;
export const MMU_M = 3;
export const MMU_COUNT = 4;
/** An odd tag never equals a page-aligned address. */
export const TLB_INVALID = 1;
export const TLB_BYTES = MMU_COUNT * TLB_ENTRIES * TLB_ENTRY;

if (SLOT_OFF + 8 * SLOTS.length > TLB_OFF) throw new Error('layout: hart slots overlap the TLB');
if (1 << TLB_ENTRY_SHIFT !== TLB_ENTRY) throw new Error('layout: TLB_ENTRY_SHIFT is not log2(TLB_ENTRY)');
if (TLB_OFF + TLB_BYTES > HART_BLOCK) throw new Error('layout: TLB does not fit in the hart block');
if (HART_BASE + MAX_HARTS * HART_BLOCK > DIRTY_BITMAP) throw new Error('layout: hart blocks overlap the tables');
if (SMP_AREA + SMP_BYTES > JIT_AREA_END) throw new Error('layout: machine tables overlap RAM');

/** Host offset of hart `i`'s block. */
export function hartBase(i: number): number {
  return HART_BASE + i * HART_BLOCK;
}

/** Bytes of WebAssembly memory for a machine with `ramBytes` of RAM. */
export function memoryBytes(ramBytes: number): number {
  return RAM_HOST + ramBytes;
}
