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
import { RAM_HOST, TLB_ENTRIES, TLB_WORDS, TLBW_ADDEND, TLBW_READ, TLBW_WRITE, X_OFF } from './layout.ts';
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
let M64: BigInt64Array = new BigInt64Array(0);
let F64: Float64Array = new Float64Array(0);
/** Where the hart's x registers start in F64 (a register `rd`, counted in words, is at XF + rd / 2). */
let XF = 0;
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
  M64 = hart.m64;
  F64 = hart.f64;
  XF = (hart.base + X_OFF) >>> 3;
  SS = hart.s;
  shared = typeof SharedArrayBuffer !== 'undefined' && hart.memory.buffer instanceof SharedArrayBuffer;
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
        // One 8-byte copy from memory into the register: single-copy atomic (readWord64).
        F64[XF + (rd >>> 1)] = F64[o >>> 3]!;
        return St.Next;
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
      if (size === 8) F64[o >>> 3] = F64[XF + (rs2 >>> 1)]!; // one 8-byte copy, as for loads
      else if (size === 4) M32[o >>> 2] = lo;
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

/** Whether the bound hart's memory is shared (harts in other threads may touch it). */
let shared = false;

/**
 * A full fence for the host: a sequentially consistent read-modify-write (a locked instruction
 * on x86-64, a barrier-bracketed exclusive pair on ARM64) of the hart's own sink register, which
 * no one reads. V8 neither moves memory accesses across it nor lets the CPU do so.
 */
function hostFence(): void {
  if (shared) Atomics.add(X, 64, 0);
}

/** The aq/rl bits of an AMO, LR or SC (its handler's imm, isa/decode.ts). */
const RL = 1;

function lr(size: number): Handler {
  return (a, imm) => {
    ea((a >>> 8) & 0xff, 0);
    const o = amoAddr(size, Cause.LoadMisaligned, Access.Load);
    if (o < 0) return St.Trap;
    // LR.rl: every earlier access before it, a store too (the host's store buffer).
    if (imm & RL) hostFence();
    let lo: number;
    let hi: number;
    if (size === 8) {
      const v = Atomics.load(M64, o >>> 3);
      lo = Number(BigInt.asIntN(32, v));
      hi = Number(v >> 32n);
      SS[S.resValue + 1] = hi;
    } else {
      lo = Atomics.load(M32, o >>> 2);
      hi = lo >> 31;
      SS[S.resValue + 1] = 0;
    }
    SS[S.resValue] = lo;
    setRd(a & 0xff, lo, hi);
    SS[S.resValid] = 1;
    h.setNum('resAddr', h.ramPa(o));
    return St.Next;
  };
}

/**
 * SC.W/D: succeeds while the reservation holds this address and memory still holds the value
 * LR loaded, both checked and the store made by one compare-exchange (as QEMU's MTTCG: a store
 * of the same value by another hart in between goes unnoticed, which no LR/SC loop can tell
 * from its own reservation surviving).
 */
