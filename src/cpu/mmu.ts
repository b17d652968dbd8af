/**
 * Virtual-to-physical translation: Sv39 and Sv48 page-table walks (Privileged spec 12.3-12.4)
 * with permission checks, A/D updates done by the hardware (as QEMU does), misaligned-superpage
 * faults, and refills of the software TLB described in layout.ts.
 */
import {
  MMU_M, MMU_S, MMU_U, DIRTY_BITMAP, PAGE_SHIFT, RAM_BASE, RAM_HOST, TLB2_ENTRIES, TLB2_HEADER, TLB_ENTRIES, TLB_INVALID, TLB_WORDS,
  TLBW_ADDEND, TLBW_EXEC, TLBW_READ, TLBW_WRITE,
} from './layout.ts';
import { MSTATUS_MXR, SATP_SV39, SATP_SV48 } from './csr-numbers.ts';
import { PRIV_M, PRIV_S, PRIV_U, readWord64, S, type Hart } from './hart.ts';
import { pmpAllows, pmpUniformPage } from './pmp.ts';
import { Access, accessFaultCause, pageFaultCause } from './trap.ts';

/** The PTE being looked at, as its low and high halves. */
const pte = new Int32Array(2);

const PTE_V = 1;
const PTE_R = 2;
const PTE_W = 4;
const PTE_X = 8;
const PTE_U = 16;
const PTE_A = 64;
const PTE_D = 128;

/**
 * The last successful translation: the physical address, and the size of the page that mapped
 * it (4 KiB, or a superpage's 2 MiB / 1 GiB / 512 GiB).
 */
export const mmuOut = { pa: 0, span: 4096 };

/** 2^32, for composing Numbers from halves. */
const P32 = 0x1_0000_0000;

/** Pages mapped by a leaf at each level (512^level). */
const SPAN_PAGES = [1, 512, 512 * 512, 512 * 512 * 512];

/** Privilege of an MMU index, for PMP checks. */
const MMU_PRIV = [PRIV_U, PRIV_S, PRIV_S, PRIV_M];

/**
 * Translates virtual address (vaLo, vaHi) for an access of `size` bytes (within one page) under
 * MMU index `mmu`, then checks PMP. Returns -1 on success with mmuOut.pa set, or the exception
 * cause of the fault.
 */
export function translate(h: Hart, vaLo: number, vaHi: number, access: Access, mmu: number, size = 1): number {
  const cause = walk(h, vaLo, vaHi, access, mmu);
  if (cause >= 0) return cause;
  if (!pmpAllows(h, mmuOut.pa, size, access, MMU_PRIV[mmu]!)) return accessFaultCause(access);
  // Post-copy: a page not yet here is fetched before any engine touches it or caches it in a TLB entry.
  if (h.gate !== null) h.gate.need(mmuOut.pa, size);
  return -1;
}

function walk(h: Hart, vaLo: number, vaHi: number, access: Access, mmu: number): number {
  const satpHi = h.s[S.satp + 1]!;
  const mode = satpHi >>> 28;
  if (mmu === MMU_M || mode === 0) {
    // Bare: the physical address space is 56 bits wide (Privileged 3.1.6.3, 12.1.11).
    if (vaHi >>> 24 !== 0) return accessFaultCause(access);
    mmuOut.pa = (vaHi >>> 0) * P32 + (vaLo >>> 0);
    mmuOut.span = 4096;
    return -1;
  }
  let levels: number;
  if (mode === SATP_SV39) {
    levels = 3;
    if ((vaHi << 25) >> 25 !== vaHi) return pageFaultCause(access);
  } else if (mode === SATP_SV48) {
    levels = 4;
    if ((vaHi << 16) >> 16 !== vaHi) return pageFaultCause(access);
  } else {
    return pageFaultCause(access);
  }
  const vpn = (vaHi & 0xffff) * 0x10_0000 + (vaLo >>> PAGE_SHIFT);
  // satp.PPN is bits 43:0.
  let table = ((satpHi & 0xfff) * P32 + (h.s[S.satp]! >>> 0)) * 4096;
  for (let i = levels - 1; i >= 0; i--) {
    // VPN[i] is va bits 20+9i..12+9i, taken from the halves with shifts: the same as
    // floor(vpn / 512^i) % 512, whose non-constant power made V8 call out to pow on every
    // level of every walk (half the time of a TLB miss).
    const idx = i === 0 ? (vaLo >>> 12) & 511 : i === 1 ? (vaLo >>> 21) & 511 : i === 2 ? ((vaLo >>> 30) | (vaHi << 2)) & 511 : (vaHi >>> 7) & 511;
    const pteAddr = table + idx * 8;
    // Page-table accesses are S-mode accesses for PMP (3.7.1).
    const host = h.ramOffset(pteAddr, 8);
    if (host < 0 || !pmpAllows(h, pteAddr, 8, Access.Load, PRIV_S)) return accessFaultCause(access);
    // At once: another hart may be writing the PTE (two 32-bit reads could pair halves of two).
    readWord64(h.f64, host, pte);
    const lo = pte[0]!;
    const hi = pte[1]!;
    // V=0, W without R, or any reserved/Svnapot/Svpbmt bit (63:54) set: page fault.
    if (!(lo & PTE_V) || (lo & (PTE_R | PTE_W)) === PTE_W || hi >>> 22 !== 0) return pageFaultCause(access);
    const ppn = (hi & 0x3fffff) * 0x40_0000 + (lo >>> 10);
    if (!(lo & (PTE_R | PTE_X))) {
      if (i === 0) return pageFaultCause(access);
      table = ppn * 4096;
      continue;
    }
    // Leaf: permissions (12.3.2 step 5).
    const priv = mmu === MMU_U ? 0 : 1;
    if (lo & PTE_U) {
      if (priv === 1 && (access === Access.Fetch || mmu === MMU_S)) return pageFaultCause(access);
    } else if (priv === 0) {
      return pageFaultCause(access);
    }
    if (access === Access.Fetch) {
      if (!(lo & PTE_X)) return pageFaultCause(access);
    } else if (access === Access.Load) {
      const mxr = (h.s[S.mstatus]! & MSTATUS_MXR) !== 0;
      if (!(lo & PTE_R) && !(mxr && lo & PTE_X)) return pageFaultCause(access);
    } else if (!(lo & PTE_W)) {
      return pageFaultCause(access);
    }
    // A superpage whose PPN is not aligned to its size is a page fault (step 6).
    const span = SPAN_PAGES[i]!;
    if (i > 0 && ppn % span !== 0) return pageFaultCause(access);
    // Update A, and D on stores (step 7, hardware-managed).
    const want = PTE_A | (access === Access.Store ? PTE_D : 0);
    if ((lo & want) !== want) {
      // The update is atomic with the check (12.3.2 step 7): a hart in another thread may have
      // changed the PTE since it was read, and then the walk starts again.
      const seen = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      if (Atomics.compareExchange(h.m64, host >>> 3, seen, seen | BigInt(want)) !== seen) return walk(h, vaLo, vaHi, access, mmu);
      markDirty(h, host); // the page table page changed: migration must resend it
    }
    mmuOut.pa = (i === 0 ? ppn : ppn + (vpn % span)) * 4096 + (vaLo & 0xfff);
    mmuOut.span = span * 4096;
    return -1;
  }
  return pageFaultCause(access);
}

