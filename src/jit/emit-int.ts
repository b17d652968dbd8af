/**
 * Emitters for the integer instructions (RV64I's register and immediate operations,
 * Unprivileged ch. 2 and 4) and the M extension (ch. 13): each becomes the WebAssembly i64 or
 * i32 operation it is, over x registers in the hart block. Division gets RISC-V's results for
 * a zero divisor and overflow; MULH* compute the high product inline, from 32-bit halves.
 */
import type { Decoded } from '../isa/decode.ts';
import type { BlockEmitter, EmitFn } from './emit.ts';
import { I64, Op } from './wasm.ts';

/** rd = x[rs1] op x[rs2]. */
function rr(e: BlockEmitter, d: Decoded, op: Op): void {
  e.pushXAddr(d.rd);
  e.getX(d.rs1);
  e.getX(d.rs2);
  e.c.op(op);
  e.storeX(d.rd);
}

/** rd = x[rs1] op imm. */
function ri(e: BlockEmitter, d: Decoded, op: Op, imm: number): void {
  e.pushXAddr(d.rd);
  e.getX(d.rs1);
  e.c.i64(imm).op(op);
  e.storeX(d.rd);
}

/** A 32-bit operation (W form): wrap both operands, operate, sign-extend. */
function rrw(e: BlockEmitter, d: Decoded, op: Op): void {
  e.pushXAddr(d.rd);
  e.getX(d.rs1);
  e.c.op(Op.i32_wrap_i64);
  e.getX(d.rs2);
  e.c.op(Op.i32_wrap_i64).op(op).op(Op.i64_extend_i32_s);
  e.storeX(d.rd);
}

function riw(e: BlockEmitter, d: Decoded, op: Op, imm: number): void {
  e.pushXAddr(d.rd);
  e.getX(d.rs1);
  e.c.op(Op.i32_wrap_i64).i32(imm).op(op).op(Op.i64_extend_i32_s);
  e.storeX(d.rd);
}

/** SLT/SLTU and their immediate forms: rd = 1 when the comparison holds, else 0. */
function cmp(e: BlockEmitter, d: Decoded, op: Op, withImm: boolean): void {
  e.pushXAddr(d.rd);
  e.getX(d.rs1);
  if (withImm) e.c.i64(d.imm);
  else e.getX(d.rs2);
  e.c.op(op).op(Op.i64_extend_i32_u);
  e.storeX(d.rd);
}

/** Division with the RISC-V results for a zero divisor and overflow (Unprivileged 13.2). */
function div(e: BlockEmitter, d: Decoded, signed: boolean, rem: boolean, word: boolean): void {
  const c = e.c;
  const t = e.locals.t;
  const va = e.locals.va; // a second i64 temporary
  e.getX(d.rs1);
  c.set(va);
  e.getX(d.rs2);
  c.set(t);
  if (word) {
    // Operate on sign- or zero-extended 32-bit values in i64; results sign-extend from 32.
    for (const l of [va, t]) c.get(l).op(Op.i32_wrap_i64).op(signed ? Op.i64_extend_i32_s : Op.i64_extend_i32_u).set(l);
  }
  e.pushXAddr(d.rd);
  c.get(t).op(Op.i64_eqz).if(I64);
  // x / 0 = all ones; x % 0 = x.
  if (rem) c.get(va);
  else c.i64(-1);
  c.else();
  if (signed && !word) {
    // Most negative / -1 overflows: quotient = dividend, remainder 0 (i64.div_s would trap).
    c.get(va).i64(-(1n << 63n)).op(Op.i64_eq).get(t).i64(-1).op(Op.i64_eq).op(Op.i32_and).if(I64);
    if (rem) c.i64(0);
    else c.get(va);
    c.else();
  }
  c.get(va).get(t).op(rem ? (signed ? Op.i64_rem_s : Op.i64_rem_u) : signed ? Op.i64_div_s : Op.i64_div_u);
  if (signed && !word) c.end();
  c.end();
  if (word) c.op(Op.i32_wrap_i64).op(Op.i64_extend_i32_s);
  e.storeX(d.rd);
}

/**
 * MULH/MULHSU/MULHU: the unsigned high product of 32-bit halves, inline (a multiprecision loop
 * runs one per limb), corrected for signed operands.
 */
