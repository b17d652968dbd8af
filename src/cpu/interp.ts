/**
 * The reference interpreter: executes the instruction table's rows one at a time against the
 * hart state in the shared memory. It is the semantic oracle later engines are tested against.
 *
 * Speed comes from three choices, each measured (bench/): 64-bit registers as pairs of 32-bit
 * halves (2-3x faster than BigInt in V8), a decode cache laid out by RAM page whose entries
 * are checked against the instruction bits fetched (so self-modifying code needs no
 * invalidation), and a software TLB probed inline by loads, stores and fetches. Everything
 * else (misses, devices, faults, CSRs) leaves the fast path.
 */
import { decode } from '../isa/decode.ts';
import { INSNS } from '../isa/table.ts';
import { packOperands, type Engine, type Handler, type HandlerContext } from './handler.ts';
import { decodedPages, S, type DecodedPages, type Hart } from './hart.ts';
import { div, divu, mul, mulh, mulhsu, mulhu, r64 } from './int64.ts';
import { RAM_HOST, TLB_ENTRIES, TLB_INVALID, TLB_OFF, TLB_WORDS, TLBW_ADDEND, TLBW_EXEC, TLBW_READ, TLBW_WRITE } from './layout.ts';
import { amoHost, fetchFill, fetchHigh, loadSlow, memFlags, memOut, noteWrite, storeSlow } from './memory.ts';
import { mmuOut, translate } from './mmu.ts';
import { St } from './status.ts';
import {
  CsrOp, execCsr, execEbreak, execEcall, execMret, execSfenceVma, execSret, execWfi, illegal,
} from './system.ts';
import { Access, Cause } from './trap.ts';
import { createFpHandlers } from './exec-fp.ts';

export type { Engine } from './handler.ts';

/** Pages the decode cache holds before it starts over (32 KiB each). */
const DECODED_PAGES_MAX = 1024;
const P32 = 0x1_0000_0000;

// ---- The interpreter's state: the hart it is running, bound at the start of each run() ----
// Handlers are module-level functions over this state rather than closures per hart, so every
// machine in a process shares one set of functions and V8 keeps their call sites monomorphic
// (closures per interpreter made a second machine in the same process run at half speed).

let h: Hart = null as unknown as Hart;
let X: Int32Array = new Int32Array(66);
let T: Int32Array = new Int32Array(0);
let M8: Uint8Array = new Uint8Array(0);
let M16: Uint16Array = new Uint16Array(0);
let M32: Int32Array = new Int32Array(0);
let PC: Int32Array = new Int32Array(2);
let SS: Int32Array = new Int32Array(0);
let PD: DecodedPages = decodedPages(0);
const MINSTRET = S.minstret;

/** Data and fetch TLB bases (in 32-bit words) for the current privilege and mstatus. */
let dMmu = 0;
let dBase = 0;
let fMmu = 0;
let fBase = 0;
/** Instructions retired in this run() call, and how many of them minstret already counts. */
let icount = 0;
let synced = 0;
/** Effective address of the current load/store. */
let vaLo = 0;
let vaHi = 0;

function bind(hart: Hart): void {
  if (h === hart) return;
  h = hart;
  fp = fpFor(hart);
  X = hart.x;
  T = hart.tlb;
  M8 = hart.m8;
  M16 = hart.m16;
  M32 = hart.m32;
  PC = hart.pc;
  SS = hart.s;
  PD = hart.decoded;
}

function refresh(): void {
  dMmu = h.dataMmu();
  dBase = dMmu * TLB_ENTRIES * TLB_WORDS;
  SS[S.dtlb] = TLB_OFF + dBase * 4;
  fMmu = h.fetchMmu();
  fBase = fMmu * TLB_ENTRIES * TLB_WORDS;
}

