/**
 * The slow path of guest memory access, used by every engine when its TLB fast path misses:
 * translation, TLB refill, misaligned and page-crossing accesses, and device (MMIO) accesses.
 * Misaligned loads and stores are performed, not trapped (the choice; Unprivileged 2.6
 * allows it). Faults are taken on the hart (Hart.trap) before any byte of a store is written.
 */
import { fillTlb, markDirty, mmuOut, translate } from './mmu.ts';
import { RAM_BASE, RAM_HOST, TLB_ENTRIES, TLB_WORDS, TLBW_ADDEND, TLBW_EXEC } from './layout.ts';
import { PAGE_CODE, PAGE_WATCH, type Hart } from './hart.ts';
import { Access, accessFaultCause } from './trap.ts';

/** Loaded value (zero-extended raw bytes): memOut[0] low, memOut[1] high. */
export const memOut = new Int32Array(2);

/**
 * What the access just performed touched. `mmio`: a device or a watched RAM location (the
 * caller ends its slice, as the machine may have to act). `codeWrite`: RAM holding translated
 * code (the translator must leave that code; the slice goes on).
 */
export const memFlags = { mmio: false, codeWrite: false };

/** Physical address of the first and (for page-crossing accesses) second page of an access. */
let pa0 = 0;
let pa1 = 0;

/**
 * Translates the pages an access of `size` bytes at (vaLo, vaHi) touches. Returns true on
 * success; on a fault it takes the trap on the hart and returns false.
 */
function translateAccess(h: Hart, mmu: number, vaLo: number, vaHi: number, size: number, access: Access): boolean {
  const inPage = 4096 - (vaLo & 0xfff);
  let cause = translate(h, vaLo, vaHi, access, mmu, Math.min(size, inPage));
  if (cause >= 0) {
    h.trap(cause, false, vaLo, vaHi);
    return false;
  }
  pa0 = mmuOut.pa;
  if (size <= inPage) {
    pa1 = -1;
    fillTlb(h, mmu, access, vaLo, vaHi, pa0);
    return true;
  }
  const nLo = (vaLo + inPage) | 0;
  const nHi = (nLo >>> 0) < (vaLo >>> 0) ? (vaHi + 1) | 0 : vaHi;
  cause = translate(h, nLo, nHi, access, mmu, size - inPage);
  if (cause >= 0) {
    h.trap(cause, false, nLo, nHi);
    return false;
  }
  pa1 = mmuOut.pa;
  return true;
}

/** Host offset of byte `i` of the current access, or -1 when that byte is not RAM. */
function byteHost(h: Hart, vaLo: number, i: number): number {
  const inPage = 4096 - (vaLo & 0xfff);
  const pa = i < inPage ? pa0 + i : pa1 + (i - inPage);
  const o = pa - RAM_BASE;
  return o >= 0 && o < h.ramSize ? RAM_HOST + o : -1;
}

/** Loads `size` bytes; on success returns true with the value in memOut. */
export function loadSlow(h: Hart, mmu: number, vaLo: number, vaHi: number, size: number, access = Access.Load): boolean {
  if (!translateAccess(h, mmu, vaLo, vaHi, size, access)) return false;
  memFlags.mmio = false;
  if (byteHost(h, vaLo, 0) < 0) {
    // A device: accesses must be naturally aligned and within one device register.
    if ((vaLo & (size - 1)) !== 0 || pa1 >= 0) return fault(h, vaLo, vaHi, access);
    memFlags.mmio = true;
    if (size === 8) {
      const lo = h.bus.read(pa0, 4);
      const hi = lo === lo ? h.bus.read(pa0 + 4, 4) : NaN;
      if (hi !== hi) return fault(h, vaLo, vaHi, access);
      memOut[0] = lo;
      memOut[1] = hi;
    } else {
      const v = h.bus.read(pa0, size as 1 | 2 | 4);
      if (v !== v) return fault(h, vaLo, vaHi, access);
      memOut[0] = v;
      memOut[1] = 0;
    }
    return true;
  }
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < size; i++) {
    const o = byteHost(h, vaLo, i);
    if (o < 0) return fault(h, vaLo, vaHi, access);
    const b = h.m8[o]!;
    if (i < 4) lo |= b << (8 * i);
    else hi |= b << (8 * (i - 4));
  }
  memOut[0] = lo;
  memOut[1] = hi;
  return true;
}

