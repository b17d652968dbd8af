/**
 * One RISC-V hart: its architectural state, which lives in the machine's WebAssembly.Memory at
 * the offsets of layout.ts, plus trap entry, interrupt selection and xRET (Privileged spec ch. 3, 4).
 * Instruction execution lives in interp.ts; CSR access in csr.ts; address translation in mmu.ts.
 */
import {
  F_OFF, hartBase, MMU_COUNT, MMU_M, MMU_S, MMU_S_SUM, MMU_U, PC_OFF, RAM_BASE, RAM_HOST, SLOT_OFF, SLOTS,
  TLB2_BYTES, TLB2_ENTRIES, TLB2_HEADER, tlb2Base, TLB_ENTRIES, TLB_INVALID, TLB_OFF, TLB_WORDS, TLBW_ADDEND, X_OFF, type Slot,
} from './layout.ts';
import { emptyPmp, rebuildPmp, type PmpTable } from './pmp.ts';
import {
  IRQ_PRIORITY, MIP_STIP, MISA_EXTENSIONS, MSTATUS_FS, MSTATUS_HI_SD, MSTATUS_HI_XL, MSTATUS_MIE, MSTATUS_MPIE,
  MSTATUS_MPP, MSTATUS_MPRV, MSTATUS_MXR, MSTATUS_SIE, MSTATUS_SPIE, MSTATUS_SPP, MSTATUS_SUM,
} from './csr-numbers.ts';

/** Privilege levels (Privileged spec 1.2). */
export const PRIV_U = 0;
export const PRIV_S = 1;
export const PRIV_M = 3;

/**
 * Physical address space outside RAM, as the hart sees it. Reads return NaN when no device
 * answers (an access fault); writes return false.
 */
export interface PhysBus {
  read(pa: number, size: 1 | 2 | 4): number;
  write(pa: number, size: 1 | 2 | 4, value: number): boolean;
}

/** Hooks a machine installs on its harts. */
export interface HartHooks {
  /** Current value of the machine timer (the `time` CSR), in ticks. */
  time(): number;
  /**
   * Called after a store to a RAM page flagged PAGE_WATCH (see pageFlags): HTIF's tohost,
   * for example, is a watched RAM location rather than a device.
   */
  ramWatch?(pa: number, size: number): void;
  /**
   * Called for a trap that would enter M-mode. Returns true when the monitor handled it itself
   * (the built-in SBI firmware does so for ecalls from S-mode); the hart then does not trap.
   * `tvalLo`/`tvalHi` are what mtval would receive (the faulting address of a page fault).
   */
  machineTrap?(hart: Hart, cause: number, interrupt: boolean, tvalLo: number, tvalHi: number): boolean;
  /**
   * FENCE.I on this hart (harts in host threads: it serves the requests other harts left it).
   * Returns true when translated code was dropped.
   */
  fenceI?(): boolean;
}

/** Index of each named slot in `Hart.s` (low half at the index, high half at index + 1). */
export const S = Object.freeze(Object.fromEntries(SLOTS.map((n, i) => [n, i * 2]))) as Readonly<Record<Slot, number>>;

const S_MSTATUS = S.mstatus;

export interface HartOptions {
  id: number;
  memory: WebAssembly.Memory;
  ramSize: number;
  bus: PhysBus;
  hooks: HartHooks;
  /** Per-RAM-page flags shared by all harts of a machine (PAGE_WATCH, PAGE_CODE). */
  pageFlags: Uint8Array;
  /**
   * Take the hart's state as its block in the memory holds it (a hart that another thread made
   * and set up) instead of resetting it; only the derived state (PMP table, TLB) is rebuilt.
   */
  attach?: boolean;
  /**
   * A view of a hart another thread runs (machine/hart-thread.ts: the translator scrubs every
   * hart's write TLB entries for a page that gets code): the constructor writes nothing, not
   * even the TLB, which its owner may be filling at that moment.
   */
  peer?: boolean;
}