function sync(): void {
  const n = icount - synced;
  synced = icount;
  if (n === 0) return;
  const lo = SS[MINSTRET]! >>> 0;
  const sum = lo + n;
  SS[MINSTRET] = sum | 0;
  if (sum >= P32) SS[MINSTRET + 1] = (SS[MINSTRET + 1]! + Math.floor(sum / P32)) | 0;
}

// ---- helpers shared by handlers ----

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

/** pc + off (off a signed 32-bit value) into vaLo/vaHi. */
function pcPlus(off: number): void {
  const pLo = PC[0]!;
  const lo = (pLo + off) | 0;
  vaLo = lo;
  vaHi = (PC[1]! + (off >> 31) + ((lo >>> 0) < (pLo >>> 0) ? 1 : 0)) | 0;
}

function branch(taken: boolean, imm: number): St {
  if (!taken) return St.Next;
  pcPlus(imm);
  PC[0] = vaLo;
  PC[1] = vaHi;
  return St.Jump;
}

const ltu = (aLo: number, aHi: number, bLo: number, bHi: number): boolean =>
  aHi === bHi ? aLo >>> 0 < bLo >>> 0 : aHi >>> 0 < bHi >>> 0;
const lt = (aLo: number, aHi: number, bLo: number, bHi: number): boolean =>
  aHi === bHi ? aLo >>> 0 < bLo >>> 0 : aHi < bHi;

// Shifts of a 64-bit value by 0..63.
function shl(rd: number, lo: number, hi: number, sh: number): void {
  if (sh === 0) setRd(rd, lo, hi);
  else if (sh < 32) setRd(rd, lo << sh, (hi << sh) | (lo >>> (32 - sh)));
  else setRd(rd, 0, lo << (sh - 32));
}
function shr(rd: number, lo: number, hi: number, sh: number): void {
  if (sh === 0) setRd(rd, lo, hi);
  else if (sh < 32) setRd(rd, (lo >>> sh) | (hi << (32 - sh)), hi >>> sh);
  else setRd(rd, hi >>> (sh - 32), 0);
}
function sra(rd: number, lo: number, hi: number, sh: number): void {
  if (sh === 0) setRd(rd, lo, hi);
  else if (sh < 32) setRd(rd, (lo >>> sh) | (hi << (32 - sh)), hi >> sh);
  else setRd(rd, hi >> (sh - 32), hi >> 31);
}

