/**
 * The interpreter's handlers for RV64I's register, immediate, jump and branch instructions
 * (Unprivileged ch. 2, 4) and the M extension (ch. 13), on 32-bit halves (int64.ts for the
 * 64-bit products and quotients).
 *
 * Handlers are module-level functions over the registers of the hart being run, which
 * bindIntHandlers sets (interp.ts calls it when it binds a hart): every machine in a process
 * shares one set of functions, and V8 keeps their call sites monomorphic.
 */
import type { Handler } from './handler.ts';
import { div, divu, lt, ltu, mul, mulh, mulhsu, mulhu, r64 } from './int64.ts';
import { St } from './status.ts';

let X: Int32Array = new Int32Array(66);
let PC: Int32Array = new Int32Array(2);

/** Binds the handlers to a hart's x registers and pc. */
export function bindIntHandlers(x: Int32Array, pc: Int32Array): void {
  X = x;
  PC = pc;
}

/** A computed address or pc: the low and high halves. */
let vaLo = 0;
let vaHi = 0;

/** x[rs1] + imm into vaLo/vaHi. */
function ea(rs1: number, imm: number): void {
  const bLo = X[rs1]!;
  const lo = (bLo + imm) | 0;
  vaLo = lo;
  vaHi = (X[rs1 + 1]! + (imm >> 31) + ((lo >>> 0) < (bLo >>> 0) ? 1 : 0)) | 0;
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

const rd_ = (a: number): number => a & 0xff;
const r1 = (a: number): number => (a >>> 8) & 0xff;
const r2 = (a: number): number => (a >>> 16) & 0xff;
const len = (raw: number): number => ((raw & 3) === 3 ? 4 : 2);

/** The integer and M handlers, by mnemonic. */
export const INT_HANDLERS: Record<string, Handler> = {
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
};
