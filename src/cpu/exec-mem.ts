/**
 * The interpreter's handlers for memory access: loads and stores (Unprivileged ch. 2, 4), the
 * atomics (ch. 14), and the load/store context the F and D handlers are built with. The data
 * TLB is probed inline; misses, devices, misaligned and page-crossing accesses go through
 * memory.ts with minstret exact.
 *
 * Handlers are module-level functions over the hart being run, which bindMemHandlers sets
 * (interp.ts calls it when it binds a hart, and setDataMmu whenever the data MMU may change):
 * every machine in a process shares one set of functions, and V8 keeps their call sites
 * monomorphic.
 */
import type { Handler, HandlerContext } from './handler.ts';
import { S, type Hart } from './hart.ts';
import { lt, ltu, r64 } from './int64.ts';
import { RAM_HOST, TLB_ENTRIES, TLB_WORDS, TLBW_ADDEND, TLBW_READ, TLBW_WRITE } from './layout.ts';
import { amoHost, loadSlow, memFlags, memOut, noteWrite, storeSlow } from './memory.ts';
import { mmuOut, translate } from './mmu.ts';
import { St } from './status.ts';
import { Access, Cause } from './trap.ts';

let h: Hart = null as unknown as Hart;
let X: Int32Array = new Int32Array(66);
let T: Int32Array = new Int32Array(0);
let M8: Uint8Array = new Uint8Array(0);
let M16: Uint16Array = new Uint16Array(0);
let M32: Int32Array = new Int32Array(0);
let SS: Int32Array = new Int32Array(0);
/** Writes the interpreter's retired count back to minstret (before anything that may trap). */
let sync: () => void = () => {};
/** The data MMU index and its TLB base (in 32-bit words), for the current privilege and mstatus. */
let dMmu = 0;
let dBase = 0;
/** Effective address of the current load/store. */
let vaLo = 0;
let vaHi = 0;

/**
 * Binds the handlers to `hart`; `syncCount` makes minstret exact (the interpreter's sync).
 * Before contextFor(hart), whose context calls it.
 */
export function bindMemHandlers(hart: Hart, syncCount: () => void): void {
  h = hart;
  X = hart.x;
  T = hart.tlb;
  M8 = hart.m8;
  M16 = hart.m16;
  M32 = hart.m32;
  SS = hart.s;
  sync = syncCount;
}

/** Sets the data MMU index and its TLB base (in 32-bit words) the handlers probe. */
export function setDataMmu(mmu: number, base: number): void {
  dMmu = mmu;
  dBase = base;
}

function ea(rs1: number, imm: number): void {
  const bLo = X[rs1]!;
  const lo = (bLo + imm) | 0;
  vaLo = lo;
  vaHi = (X[rs1 + 1]! + (imm >> 31) + ((lo >>> 0) < (bLo >>> 0) ? 1 : 0)) | 0;
}

/** Host offset for reading at (vaLo, vaHi) via the TLB, or -1 on a miss. */
function hostR(): number {
  const e = dBase + ((vaLo >>> 12) & (TLB_ENTRIES - 1)) * TLB_WORDS;
  if (T[e + TLBW_READ] === (vaLo & ~0xfff) && T[e + TLBW_READ + 1] === vaHi) return (vaLo + T[e + TLBW_ADDEND]!) >>> 0;
  return -1;
}

function hostW(): number {
  const e = dBase + ((vaLo >>> 12) & (TLB_ENTRIES - 1)) * TLB_WORDS;
  if (T[e + TLBW_WRITE] === (vaLo & ~0xfff) && T[e + TLBW_WRITE + 1] === vaHi) return (vaLo + T[e + TLBW_ADDEND]!) >>> 0;
  return -1;
}

/** Slow load: returns St.Trap, or St.Next / St.Exit (device) with the value in memOut. */
function slowLoad(size: number): St {
  sync();
  if (!loadSlow(h, dMmu, vaLo, vaHi, size)) return St.Trap;
  return memFlags.mmio ? St.Exit : St.Next;
}

function slowStore(size: number, lo: number, hi: number): St {
  sync();
  if (!storeSlow(h, dMmu, vaLo, vaHi, size, lo, hi)) return St.Trap;
  return memFlags.mmio ? St.Exit : St.Next;
}

function setRd(rd: number, lo: number, hi: number): void {
  X[rd] = lo;
  X[rd + 1] = hi;
}