/** Stores the low `size` bytes of (lo, hi); returns false when a trap was taken. */
export function storeSlow(h: Hart, mmu: number, vaLo: number, vaHi: number, size: number, lo: number, hi: number): boolean {
  if (!translateAccess(h, mmu, vaLo, vaHi, size, Access.Store)) return false;
  memFlags.mmio = false;
  memFlags.codeWrite = false;
  if (byteHost(h, vaLo, 0) < 0) {
    if ((vaLo & (size - 1)) !== 0 || pa1 >= 0) return fault(h, vaLo, vaHi, Access.Store);
    memFlags.mmio = true;
    const ok = size === 8
      ? h.bus.write(pa0, 4, lo) && h.bus.write(pa0 + 4, 4, hi)
      : h.bus.write(pa0, size as 1 | 2 | 4, lo);
    return ok || fault(h, vaLo, vaHi, Access.Store);
  }
  // Check every byte is RAM before writing any (a store is all or nothing).
  for (let i = 0; i < size; i++) if (byteHost(h, vaLo, i) < 0) return fault(h, vaLo, vaHi, Access.Store);
  for (let i = 0; i < size; i++) {
    const o = byteHost(h, vaLo, i);
    h.m8[o] = i < 4 ? lo >>> (8 * i) : hi >>> (8 * (i - 4));
  }
  // Page-crossing stores and pages PMP splits get no write TLB entry: log them here.
  markDirty(h, byteHost(h, vaLo, 0));
  if (pa1 >= 0) markDirty(h, byteHost(h, vaLo, size - 1));
  noteWrite(h, pa0, pa1 >= 0 ? 4096 - (vaLo & 0xfff) : size);
  if (pa1 >= 0) noteWrite(h, pa1, size - (4096 - (vaLo & 0xfff)));
  return true;
}

/**
 * Reports a store of `size` bytes at guest physical `pa` (in RAM) to whoever watches its page:
 * HTIF's tohost (the slice ends) or the translator (its code for the page is stale).
 */
export function noteWrite(h: Hart, pa: number, size: number): void {
  const f = h.pageFlags[(pa - RAM_BASE) >>> 12]!;
  if (f === 0) return;
  markDirty(h, h.ramOffset(pa));
  if (f & PAGE_WATCH) memFlags.mmio = true;
  if (f & PAGE_CODE) memFlags.codeWrite = true;
  h.hooks.ramWatch?.(pa, size);
}

function fault(h: Hart, vaLo: number, vaHi: number, access: Access): false {
  h.trap(accessFaultCause(access), false, vaLo, vaHi);
  return false;
}

/**
 * Translates an address for an atomic read-modify-write and returns the host offset of its
 * naturally aligned RAM bytes, or -1 after taking the trap (AMOs on devices are access faults).
 */
export function amoHost(h: Hart, mmu: number, vaLo: number, vaHi: number, size: number): number {
  if (!translateAccess(h, mmu, vaLo, vaHi, size, Access.Store)) return -1;
  const o = byteHost(h, vaLo, 0);
  if (o < 0) {
    fault(h, vaLo, vaHi, Access.Store);
    return -1;
  }
  markDirty(h, o);
  return o;
}

/**
 * Translates a fetch of the page holding (pcLo, pcHi) and fills the exec TLB entry. Returns
 * true on success; otherwise the trap has been taken.
 */
export function fetchFill(h: Hart, mmu: number, pcLo: number, pcHi: number): boolean {
  const cause = translate(h, pcLo, pcHi, Access.Fetch, mmu);
  if (cause >= 0) {
    h.trap(cause, false, pcLo, pcHi);
    return false;
  }
  if (h.ramOffset(mmuOut.pa) < 0) {
    h.trap(accessFaultCause(Access.Fetch), false, pcLo, pcHi);
    return false;
  }
  fillTlb(h, mmu, Access.Fetch, pcLo, pcHi, mmuOut.pa);
  return true;
}

/**
 * Fetches the upper 16 bits of a 32-bit instruction that starts in the last halfword of a
 * page. Returns the halfword, or -1 after taking the fetch fault.
 */
export function fetchHigh(h: Hart, mmu: number, pcLo: number, pcHi: number): number {
  const nLo = (pcLo + 2) | 0;
  const nHi = (nLo >>> 0) < (pcLo >>> 0) ? (pcHi + 1) | 0 : pcHi;
  // The next page is usually in the fetch TLB already (a loop that straddles two pages).
  const T = h.tlb;
  const e = (mmu * TLB_ENTRIES + ((nLo >>> 12) & (TLB_ENTRIES - 1))) * TLB_WORDS;
  if (T[e + TLBW_EXEC] === (nLo & ~0xfff) && T[e + TLBW_EXEC + 1] === nHi) return h.m16[((nLo + T[e + TLBW_ADDEND]!) >>> 0) >>> 1]!;
  const cause = translate(h, nLo, nHi, Access.Fetch, mmu, 2);
  const o = cause < 0 ? h.ramOffset(mmuOut.pa, 2) : -1;
  if (o < 0) {
    h.trap(cause >= 0 ? cause : accessFaultCause(Access.Fetch), false, nLo, nHi);
    return -1;
  }
  fillTlb(h, mmu, Access.Fetch, nLo, nHi, mmuOut.pa);
  return h.m16[o >>> 1]!;
}