/**
 * The interpreter's decode cache, laid out by RAM page so that consecutive instructions sit
 * next to each other: per page, four words per halfword offset (the instruction bits, the
 * handler's index, and its operands `a` and `imm`). Pages live in slots of one pool allocated
 * once (its memory is touched only as slots fill), handed out in turn: when every slot is taken,
 * the page that got its slot longest ago loses it. Entries are checked against the bits
 * fetched, and an entry's contents depend on those bits alone, so neither a page written nor a
 * slot reused is ever cleared. A fixed pool keeps a machine's memory bounded: pages allocated
 * one by one and dropped whole churned through 190 MiB of host memory a boot.
 */
export interface DecodedPages {
  /** The slot's view of each RAM page that has one. */
  pages: (Int32Array | undefined)[];
  /** DECODED_SLOTS slots of DECODED_SLOT_WORDS words, made on first use. */
  pool: Int32Array | null;
  /** The RAM page each slot holds, -1 for none. */
  owner: Int32Array;
  /** The slot handed out next. */
  next: number;
}

/** Slots of the decode cache (32 KiB each: 8 MiB a hart at most). */
export const DECODED_SLOTS = 256;
/** Words of one slot: four per halfword of a 4 KiB page. */
export const DECODED_SLOT_WORDS = 8192;

/** An empty decode cache for `ramSize` bytes of RAM (a dense array: lookups stay fast). */
export function decodedPages(ramSize: number): DecodedPages {
  return {
    pages: new Array<Int32Array | undefined>(Math.ceil(ramSize / 4096)).fill(undefined),
    pool: null,
    owner: new Int32Array(DECODED_SLOTS).fill(-1),
    next: 0,
  };
}

/** The decode cache's page for RAM page `ramPage`, taking the next slot when it has none. */
export function decodedSlot(pd: DecodedPages, ramPage: number): Int32Array {
  const slot = pd.next;
  pd.next = (slot + 1) % DECODED_SLOTS;
  const old = pd.owner[slot]!;
  if (old >= 0) pd.pages[old] = undefined;
  pd.owner[slot] = ramPage;
  pd.pool ??= new Int32Array(DECODED_SLOTS * DECODED_SLOT_WORDS);
  const d = pd.pool.subarray(slot * DECODED_SLOT_WORDS, (slot + 1) * DECODED_SLOT_WORDS);
  pd.pages[ramPage] = d;
  return d;
}

/** Forgets every page of the decode cache (the pool stays, for the pages to come). */
export function clearDecoded(pd: DecodedPages): void {
  pd.pages.fill(undefined);
  pd.owner.fill(-1);
  pd.next = 0;
}

/** A RAM page whose stores the machine must see (HTIF tohost). */
export const PAGE_WATCH = 1;
/** A RAM page holding translated code (stores must invalidate translations). */
export const PAGE_CODE = 2;

/** Size of Hart.jcPages (a power of two). */
export const JC_PAGES = 4096;

/**
 * Post-copy migration (machine/migrate-postcopy.ts): RAM pages that have not arrived yet. A
 * hart asks before it touches RAM outside its TLB, so a missing page never gets an entry.
 */
export interface PageGate {
  /** Returns once every RAM page of guest physical [pa, pa + len) is present, waiting for them; throws a VirtusError when they never will. */
  need(pa: number, len: number): void;
}