/** The context F/D handlers are built with, for one hart (sync is the interpreter's, bound already). */
export function contextFor(hart: Hart): HandlerContext {
  return {
    h: hart,
    dataMmu: () => dMmu,
    sync,
    load(rs1, imm, size) {
      ea(rs1, imm);
      const o = hostR();
      if (o >= 0 && (o & (size - 1)) === 0) {
        memOut[0] = M32[o >>> 2]!;
        memOut[1] = size === 8 ? M32[(o >>> 2) + 1]! : 0;
        return St.Next;
      }
      return slowLoad(size);
    },
    store(rs1, imm, size, lo, hi) {
      ea(rs1, imm);
      const o = hostW();
      if (o >= 0 && (o & (size - 1)) === 0) {
        M32[o >>> 2] = lo;
        if (size === 8) M32[(o >>> 2) + 1] = hi;
        return St.Next;
      }
      return slowStore(size, lo, hi);
    },
  };
}

// ---- loads and stores ----

function loadH(size: number, signed: boolean): Handler {
  // One specialised closure per width; the width tests fold away after inlining.
  return (a, imm) => {
    ea((a >>> 8) & 0xff, imm);
    const rd = a & 0xff;
    const o = hostR();
    let lo: number;
    let hi: number;
    if (o >= 0 && (o & (size - 1)) === 0) {
      if (size === 8) {
        lo = M32[o >>> 2]!;
        hi = M32[(o >>> 2) + 1]!;
      } else if (size === 4) {
        lo = M32[o >>> 2]!;
        hi = signed ? lo >> 31 : 0;
      } else if (size === 2) {
        lo = M16[o >>> 1]!;
        if (signed) lo = (lo << 16) >> 16;
        hi = signed ? lo >> 31 : 0;
      } else {
        lo = M8[o]!;
        if (signed) lo = (lo << 24) >> 24;
        hi = signed ? lo >> 31 : 0;
      }
      setRd(rd, lo, hi);
      return St.Next;
    }
    const st = slowLoad(size);
    if (st === St.Trap) return st;
    lo = memOut[0]!;
    hi = memOut[1]!;
    if (size < 8 && signed) {
      const s = 32 - size * 8;
      lo = (lo << s) >> s;
      hi = lo >> 31;
    }
    setRd(rd, lo, size === 8 ? hi : signed ? hi : 0);
    return st;
  };
}

function storeH(size: number): Handler {
  return (a, imm) => {
    ea((a >>> 8) & 0xff, imm);
    const rs2 = (a >>> 16) & 0xff;
    const lo = X[rs2]!;
    const o = hostW();
    if (o >= 0 && (o & (size - 1)) === 0) {
      if (size === 8) {
        M32[o >>> 2] = lo;
        M32[(o >>> 2) + 1] = X[rs2 + 1]!;
      } else if (size === 4) M32[o >>> 2] = lo;
      else if (size === 2) M16[o >>> 1] = lo;
      else M8[o] = lo;
      return St.Next;
    }
    return slowStore(size, lo, X[rs2 + 1]!);
  };
}

// ---- atomics (Unprivileged ch. 14) ----

/** Translates for an atomic access, checking natural alignment; returns host offset or -1 (trap taken). */
function amoAddr(size: number, misalignedCause: Cause, access: Access): number {
  if ((vaLo & (size - 1)) !== 0) {
    h.trap(misalignedCause, false, vaLo, vaHi);
    return -1;
  }
  // The TLB first, as plain loads and stores do: a write entry exists only for a RAM page that
  // is already dirty and watched by no one (see fillTlb), so an AMO hitting it needs nothing else.
  const fast = access === Access.Load ? hostR() : hostW();
  if (fast >= 0) return fast;
  sync();
  if (access === Access.Load) {
    const c = translate(h, vaLo, vaHi, Access.Load, dMmu, size);
    if (c >= 0) {
      h.trap(c, false, vaLo, vaHi);
      return -1;
    }
    const o = h.ramOffset(mmuOut.pa, size);
    if (o < 0) h.trap(Cause.LoadAccessFault, false, vaLo, vaHi);
    return o;
  }
  return amoHost(h, dMmu, vaLo, vaHi, size);
}

function lr(size: number): Handler {
  return (a) => {
    ea((a >>> 8) & 0xff, 0);
    const o = amoAddr(size, Cause.LoadMisaligned, Access.Load);
    if (o < 0) return St.Trap;
    const lo = M32[o >>> 2]!;
    setRd(a & 0xff, lo, size === 8 ? M32[(o >>> 2) + 1]! : lo >> 31);
    SS[S.resValid] = 1;
    h.setNum('resAddr', h.ramPa(o));
    return St.Next;
  };
}