/** Marks the RAM page holding host offset `host` dirty in the dirty log. */
export function markDirty(h: Hart, host: number): void {
  const page = (host - RAM_HOST) >>> PAGE_SHIFT;
  // Atomic: harts in other threads set bits of the same byte.
  Atomics.or(h.m8, DIRTY_BITMAP + (page >>> 3), 1 << (page & 7));
}

/**
 * Installs a TLB entry mapping the page of (vaLo, vaHi) to RAM at guest physical `pa` for
 * `access`, from the translation just made (mmuOut.span says whether it came from a
 * superpage). Entries are only made for RAM; device pages always take the slow path.
 */
export function fillTlb(h: Hart, mmu: number, access: Access, vaLo: number, vaHi: number, pa: number): void {
  const ramOff = pa - RAM_BASE;
  if (ramOff < 0 || ramOff >= h.ramSize) return;
  // A page whose bytes PMP treats differently cannot be cached as a whole.
  // ramOff < 2^32: its page offset is its low 12 bits (no floating-point remainder).
  const pageOff = ramOff - (ramOff & 0xfff);
  if (!pmpUniformPage(h, RAM_BASE + pageOff)) return;
  const pageLo = vaLo & ~0xfff;
  const hostPage = RAM_HOST + pageOff;
  const entry = mmu * TLB_ENTRIES + ((vaLo >>> PAGE_SHIFT) & (TLB_ENTRIES - 1));
  const e = entry * TLB_WORDS;
  const t = h.tlb;
  const addend = (hostPage - pageLo) | 0;
  if (t[e + TLBW_ADDEND] !== addend || !sameTag(t, e, pageLo, vaHi)) {
    // Another page's entry: its tags (which precede the addend) go. (Stores, not fill(): a
    // typed array's fill costs more than a page-table walk for six words.)
    for (let k = e; k < e + TLBW_ADDEND; k++) t[k] = TLB_INVALID;
    t[e + TLBW_ADDEND] = addend;
    t[e + TLBW_ADDEND + 1] = 0;
    h.noteSpan(entry, vaLo, vaHi, mmuOut.span);
  }
  if (access === Access.Store) {
    // Watched pages and pages with translated code must see every store: no fast-path entry.
    if (h.pageFlags[ramOff >>> PAGE_SHIFT] !== 0) return;
    markDirty(h, hostPage);
  }
  const k = e + TAG_WORD[access]!;
  t[k] = pageLo;
  t[k + 1] = vaHi;
  if (access !== Access.Fetch && mmuOut.span === 4096) fillTlb2(h, mmu, access, pageLo, vaHi, addend);
}

/** Records a 4 KiB load or store translation just put in the TLB in the second level too (layout.ts). */
function fillTlb2(h: Hart, mmu: number, access: Access, pageLo: number, vaHi: number, addend: number): void {
  const t2 = h.tlb2;
  const gen = t2[0]!;
  if (gen === 0) return; // off (Hart.enableTlb2)
  const w = TLB2_HEADER / 4 + ((pageLo >>> 12) & (TLB2_ENTRIES - 1)) * 4;
  const tag = pageLo | mmu;
  const bit = access === Access.Store ? 2 : 1;
  if (t2[w] === tag && t2[w + 1] === vaHi && t2[w + 2] === addend && t2[w + 3]! >>> 2 === gen) {
    t2[w + 3] = t2[w + 3]! | bit;
    return;
  }
  t2[w] = tag;
  t2[w + 1] = vaHi;
  t2[w + 2] = addend;
  t2[w + 3] = (gen << 2) | bit;
}

/** The tag an access of each kind uses (by Access). */
const TAG_WORD = [TLBW_READ, TLBW_WRITE, TLBW_EXEC];

/** Whether any of the entry's tags names the page. */
function sameTag(t: Int32Array, e: number, pageLo: number, vaHi: number): boolean {
  for (const w of TAG_WORD) if (t[e + w] === pageLo && t[e + w + 1] === vaHi) return true;
  return false;
}