export class Hart {
  readonly id: number;
  /** Host byte offset of this hart's block in the memory. */
  readonly base: number;
  readonly memory: WebAssembly.Memory;
  readonly ramSize: number;
  readonly bus: PhysBus;
  readonly hooks: HartHooks;
  /** Flags per 4 KiB page of RAM; a page with any flag never gets a fast-path write TLB entry. */
  readonly pageFlags: Uint8Array;
  /** The interpreter's decode cache. */
  readonly decoded: DecodedPages;
  /** x0..x31 and the sink x32 as 32-bit halves: x[2r] low, x[2r+1] high. */
  readonly x: Int32Array;
  /** f0..f31 as 32-bit halves. */
  readonly f: Int32Array;
  /** pc as 32-bit halves. */
  readonly pc: Int32Array;
  /** Named slots (priv, CSRs, reservation...) as 32-bit halves, indexed by S. */
  readonly s: Int32Array;
  /** The software TLB of every MMU index, as 32-bit words. */
  readonly tlb: Int32Array;
  /** The second-level data TLB (layout.ts), as 32-bit words: the generation, then the entries. */
  readonly tlb2: Int32Array;
  /** Whether the second-level TLB is in use (enableTlb2). */
  private tlb2On = false;
  /** Views of the whole memory (guest RAM at RAM_HOST). */
  readonly m8: Uint8Array;
  readonly m16: Uint16Array;
  readonly m32: Int32Array;
  /** The whole memory as 64-bit words, for 64-bit atomics (Atomics on BigInt64Array). */
  readonly m64: BigInt64Array;
  /**
   * The whole memory as doubles: copying an element of it to another is one 8-byte load and
   * one 8-byte store, the bits kept as they are (NaNs too), so the interpreter's aligned 64-bit
   * accesses are single-copy atomic when other harts run in other threads (readWord64).
   */
  readonly f64: Float64Array;
  /**
   * TLB entries made from superpage mappings: each entry's span (0 for a 4 KiB page) and the
   * virtual base of its superpage. An address-specific SFENCE.VMA must drop every 4 KiB piece
   * of a superpage containing the address, wherever the pieces sit in the TLB.
   */
  private readonly tlbSpan = new Float64Array(MMU_COUNT * TLB_ENTRIES);
  private readonly tlbSpanBase = new Float64Array(MMU_COUNT * TLB_ENTRIES);
  /** Bounds of every superpage behind a TLB entry since the last full flush. */
  private superLo = Infinity;
  private superHi = -Infinity;
  /**
   * Virtual pages (by their low bits) the translator's jump cache may hold entry points in; it
   * marks them as it fills the cache. A one-page flush elsewhere leaves the cache valid.
   */
  readonly jcPages = new Uint8Array(JC_PAGES);
  private superEntries = 0;
  /** Decoded PMP entries (derived from the pmpcfg/pmpaddr slots; see pmp.ts). */
  readonly pmp: PmpTable = emptyPmp();
  /** Counts of traps by cause and interrupts by number since start (for --stats). */
  readonly trapCounts = new Map<number, number>();
  readonly irqCounts = new Map<number, number>();
  /** Post-copy: the pages still to come (null: all of RAM is here). */
  gate: PageGate | null = null;

  constructor(o: HartOptions) {
    this.id = o.id;
    this.base = hartBase(o.id);
    this.memory = o.memory;
    this.ramSize = o.ramSize;
    this.bus = o.bus;
    this.hooks = o.hooks;
    this.pageFlags = o.pageFlags;
    this.decoded = decodedPages(o.ramSize);
    const buf = o.memory.buffer;
    this.x = new Int32Array(buf, this.base + X_OFF, 66);
    this.f = new Int32Array(buf, this.base + F_OFF, 64);
    this.pc = new Int32Array(buf, this.base + PC_OFF, 2);
    this.s = new Int32Array(buf, this.base + SLOT_OFF, SLOTS.length * 2);
    this.tlb = new Int32Array(buf, this.base + TLB_OFF, MMU_COUNT * TLB_ENTRIES * TLB_WORDS);
    this.tlb2 = new Int32Array(buf, tlb2Base(o.id), TLB2_BYTES / 4);
    this.m8 = new Uint8Array(buf);
    this.m16 = new Uint16Array(buf);
    this.m32 = new Int32Array(buf);
    this.m64 = new BigInt64Array(buf, 0, buf.byteLength >>> 3);
    this.f64 = new Float64Array(buf, 0, buf.byteLength >>> 3);
    if (o.peer) return; // another thread runs this hart: its TLB and slots are that thread's
    if (o.attach) this.stateChanged();
    else this.reset();
  }