function sc(size: number): Handler {
  return (a) => {
    ea((a >>> 8) & 0xff, 0);
    const o = amoAddr(size, Cause.StoreMisaligned, Access.Store);
    if (o < 0) return St.Trap;
    const rs2 = (a >>> 16) & 0xff;
    const ok = SS[S.resValid] === 1 && h.getNum('resAddr') === h.ramPa(o);
    SS[S.resValid] = 0;
    // Store before writing rd: rd may be rs2 (sc.d t0, t0, (a0)).
    if (ok) {
      M32[o >>> 2] = X[rs2]!;
      if (size === 8) M32[(o >>> 2) + 1] = X[rs2 + 1]!;
    }
    setRd(a & 0xff, ok ? 0 : 1, 0);
    return ok ? wrote(o, size) : St.Next;
  };
}

/** After an atomic wrote RAM at host offset `o`: tell the page's watchers (HTIF, translator). */
function wrote(o: number, size: number): St {
  if (h.pageFlags[(o - RAM_HOST) >>> 12] === 0) return St.Next;
  memFlags.mmio = false;
  memFlags.codeWrite = false;
  noteWrite(h, h.ramPa(o), size);
  return memFlags.mmio ? St.Exit : St.Next;
}

/** AMO<op>.W / .D: `f` combines the old value and rs2 into r64. */
function amo(size: number, f: (oLo: number, oHi: number, bLo: number, bHi: number) => void): Handler {
  return (a) => {
    ea((a >>> 8) & 0xff, 0);
    const o = amoAddr(size, Cause.StoreMisaligned, Access.Store);
    if (o < 0) return St.Trap;
    const rs2 = (a >>> 16) & 0xff;
    const i = o >>> 2;
    const oLo = M32[i]!;
    const oHi = size === 8 ? M32[i + 1]! : oLo >> 31;
    const bLo = X[rs2]!;
    const bHi = size === 8 ? X[rs2 + 1]! : bLo >> 31;
    f(oLo, oHi, bLo, bHi);
    M32[i] = r64[0]!;
    if (size === 8) M32[i + 1] = r64[1]!;
    setRd(a & 0xff, oLo, oHi);
    return wrote(o, size);
  };
}
const put = (lo: number, hi: number): void => {
  r64[0] = lo;
  r64[1] = hi;
};
const amoOps: Record<string, (oLo: number, oHi: number, bLo: number, bHi: number) => void> = {
  swap: (_oLo, _oHi, bLo, bHi) => put(bLo, bHi),
  add: (oLo, oHi, bLo, bHi) => {
    const lo = (oLo + bLo) | 0;
    put(lo, (oHi + bHi + ((lo >>> 0) < (oLo >>> 0) ? 1 : 0)) | 0);
  },
  xor: (oLo, oHi, bLo, bHi) => put(oLo ^ bLo, oHi ^ bHi),
  and: (oLo, oHi, bLo, bHi) => put(oLo & bLo, oHi & bHi),
  or: (oLo, oHi, bLo, bHi) => put(oLo | bLo, oHi | bHi),
  min: (oLo, oHi, bLo, bHi) => (lt(oLo, oHi, bLo, bHi) ? put(oLo, oHi) : put(bLo, bHi)),
  max: (oLo, oHi, bLo, bHi) => (lt(oLo, oHi, bLo, bHi) ? put(bLo, bHi) : put(oLo, oHi)),
  minu: (oLo, oHi, bLo, bHi) => (ltu(oLo, oHi, bLo, bHi) ? put(oLo, oHi) : put(bLo, bHi)),
  maxu: (oLo, oHi, bLo, bHi) => (ltu(oLo, oHi, bLo, bHi) ? put(bLo, bHi) : put(oLo, oHi)),
};

/** The load, store and atomic handlers, by mnemonic. */
export const MEM_HANDLERS: Record<string, Handler> = {
  lb: loadH(1, true),
  lh: loadH(2, true),
  lw: loadH(4, true),
  ld: loadH(8, true),
  lbu: loadH(1, false),
  lhu: loadH(2, false),
  lwu: loadH(4, false),
  sb: storeH(1),
  sh: storeH(2),
  sw: storeH(4),
  sd: storeH(8),
  'lr.w': lr(4),
  'lr.d': lr(8),
  'sc.w': sc(4),
  'sc.d': sc(8),
};
for (const [op, f] of Object.entries(amoOps)) {
  MEM_HANDLERS[`amo${op}.w`] = amo(4, f);
  MEM_HANDLERS[`amo${op}.d`] = amo(8, f);
}