/** The context F/D handlers are built with, for one hart (see fpFor). */
function contextFor(hart: Hart): HandlerContext {
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

// ---- the handler table, by mnemonic ----

const rd_ = (a: number): number => a & 0xff;
const r1 = (a: number): number => (a >>> 8) & 0xff;
const r2 = (a: number): number => (a >>> 16) & 0xff;
const len = (raw: number): number => ((raw & 3) === 3 ? 4 : 2);

/** System instructions run on synced state; their fields are unscaled: rd, rs1 (or zimm), rs2. */
const sys = (f: (rd: number, rs1: number, rs2: number, imm: number, raw: number) => St): Handler =>
  (a, imm, raw) => {
    sync();
    return f(a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, imm, raw);
  };

/** A CSR instruction. One that lets the slice go on may have changed the data MMU (SUM, MPRV). */
const csrOp = (op: CsrOp, imm: boolean): Handler =>
  sys((rd, src, _rs2, csr, raw) => {
    const st = execCsr(h, op, rd, src, imm, csr, raw);
    if (st === St.Next) refresh();
    return st;
  });

const H: Record<string, Handler> = {
  lui: (a, imm) => (setRd(rd_(a), imm, imm >> 31), St.Next),
  auipc: (a, imm) => (pcPlus(imm), setRd(rd_(a), vaLo, vaHi), St.Next),
  jal: (a, imm, raw) => {
    const pLo = PC[0]!;
    const pHi = PC[1]!;
    pcPlus(imm);
    PC[0] = vaLo;
    PC[1] = vaHi;
    const l = (pLo + len(raw)) | 0;
    setRd(rd_(a), l, (l >>> 0) < (pLo >>> 0) ? (pHi + 1) | 0 : pHi);
    return St.Jump;
  },
  jalr: (a, imm, raw) => {
    ea(r1(a), imm);
    const pLo = PC[0]!;
    const pHi = PC[1]!;
    PC[0] = vaLo & ~1;
    PC[1] = vaHi;
    const l = (pLo + len(raw)) | 0;
    setRd(rd_(a), l, (l >>> 0) < (pLo >>> 0) ? (pHi + 1) | 0 : pHi);
    return St.Jump;
  },
  beq: (a, imm) => branch(X[r1(a)] === X[r2(a)] && X[r1(a) + 1] === X[r2(a) + 1], imm),
  bne: (a, imm) => branch(X[r1(a)] !== X[r2(a)] || X[r1(a) + 1] !== X[r2(a) + 1], imm),
  blt: (a, imm) => branch(lt(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), imm),
  bge: (a, imm) => branch(!lt(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), imm),
  bltu: (a, imm) => branch(ltu(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), imm),
  bgeu: (a, imm) => branch(!ltu(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), imm),
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
  addi: (a, imm) => (ea(r1(a), imm), setRd(rd_(a), vaLo, vaHi), St.Next),
  slti: (a, imm) => (setRd(rd_(a), lt(X[r1(a)]!, X[r1(a) + 1]!, imm, imm >> 31) ? 1 : 0, 0), St.Next),
  sltiu: (a, imm) => (setRd(rd_(a), ltu(X[r1(a)]!, X[r1(a) + 1]!, imm, imm >> 31) ? 1 : 0, 0), St.Next),
  xori: (a, imm) => (setRd(rd_(a), X[r1(a)]! ^ imm, X[r1(a) + 1]! ^ (imm >> 31)), St.Next),
  ori: (a, imm) => (setRd(rd_(a), X[r1(a)]! | imm, X[r1(a) + 1]! | (imm >> 31)), St.Next),
  andi: (a, imm) => (setRd(rd_(a), X[r1(a)]! & imm, X[r1(a) + 1]! & (imm >> 31)), St.Next),
  slli: (a, imm) => (shl(rd_(a), X[r1(a)]!, X[r1(a) + 1]!, imm), St.Next),
  srli: (a, imm) => (shr(rd_(a), X[r1(a)]!, X[r1(a) + 1]!, imm), St.Next),
  srai: (a, imm) => (sra(rd_(a), X[r1(a)]!, X[r1(a) + 1]!, imm), St.Next),
  add: (a) => {
    const aLo = X[r1(a)]!;
    const lo = (aLo + X[r2(a)]!) | 0;
    setRd(rd_(a), lo, (X[r1(a) + 1]! + X[r2(a) + 1]! + ((lo >>> 0) < (aLo >>> 0) ? 1 : 0)) | 0);
    return St.Next;
  },
  sub: (a) => {
    const aLo = X[r1(a)]!;
    const bLo = X[r2(a)]!;
    setRd(rd_(a), (aLo - bLo) | 0, (X[r1(a) + 1]! - X[r2(a) + 1]! - ((aLo >>> 0) < (bLo >>> 0) ? 1 : 0)) | 0);
    return St.Next;
  },
  sll: (a) => (shl(rd_(a), X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]! & 63), St.Next),
  slt: (a) => (setRd(rd_(a), lt(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!) ? 1 : 0, 0), St.Next),
  sltu: (a) => (setRd(rd_(a), ltu(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!) ? 1 : 0, 0), St.Next),
  xor: (a) => (setRd(rd_(a), X[r1(a)]! ^ X[r2(a)]!, X[r1(a) + 1]! ^ X[r2(a) + 1]!), St.Next),
  srl: (a) => (shr(rd_(a), X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]! & 63), St.Next),
  sra: (a) => (sra(rd_(a), X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]! & 63), St.Next),
  or: (a) => (setRd(rd_(a), X[r1(a)]! | X[r2(a)]!, X[r1(a) + 1]! | X[r2(a) + 1]!), St.Next),
  and: (a) => (setRd(rd_(a), X[r1(a)]! & X[r2(a)]!, X[r1(a) + 1]! & X[r2(a) + 1]!), St.Next),
  addiw: (a, imm) => {
    const v = (X[r1(a)]! + imm) | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  slliw: (a, imm) => {
    const v = X[r1(a)]! << imm;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  srliw: (a, imm) => {
    const v = (X[r1(a)]! >>> imm) | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  sraiw: (a, imm) => {
    const v = X[r1(a)]! >> imm;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  addw: (a) => {
    const v = (X[r1(a)]! + X[r2(a)]!) | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  subw: (a) => {
    const v = (X[r1(a)]! - X[r2(a)]!) | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  sllw: (a) => {
    const v = X[r1(a)]! << (X[r2(a)]! & 31);
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  srlw: (a) => {
    const v = (X[r1(a)]! >>> (X[r2(a)]! & 31)) | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  sraw: (a) => {
    const v = X[r1(a)]! >> (X[r2(a)]! & 31);
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  // FENCE orders memory; a single in-order hart has nothing to do (FENCE.TSO and hints too).
  fence: () => St.Next,

  mul: (a) => (mul(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  mulh: (a) => (mulh(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  mulhsu: (a) => (mulhsu(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  mulhu: (a) => (mulhu(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  div: (a) => (div(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!, false), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  divu: (a) => (divu(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!, false), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  rem: (a) => (div(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!, true), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  remu: (a) => (divu(X[r1(a)]!, X[r1(a) + 1]!, X[r2(a)]!, X[r2(a) + 1]!, true), setRd(rd_(a), r64[0]!, r64[1]!), St.Next),
  mulw: (a) => {
    const v = Math.imul(X[r1(a)]!, X[r2(a)]!);
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  divw: (a) => {
    const x = X[r1(a)]!;
    const y = X[r2(a)]!;
    // Division by zero gives -1; -2^31 / -1 overflows to -2^31 (13.2).
    const v = y === 0 ? -1 : (x / y) | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  divuw: (a) => {
    const x = X[r1(a)]! >>> 0;
    const y = X[r2(a)]! >>> 0;
    const v = y === 0 ? -1 : Math.floor(x / y) | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  remw: (a) => {
    const x = X[r1(a)]!;
    const y = X[r2(a)]!;
    const v = y === 0 ? x : x % y | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },
  remuw: (a) => {
    const x = X[r1(a)]! >>> 0;
    const y = X[r2(a)]! >>> 0;
    const v = y === 0 ? x | 0 : x % y | 0;
    return setRd(rd_(a), v, v >> 31), St.Next;
  },

  'lr.w': lr(4),
  'lr.d': lr(8),
  'sc.w': sc(4),
  'sc.d': sc(8),

  // FENCE.I: decode cache entries are checked against the bits fetched, and a store into
  // translated code drops the translation, so there is nothing left to synchronise.
  'fence.i': () => St.Next,
  ecall: sys(() => execEcall(h)),
  ebreak: sys(() => execEbreak(h)),
  mret: sys((_rd, _rs1, _rs2, _imm, raw) => execMret(h, raw)),
  sret: sys((_rd, _rs1, _rs2, _imm, raw) => execSret(h, raw)),
  wfi: sys((_rd, _rs1, _rs2, _imm, raw) => execWfi(h, raw)),
  'sfence.vma': sys((_rd, rs1, _rs2, _imm, raw) => execSfenceVma(h, rs1, raw)),
  csrrw: csrOp(CsrOp.Rw, false),
  csrrs: csrOp(CsrOp.Rs, false),
  csrrc: csrOp(CsrOp.Rc, false),
  csrrwi: csrOp(CsrOp.Rw, true),
  csrrsi: csrOp(CsrOp.Rs, true),
  csrrci: csrOp(CsrOp.Rc, true),
};
for (const [op, f] of Object.entries(amoOps)) {
  H[`amo${op}.w`] = amo(4, f);
  H[`amo${op}.d`] = amo(8, f);
}
// F and D: the FPU's handlers hold their hart's registers, so each hart gets its own set (built
// on first use); the shared table dispatches through the set of the hart being run.
const FP_IDS = INSNS.filter((d) => d.ext === 'F' || d.ext === 'D');
const fpSets = new WeakMap<Hart, Handler[]>();
let fp: Handler[] = [];
function fpFor(hart: Hart): Handler[] {
  let set = fpSets.get(hart);
  if (!set) {
    const made = createFpHandlers(contextFor(hart));
    set = [];
    for (const d of FP_IDS) set[d.id] = made[d.name]!;
    fpSets.set(hart, set);
  }
  return set;
}
for (const d of FP_IDS) H[d.name] = (a, imm, raw) => fp[d.id]!(a, imm, raw);

const illegalH: Handler = (_a, _imm, raw) => {
  sync();
  return illegal(h, raw);
};

/** Handlers indexed by table id; a row without a handler is an error at start-up. */
const byId: Handler[] = INSNS.map((d) => {
  const f = H[d.name];
  if (!f) throw new Error(`interpreter: no handler for ${d.name}`);
  return f;
});

// ---- decode cache (see DecodedPages) ----

/** Handlers by the index a decode cache entry holds: 0 is an illegal instruction, k + 1 table id k. */
const byIndex: Handler[] = [illegalH, ...byId];

/** The decode cache page of a RAM page, made on first use. */
function decodedPage(ramPage: number): Int32Array {
  let d = PD.pages[ramPage];
  if (d === undefined) {
    if (PD.count >= DECODED_PAGES_MAX) {
      PD.pages.fill(undefined);
      PD.count = 0;
    }
    d = PD.pages[ramPage] = new Int32Array(8192);
    PD.count++;
  }
  return d;
}

/** Fills the entry at word i of decode cache page d with the instruction `raw`. */
function decodeInto(d: Int32Array, i: number, raw: number): void {
  d[i] = raw;
  const x = decode(raw);
  if (!x) {
    d[i + 1] = 0;
    d[i + 2] = 0;
    d[i + 3] = 0;
    return;
  }
  d[i + 1] = x.def.id + 1;
  const [a, imm] = packOperands(x);
  d[i + 2] = a;
  d[i + 3] = imm;
}

/**
 * True when the last run() stopped for a trap, a system instruction or a device access (the
 * caller must leave its slice there), false when it used up its budget or reached a page change.
 * Read it through interpreterHelper.stoppedAtExit(): an exported `let` is not reliably live
 * once transpiled.
 */
let lastExit = false;

const NO_PAGE = new Int32Array(0);

function run(budget: number, stopAtPageChange = false, seen: Uint8Array | null = null): number {
  refresh();
  icount = 0;
  synced = 0;
  lastExit = false;
  let fTagLo = TLB_INVALID;
  let fTagHi = 0;
  let fAdd = 0;
  let D: Int32Array = NO_PAGE;
  const pageLo = PC[0]! & ~0xfff;
  const pageHi = PC[1]!;
  while (icount < budget) {
    const pcLo = PC[0]!;
    const pcHi = PC[1]!;
    if ((pcLo & ~0xfff) !== fTagLo || pcHi !== fTagHi) {
      if (stopAtPageChange && ((pcLo & ~0xfff) !== pageLo || pcHi !== pageHi)) break;
      const e = fBase + ((pcLo >>> 12) & (TLB_ENTRIES - 1)) * TLB_WORDS;
      if (T[e + TLBW_EXEC] === (pcLo & ~0xfff) && T[e + TLBW_EXEC + 1] === pcHi) {
        fTagLo = pcLo & ~0xfff;
        fTagHi = pcHi;
        fAdd = T[e + TLBW_ADDEND]!;
        D = decodedPage(((((pcLo & ~0xfff) + fAdd) >>> 0) - RAM_HOST) >>> 12);
      } else {
        sync();
        if (!fetchFill(h, fMmu, pcLo, pcHi)) {
          lastExit = true;
          break;
        }
        continue;
      }
    }
    const off = (pcLo + fAdd) >>> 1;
    let raw = M16[off]!;
    if ((raw & 3) === 3) {
      if ((pcLo & 0xfff) === 0xffe) {
        sync();
        const hi = fetchHigh(h, fMmu, pcLo, pcHi);
        if (hi < 0) {
          lastExit = true;
          break;
        }
        raw |= hi << 16;
      } else {
        raw |= M16[off + 1]! << 16;
      }
    }
    if (seen !== null) seen[(pcLo & 0xfff) >>> 1] = 1;
    // An empty entry (index 0) is decoded again each time: only an illegal instruction keeps it.
    const i = (pcLo & 0xffe) << 1;
    if (D[i] !== raw || D[i + 1] === 0) decodeInto(D, i, raw);
    const st = byIndex[D[i + 1]!]!(D[i + 2]!, D[i + 3]!, raw);
    if (st === St.Next) {
      const n = (pcLo + ((raw & 3) === 3 ? 4 : 2)) | 0;
      PC[0] = n;
      if ((n >>> 0) < (pcLo >>> 0)) PC[1] = (pcHi + 1) | 0;
      icount++;
      continue;
    }
    if (st === St.Jump) {
      icount++;
      continue;
    }
    if (st === St.Refetch) {
      // SFENCE.VMA: the cached fetch translation may be gone.
      const n = (pcLo + ((raw & 3) === 3 ? 4 : 2)) | 0;
      PC[0] = n;
      if ((n >>> 0) < (pcLo >>> 0)) PC[1] = (pcHi + 1) | 0;
      icount++;
      fTagLo = TLB_INVALID;
      continue;
    }
    lastExit = true;
    if (st === St.Trap) break;
    if (st === St.Exit) {
      const n = (pcLo + ((raw & 3) === 3 ? 4 : 2)) | 0;
      PC[0] = n;
      if ((n >>> 0) < (pcLo >>> 0)) PC[1] = (pcHi + 1) | 0;
    }
    icount++;
    break;
  }
  sync();
  return icount;
}

/** Creates the reference interpreter for one hart. */
export function createInterpreter(hart: Hart): Engine {
  return {
    run(budget: number): number {
      bind(hart);
      return run(budget);
    },
    reset(): void {
      hart.decoded.pages.fill(undefined);
      hart.decoded.count = 0;
    },
  };
}

/**
 * The interpreter as another engine's helper (the translator's cold code and slow paths). All
 * calls assume the hart's state in memory is exact (pc, minstret).
 */
export const interpreterHelper = {
  /** Binds the interpreter to `hart` and refreshes its view of the MMU state. */
  prepare(hart: Hart): void {
    bind(hart);
    refresh();
    icount = synced = 0;
  },
  /**
   * Runs up to `budget` instructions, stopping early at a page change when asked; then, when
   * `seen` is given, marks in it each instruction run (by halfword offset in the page).
   */
  run(budget: number, stopAtPageChange: boolean, seen: Uint8Array | null = null): number {
    return run(budget, stopAtPageChange, stopAtPageChange ? seen : null);
  },
  /** Whether the last run stopped for a trap, a system instruction or a device access. */
  stoppedAtExit(): boolean {
    return lastExit;
  },
  /**
   * Executes one instruction's handler (by table id) with the pc already pointing at it and
   * without moving the pc afterwards (the caller does that). memFlags tell what it touched.
   */
  exec(id: number, a: number, imm: number, raw: number): St {
    icount = synced = 0;
    memFlags.codeWrite = false;
    return byId[id]!(a, imm, raw);
  },
};