  /** Puts the hart in its reset state (Privileged spec 3.4): M-mode, interrupts off, paging off. */
  reset(): void {
    this.x.fill(0);
    this.f.fill(0);
    this.pc.fill(0);
    this.s.fill(0);
    this.set('priv', PRIV_M, 0);
    this.set('mstatus', 0, MSTATUS_HI_XL);
    this.set('misa', MISA_EXTENSIONS, 0x8000_0000 | 0);
    this.set('mhartid', this.id, 0);
    this.stateChanged();
  }

  /** Rebuilds derived state after the slots were written wholesale (reset, restore). */
  stateChanged(): void {
    rebuildPmp(this);
    this.flushTlb();
  }

  get(slot: Slot): number {
    return this.s[S[slot]]!;
  }
  getHi(slot: Slot): number {
    return this.s[S[slot] + 1]!;
  }
  /** A slot's full value as a Number (exact below 2^53). */
  getNum(slot: Slot): number {
    return (this.s[S[slot] + 1]! >>> 0) * 0x1_0000_0000 + (this.s[S[slot]]! >>> 0);
  }
  set(slot: Slot, lo: number, hi: number): void {
    this.s[S[slot]] = lo;
    this.s[S[slot] + 1] = hi;
  }
  setNum(slot: Slot, v: number): void {
    this.set(slot, v % 0x1_0000_0000 | 0, Math.floor(v / 0x1_0000_0000) | 0);
  }

  get priv(): number {
    return this.s[S.priv]!;
  }

  /** pc as a BigInt (for tools and messages; never on a hot path). */
  get pcBig(): bigint {
    return BigInt.asUintN(64, (BigInt(this.pc[1]!) << 32n) | BigInt(this.pc[0]! >>> 0));
  }
  setPc(lo: number, hi: number): void {
    this.pc[0] = lo;
    this.pc[1] = hi;
  }
  /** Sets the pc from a Number address (sign-extending from bit 63 is the caller's concern). */
  setPcNum(v: number): void {
    this.setPc(v % 0x1_0000_0000 | 0, Math.floor(v / 0x1_0000_0000) | 0);
  }

  /** Register x`r` as an unsigned BigInt (tools and tests only). */
  xBig(r: number): bigint {
    return BigInt.asUintN(64, (BigInt(this.x[2 * r + 1]!) << 32n) | BigInt(this.x[2 * r]! >>> 0));
  }
  setX(r: number, v: bigint): void {
    if (r === 0) return;
    this.x[2 * r] = Number(BigInt.asIntN(32, v));
    this.x[2 * r + 1] = Number(BigInt.asIntN(32, v >> 32n));
  }

  /** Host byte offset of guest physical address `pa` when it is in RAM, else -1 (post-copy: once its pages are here). */
  ramOffset(pa: number, size = 1): number {
    const o = pa - RAM_BASE;
    if (o < 0 || o + size > this.ramSize) return -1;
    if (this.gate !== null) this.gate.need(pa, size);
    return RAM_HOST + o;
  }

  /** Guest physical address of RAM host offset `o`. */
  ramPa(o: number): number {
    return o - RAM_HOST + RAM_BASE;
  }

  /** MMU index for instruction fetch at the current privilege. */
  fetchMmu(): number {
    const p = this.priv;
    return p === PRIV_M ? MMU_M : p === PRIV_S ? MMU_S : MMU_U;
  }

  /** MMU index for loads and stores: honours MPRV (3.1.6.3) and SUM. */
  dataMmu(): number {
    let p = this.priv;
    const ms = this.s[S.mstatus]!;
    if (p === PRIV_M && ms & MSTATUS_MPRV) p = (ms & MSTATUS_MPP) >>> 11;
    if (p === PRIV_M) return MMU_M;
    if (p === PRIV_S) return ms & MSTATUS_SUM ? MMU_S_SUM : MMU_S;
    return MMU_U;
  }