function mulh(e: BlockEmitter, d: Decoded, aSigned: boolean, bSigned: boolean): void {
  const c = e.c;
  const a = e.locals.va;
  const b = e.locals.t;
  const lh = e.locals.t3;
  const hl = e.locals.t4;
  const lo32 = (l: number): void => {
    c.get(l).i64(0xffff_ffff).op(Op.i64_and);
  };
  const hi32 = (l: number): void => {
    c.get(l).i64(32).op(Op.i64_shr_u);
  };
  e.pushXAddr(d.rd);
  e.getX(d.rs1);
  c.set(a);
  e.getX(d.rs2);
  c.set(b);
  lo32(a); hi32(b); c.op(Op.i64_mul).set(lh);
  hi32(a); lo32(b); c.op(Op.i64_mul).set(hl);
  // ah * bh + (lh >> 32) + (hl >> 32) + (mid >> 32), where mid = (al * bl >> 32) + lo(lh) + lo(hl)
  // (below 3 * 2^32: no overflow).
  hi32(a); hi32(b); c.op(Op.i64_mul);
  hi32(lh); c.op(Op.i64_add);
  hi32(hl); c.op(Op.i64_add);
  lo32(a); lo32(b); c.op(Op.i64_mul).i64(32).op(Op.i64_shr_u);
  lo32(lh); c.op(Op.i64_add);
  lo32(hl); c.op(Op.i64_add);
  c.i64(32).op(Op.i64_shr_u).op(Op.i64_add);
  // Signed corrections: subtract b when a < 0, and a when b < 0 (two's complement identity).
  if (aSigned) c.get(b).get(a).i64(63).op(Op.i64_shr_s).op(Op.i64_and).op(Op.i64_sub);
  if (bSigned) c.get(a).get(b).i64(63).op(Op.i64_shr_s).op(Op.i64_and).op(Op.i64_sub);
  e.storeX(d.rd);
}

/** The integer and M rows' emitters, by mnemonic. */
export const INT_EMITTERS: Record<string, EmitFn> = {
  addi: (e, _j, x) => ri(e, x.d, Op.i64_add, x.d.imm),
  slti: (e, _j, x) => cmp(e, x.d, Op.i64_lt_s, true),
  sltiu: (e, _j, x) => cmp(e, x.d, Op.i64_lt_u, true),
  xori: (e, _j, x) => ri(e, x.d, Op.i64_xor, x.d.imm),
  ori: (e, _j, x) => ri(e, x.d, Op.i64_or, x.d.imm),
  andi: (e, _j, x) => ri(e, x.d, Op.i64_and, x.d.imm),
  slli: (e, _j, x) => ri(e, x.d, Op.i64_shl, x.d.imm),
  srli: (e, _j, x) => ri(e, x.d, Op.i64_shr_u, x.d.imm),
  srai: (e, _j, x) => ri(e, x.d, Op.i64_shr_s, x.d.imm),
  add: (e, _j, x) => rr(e, x.d, Op.i64_add),
  sub: (e, _j, x) => rr(e, x.d, Op.i64_sub),
  sll: (e, _j, x) => rr(e, x.d, Op.i64_shl),
  slt: (e, _j, x) => cmp(e, x.d, Op.i64_lt_s, false),
  sltu: (e, _j, x) => cmp(e, x.d, Op.i64_lt_u, false),
  xor: (e, _j, x) => rr(e, x.d, Op.i64_xor),
  srl: (e, _j, x) => rr(e, x.d, Op.i64_shr_u),
  sra: (e, _j, x) => rr(e, x.d, Op.i64_shr_s),
  or: (e, _j, x) => rr(e, x.d, Op.i64_or),
  and: (e, _j, x) => rr(e, x.d, Op.i64_and),
  addiw: (e, _j, x) => riw(e, x.d, Op.i32_add, x.d.imm),
  slliw: (e, _j, x) => riw(e, x.d, Op.i32_shl, x.d.imm),
  srliw: (e, _j, x) => riw(e, x.d, Op.i32_shr_u, x.d.imm),
  sraiw: (e, _j, x) => riw(e, x.d, Op.i32_shr_s, x.d.imm),
  addw: (e, _j, x) => rrw(e, x.d, Op.i32_add),
  subw: (e, _j, x) => rrw(e, x.d, Op.i32_sub),
  sllw: (e, _j, x) => rrw(e, x.d, Op.i32_shl),
  srlw: (e, _j, x) => rrw(e, x.d, Op.i32_shr_u),
  sraw: (e, _j, x) => rrw(e, x.d, Op.i32_shr_s),
  mulw: (e, _j, x) => rrw(e, x.d, Op.i32_mul),
  mul: (e, _j, x) => rr(e, x.d, Op.i64_mul),
  mulhu: (e, _j, x) => mulh(e, x.d, false, false),
  mulh: (e, _j, x) => mulh(e, x.d, true, true),
  mulhsu: (e, _j, x) => mulh(e, x.d, true, false),
  div: (e, _j, x) => div(e, x.d, true, false, false),
  divu: (e, _j, x) => div(e, x.d, false, false, false),
  rem: (e, _j, x) => div(e, x.d, true, true, false),
  remu: (e, _j, x) => div(e, x.d, false, true, false),
  divw: (e, _j, x) => div(e, x.d, true, false, true),
  divuw: (e, _j, x) => div(e, x.d, false, false, true),
  remw: (e, _j, x) => div(e, x.d, true, true, true),
  remuw: (e, _j, x) => div(e, x.d, false, true, true),
};