function sc(size: number): Handler {
  return (a) => {
    ea((a >>> 8) & 0xff, 0);
    const o = amoAddr(size, Cause.StoreMisaligned, Access.Store);
    if (o < 0) return St.Trap;
    const rs2 = (a >>> 16) & 0xff;
    let ok = SS[S.resValid] === 1 && h.getNum('resAddr') === h.ramPa(o);
    SS[S.resValid] = 0;
    // Store before writing rd: rd may be rs2 (sc.d t0, t0, (a0)).
    if (ok) {
      if (size === 8) {
        const want = (BigInt(SS[S.resValue + 1]!) << 32n) | BigInt(SS[S.resValue]! >>> 0);
        const v = (BigInt(X[rs2 + 1]!) << 32n) | BigInt(X[rs2]! >>> 0);
        ok = Atomics.compareExchange(M64, o >>> 3, want, v) === want;
      } else {
        const want = SS[S.resValue]!;
        ok = Atomics.compareExchange(M32, o >>> 2, want, X[rs2]!) === want;
      }
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

/** The operations of the AMO rows (AMO<op>.W/D). */
type AmoOp = 'swap' | 'add' | 'xor' | 'and' | 'or' | 'min' | 'max' | 'minu' | 'maxu';

/** min/max of two words, compared signed or (minu, maxu) unsigned. */
function pick32(op: AmoOp, a: number, b: number): number {
  switch (op) {
    case 'min': return a < b ? a : b;
    case 'max': return a < b ? b : a;
    case 'minu': return a >>> 0 < b >>> 0 ? a : b;
    default: return a >>> 0 < b >>> 0 ? b : a;
  }
}

function pick64(op: AmoOp, a: bigint, b: bigint): bigint {
  switch (op) {
    case 'min': return a < b ? a : b;
    case 'max': return a < b ? b : a;
    case 'minu': return BigInt.asUintN(64, a) < BigInt.asUintN(64, b) ? a : b;
    default: return BigInt.asUintN(64, a) < BigInt.asUintN(64, b) ? b : a;
  }
}

/**
 * AMO<op>.W: one host atomic read-modify-write of the word (Atomics are sequentially
 * consistent, so aq and rl hold whatever they say); min and max, which Atomics lacks, retry a
 * compare-exchange until no other hart wrote the word in between.
 */
function amo32(op: AmoOp, i: number, b: number): number {
  switch (op) {
    case 'swap': return Atomics.exchange(M32, i, b);
    case 'add': return Atomics.add(M32, i, b);
    case 'xor': return Atomics.xor(M32, i, b);
    case 'and': return Atomics.and(M32, i, b);
    case 'or': return Atomics.or(M32, i, b);
    default:
      for (;;) {
        const old = M32[i]!;
        if (Atomics.compareExchange(M32, i, old, pick32(op, old, b)) === old) return old;
      }
  }
}

/** AMO<op>.D, likewise on the doubleword (BigInt64Array: values signed). */
function amo64(op: AmoOp, i: number, b: bigint): bigint {
  switch (op) {
    case 'swap': return Atomics.exchange(M64, i, b);
    case 'add': return Atomics.add(M64, i, b);
    case 'xor': return Atomics.xor(M64, i, b);
    case 'and': return Atomics.and(M64, i, b);
    case 'or': return Atomics.or(M64, i, b);
    default:
      for (;;) {
        const old = Atomics.load(M64, i);
        if (Atomics.compareExchange(M64, i, old, pick64(op, old, b)) === old) return old;
      }
  }
}

/** AMO<op>.W / .D: rd = the old value (a word sign-extended), memory = old <op> x[rs2], atomically. */
function amo(size: number, op: AmoOp): Handler {
  return (a) => {
    ea((a >>> 8) & 0xff, 0);
    const o = amoAddr(size, Cause.StoreMisaligned, Access.Store);
    if (o < 0) return St.Trap;
    const rs2 = (a >>> 16) & 0xff;
    if (size === 8) {
      const old = amo64(op, o >>> 3, (BigInt(X[rs2 + 1]!) << 32n) | BigInt(X[rs2]! >>> 0));
      setRd(a & 0xff, Number(BigInt.asIntN(32, old)), Number(old >> 32n));
    } else {
      const old = amo32(op, o >>> 2, X[rs2]!);
      setRd(a & 0xff, old, old >> 31);
    }
    return wrote(o, size);
  };
}
const AMO_OPS: AmoOp[] = ['swap', 'add', 'xor', 'and', 'or', 'min', 'max', 'minu', 'maxu'];

/**
 * FENCE (Unprivileged 2.7): one whose predecessor and successor sets both hold memory accesses
 * (R or W; FENCE.TSO too) is a full host fence when harts may run in other threads. Stronger
 * than most need (only W before R is reordered on x86-64), but one instruction either way.
 */
function fence(_a: number, imm: number): St {
  if ((imm >>> 4) & 3 && imm & 3) hostFence();
  return St.Next;
}

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
  fence,
};
for (const op of AMO_OPS) {
  MEM_HANDLERS[`amo${op}.w`] = amo(4, op);
  MEM_HANDLERS[`amo${op}.d`] = amo(8, op);
}