  /** Empties every TLB (satp write, SFENCE.VMA without address, MXR change, dirty-log reset). */
  flushTlb(): void {
    this.tlb.fill(TLB_INVALID);
    this.voidTlb2();
    if (this.superEntries) this.tlbSpan.fill(0);
    this.superEntries = 0;
    this.superLo = Infinity;
    this.superHi = -Infinity;
    this.codeGone();
  }

  /**
   * Turns the second-level TLB on (it starts off: generation 0, which fillTlb does not fill).
   * Only for a hart whose page tables no guest code can write and whose every PTE change is
   * followed by a flush, as under the process VM (src/exec/): there a translation served from
   * the second level is what a walk would give. On a machine whose guest keeps its own page
   * tables, a PTE changed without SFENCE.VMA may be seen late, which the spec allows but which
   * would make the translator (the only reader) differ from the interpreter, which walks on
   * every first-level miss: engines must agree exactly.
   */
  enableTlb2(): void {
    this.tlb2On = true;
    this.voidTlb2();
  }

  /**
   * Voids the second-level TLB when it is on: every entry of the old generation (a full flush,
   * or a page that must see every store from now on). Generation 0 is never current.
   */
  voidTlb2(): void {
    if (!this.tlb2On) return;
    // Atomic: another thread's engine voids this hart's second level when a page gets code.
    const g = Atomics.add(this.tlb2, 0, 1) + 1;
    if (g < 1 << 29) return;
    this.tlb2.fill(0);
    this.tlb2[0] = 1;
  }

  /** Translations may have changed under code the translator chains to: it must look again. */
  codeGone(): void {
    this.s[S.tlbGen] = (this.s[S.tlbGen]! + 1) | 0;
    this.jcPages.fill(0);
  }

  /** Records the mapping size behind TLB entry `i` (see fillTlb). */
  noteSpan(i: number, vaLo: number, vaHi: number, span: number): void {
    const was = this.tlbSpan[i]!;
    if (span <= 4096) {
      if (was) {
        this.tlbSpan[i] = 0;
        this.superEntries--;
      }
      return;
    }
    if (!was) this.superEntries++;
    const va = vaHi * 0x1_0000_0000 + (vaLo >>> 0);
    const base = va - (((va % span) + span) % span);
    this.tlbSpan[i] = span;
    this.tlbSpanBase[i] = base;
    if (base < this.superLo) this.superLo = base;
    if (base + span > this.superHi) this.superHi = base + span;
  }

  /**
   * Removes the translations of one virtual address from every TLB (SFENCE.VMA with rs1): its
   * own page's entries, and every piece of a superpage that contains it.
   */
  flushTlbPage(vaLo: number, vaHi: number): void {
    const idx = (vaLo >>> 12) & (TLB_ENTRIES - 1);
    for (let m = 0; m < MMU_COUNT; m++) this.dropEntry(m * TLB_ENTRIES + idx);
    // The second level holds no superpage: the page's own slot, whatever it holds, goes.
    this.tlb2[TLB2_HEADER / 4 + ((vaLo >>> 12) & (TLB2_ENTRIES - 1)) * 4 + 3] = 0;
    // The page the hart executes from, or one the translator may chain to, makes engines look again.
    let chained = this.jcPages[(vaLo >>> 12) & (JC_PAGES - 1)] !== 0 ||
      (((vaLo ^ this.pc[0]!) & ~0xfff) === 0 && vaHi === this.pc[1]);
    const va = vaHi * 0x1_0000_0000 + (vaLo >>> 0);
    // Linux flushes one page after each PTE change, and its linear map fills the TLB with pieces
    // of superpages: only an address inside their bounds needs the search.
    if (this.superEntries && va >= this.superLo && va < this.superHi) {
      for (let i = 0; i < MMU_COUNT * TLB_ENTRIES; i++) {
        const span = this.tlbSpan[i]!;
        if (span && va >= this.tlbSpanBase[i]! && va < this.tlbSpanBase[i]! + span) {
          this.dropEntry(i);
          chained = true;
        }
      }
    }
    if (chained) this.codeGone();
  }

  private dropEntry(i: number): void {
    const e = i * TLB_WORDS;
    this.tlb.fill(TLB_INVALID, e, e + TLBW_ADDEND); // the tags, which precede the addend
    if (this.tlbSpan[i]) {
      this.tlbSpan[i] = 0;
      this.superEntries--;
    }
  }

  /** mstatus with the SD summary bit computed (FS or XS dirty). */
  mstatusRead(): [number, number] {
    const lo = this.s[S.mstatus]!;
    let hi = MSTATUS_HI_XL;
    if ((lo & MSTATUS_FS) === MSTATUS_FS) hi |= MSTATUS_HI_SD;
    return [lo, hi];
  }

  /** Marks the FP state dirty (any write to an f register or fflags, Unprivileged 21.2 / Priv 3.1.6.6). */
  fsDirty(): void {
    this.s[S_MSTATUS] = this.s[S_MSTATUS]! | MSTATUS_FS;
  }

  /** Takes an exception or interrupt: updates the trap CSRs and redirects the pc (Privileged 3.1.6.1, 4.1.1). */
  trap(cause: number, interrupt: boolean, tvalLo: number, tvalHi: number): void {
    const counts = interrupt ? this.irqCounts : this.trapCounts;
    counts.set(cause, (counts.get(cause) ?? 0) + 1);
    const priv = this.priv;
    const bit = 1 << cause;
    const deleg = interrupt ? this.s[S.mideleg]! : this.s[S.medeleg]!;
    const toS = priv <= PRIV_S && (deleg & bit) !== 0;
    if (!toS && this.hooks.machineTrap?.(this, cause, interrupt, tvalLo, tvalHi)) return;
    const pcLo = this.pc[0]!;
    const pcHi = this.pc[1]!;
    const causeHi = interrupt ? 0x8000_0000 | 0 : 0;
    let ms = this.s[S.mstatus]!;
    if (toS) {
      this.set('sepc', pcLo, pcHi);
      this.set('scause', cause, causeHi);
      this.set('stval', tvalLo, tvalHi);
      ms = ms & ~MSTATUS_SPIE | (ms & MSTATUS_SIE ? MSTATUS_SPIE : 0);
      ms = ms & ~(MSTATUS_SIE | MSTATUS_SPP) | (priv === PRIV_S ? MSTATUS_SPP : 0);
      this.s[S.mstatus] = ms;
      this.s[S.priv] = PRIV_S;
      this.vector('stvec', cause, interrupt);
    } else {
      this.set('mepc', pcLo, pcHi);
      this.set('mcause', cause, causeHi);
      this.set('mtval', tvalLo, tvalHi);
      ms = ms & ~MSTATUS_MPIE | (ms & MSTATUS_MIE ? MSTATUS_MPIE : 0);
      ms = ms & ~(MSTATUS_MIE | MSTATUS_MPP) | (priv << 11);
      this.s[S.mstatus] = ms;
      this.s[S.priv] = PRIV_M;
      this.vector('mtvec', cause, interrupt);
    }
    this.s[S.resValid] = 0;
  }

  private vector(tvec: 'mtvec' | 'stvec', cause: number, interrupt: boolean): void {
    const lo = this.get(tvec);
    const hi = this.getHi(tvec);
    const base = lo & ~3;
    if (interrupt && (lo & 3) === 1) {
      const t = (base + 4 * cause) | 0;
      this.setPc(t, (t >>> 0) < (base >>> 0) ? (hi + 1) | 0 : hi);
    } else {
      this.setPc(base, hi);
    }
  }

  /** All pending bits: software-written mip, device lines, and the Sstc timer comparison. */
  pending(): number {
    let p = this.s[S.mip]! | this.s[S.mipLines]!;
    if (this.s[S.menvcfg + 1]! < 0) {
      // Sstc with STCE: STIP is time >= stimecmp (Sstc spec 1.1).
      p &= ~MIP_STIP;
      if (this.hooks.time() >= this.getNum('stimecmp')) p |= MIP_STIP;
    }
    return p;
  }

  /**
   * The interrupt to take now, or -1 (Privileged 3.1.9): pending and enabled, and globally
   * enabled for its target level given the current privilege.
   */
  pendingInterrupt(): number {
    const pe = this.pending() & this.s[S.mie]!;
    if (pe === 0) return -1;
    const priv = this.priv;
    const ms = this.s[S.mstatus]!;
    const deleg = this.s[S.mideleg]!;
    const mEnabled = priv < PRIV_M || (ms & MSTATUS_MIE) !== 0;
    const sEnabled = priv < PRIV_S || (priv === PRIV_S && (ms & MSTATUS_SIE) !== 0);
    const m = mEnabled ? pe & ~deleg : 0;
    const s = sEnabled ? pe & deleg : 0;
    const take = m !== 0 ? m : s;
    if (take === 0) return -1;
    for (const irq of IRQ_PRIORITY) if (take & (1 << irq)) return irq;
    return -1;
  }

  /** True when an interrupt is pending and enabled in mie, whether or not globally enabled (wakes WFI, 3.3.3). */
  wakeable(): boolean {
    return (this.pending() & this.s[S.mie]!) !== 0;
  }

  /** Takes a pending interrupt if there is one. Returns true when it did. */
  checkInterrupts(): boolean {
    const irq = this.pendingInterrupt();
    if (irq < 0) return false;
    this.s[S.wfi] = 0;
    this.trap(irq, true, 0, 0);
    return true;
  }

  /** MRET (Privileged 3.3.2). */
  mret(): void {
    let ms = this.s[S.mstatus]!;
    const mpp = (ms & MSTATUS_MPP) >>> 11;
    ms = ms & ~MSTATUS_MIE | (ms & MSTATUS_MPIE ? MSTATUS_MIE : 0);
    ms = (ms | MSTATUS_MPIE) & ~MSTATUS_MPP;
    if (mpp !== PRIV_M) ms &= ~MSTATUS_MPRV;
    this.s[S.mstatus] = ms;
    this.s[S.priv] = mpp;
    this.setPc(this.get('mepc'), this.getHi('mepc'));
    this.s[S.resValid] = 0;
  }

  /** SRET (Privileged 3.3.2); permission checks are the caller's. */
  sret(): void {
    let ms = this.s[S.mstatus]!;
    const spp = ms & MSTATUS_SPP ? PRIV_S : PRIV_U;
    ms = ms & ~MSTATUS_SIE | (ms & MSTATUS_SPIE ? MSTATUS_SIE : 0);
    ms = (ms | MSTATUS_SPIE) & ~MSTATUS_SPP & ~MSTATUS_MPRV;
    this.s[S.mstatus] = ms;
    this.s[S.priv] = spp;
    this.setPc(this.get('sepc'), this.getHi('sepc'));
    this.s[S.resValid] = 0;
  }

  /** True when the MXR bit is set (used by the MMU). */
  get mxr(): boolean {
    return (this.s[S.mstatus]! & MSTATUS_MXR) !== 0;
  }
}

/** Scratch for readWord64: the double copied whole, then read as its two halves. */
const word64 = new Float64Array(1);
const word64Halves = new Int32Array(word64.buffer);

/**
 * The 8 aligned bytes at host offset `host`, read at once (Unprivileged 17.1: an aligned
 * doubleword access is single-copy atomic; two 32-bit reads could see halves of two stores of
 * a hart in another thread): their low and high halves, in `out`.
 */
export function readWord64(f64: Float64Array, host: number, out: Int32Array): void {
  word64[0] = f64[host >>> 3]!;
  out[0] = word64Halves[0]!;
  out[1] = word64Halves[1]!;
}
