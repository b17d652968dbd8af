/**
 * Emitters for the F and D instructions with a fast path (Unprivileged ch. 20, 21); the rest,
 * and every case a fast path refuses, run through the interpreter's handler (exec-fp.ts),
 * which also raises illegal instructions precisely. Each fast path runs only where it provably
 * does what exec-fp.ts does:
 * - mstatus.FS: Off falls back; an instruction that writes an f register needs FS Dirty
 *   already, so the write changes nothing else (the interpreter makes it Dirty the first time).
 * - arithmetic needs round-to-nearest-even (wasm's only mode) and NX already accrued; a
 *   finite result above the smallest normal then raises no flag that is not already set
 *   (no NV, DZ, OF; no UF since tininess is detected after rounding: a result of exactly
 *   2^emin may be tiny, so it falls back too). Zeros, subnormals, infinities and NaNs fall back.
 * - singles need their operands NaN-boxed.
 */
import type { BlockEmitter, EmitFn } from './emit.ts';
import { BOX } from './emit-mem.ts';
import { MIN_NORMAL_D } from './fma-rne.ts';
import { F_FMA, FCSR, fo, FsGuard, type Insn } from './region.ts';
import { F64, Op } from './wasm.ts';

const SIGN64 = -(1n << 63n);
/** The smallest normal single: a result of exactly this size may have underflowed (tininess after rounding). */
const MIN_NORMAL_S = 2 ** -126;

/**
 * Emits `fast` with the interpreter as its fallback. `fast` leaves nothing on the stack and
 * calls `unless()` with an i32 pushed to leave for the interpreter when it is zero.
 */
function guarded(em: BlockEmitter, j: number, x: Insn, fast: (unless: () => void) => void): void {
  const c = em.c;
  c.block().block();
  fast(() => {
    c.op(Op.i32_eqz).brIf(0);
  });
  c.br(1);
  c.end();
  em.viaInterpreter(j, x);
  c.end();
}

/** Pushes 1 when the effective rounding mode of `rm` is RNE and NX has accrued (rm is 0 or 7). */
function rneInexact(em: BlockEmitter, rm: number): void {
  const c = em.c;
  c.i32(em.hb).mem(Op.i32_load, 2, FCSR);
  // fflags.NX is bit 0, frm bits 5-7 (Unprivileged 20.2).
  if (rm === 0) c.i32(1).op(Op.i32_and);
  else c.i32(0xe1).op(Op.i32_and).i32(1).op(Op.i32_eq);
}

/** Pushes 1 when the rounding mode field is not reserved (rm 0-4, or 7 with frm 0-4); rm is not 5 or 6. */
function rmLegal(em: BlockEmitter, rm: number): void {
  const c = em.c;
  if (rm !== 7) c.i32(1);
  else c.i32(em.hb).mem(Op.i32_load, 2, FCSR).i32(5).op(Op.i32_shr_u).i32(7).op(Op.i32_and).i32(5).op(Op.i32_lt_u);
}

/** Pushes 1 when f[r] holds a NaN-boxed single, for each register of `rs`. */
function boxed(em: BlockEmitter, rs: number[]): void {
  const c = em.c;
  rs.forEach((r, i) => {
    c.i32(em.hb).mem(Op.i32_load, 2, fo(r) + 4);
    if (i > 0) c.op(Op.i32_and);
  });
  c.i32(-1).op(Op.i32_eq);
}

function loadD(em: BlockEmitter, r: number, neg = false): void {
  em.c.i32(em.hb).mem(Op.f64_load, 3, fo(r));
  if (neg) em.c.op(Op.f64_neg);
}

function loadS(em: BlockEmitter, r: number): void {
  em.c.i32(em.hb).mem(Op.f32_load, 2, fo(r));
}

/** Pushes 1 when local `l` (f64, or f32 when `single`) is finite and above the smallest normal in magnitude. */
function normal(em: BlockEmitter, l: number, single: boolean): void {
  const c = em.c;
  if (single) {
    c.get(l).op(Op.f32_abs).f32(MIN_NORMAL_S).op(Op.f32_gt);
    c.get(l).op(Op.f32_abs).f32(Infinity).op(Op.f32_lt).op(Op.i32_and);
  } else {
    c.get(l).op(Op.f64_abs).f64(MIN_NORMAL_D).op(Op.f64_gt);
    c.get(l).op(Op.f64_abs).f64(Infinity).op(Op.f64_lt).op(Op.i32_and);
  }
}

/** Stores the single in local `l` to f[rd], NaN-boxed. */
function storeBoxed(em: BlockEmitter, rd: number, l: number): void {
  em.c.i32(em.hb).get(l).op(Op.i32_reinterpret_f32).op(Op.i64_extend_i32_u).i64(BOX).op(Op.i64_or).mem(Op.i64_store, 3, fo(rd));
}

/**
 * FADD/FSUB/FMUL/FDIV/FSQRT (and, through `operands`, the fused multiply-adds): the host's
 * correctly rounded result under RNE. `sources` are the f registers a single's operands come
 * from (each must be NaN-boxed).
 */
function farith(em: BlockEmitter, j: number, x: Insn, single: boolean, sources: number[], operands: () => void): void {
  const d = x.d;
  if (d.rm !== 0 && d.rm !== 7) return em.viaInterpreter(j, x);
  const c = em.c;
  const r = single ? em.locals.sr : em.locals.fr;
  guarded(em, j, x, (unless) => {
    em.fsState(FsGuard.Dirty);
    unless();
    rneInexact(em, d.rm);
    unless();
    if (single) {
      boxed(em, sources);
      unless();
    }
    operands();
    c.set(r);
    normal(em, r, single);
    unless();
    if (single) storeBoxed(em, d.rd, r);
    else c.i32(em.hb).get(r).mem(Op.f64_store, 3, fo(d.rd));
  });
}

function binD(em: BlockEmitter, j: number, x: Insn, op: Op): void {
  farith(em, j, x, false, [], () => {
    loadD(em, x.d.rs1);
    loadD(em, x.d.rs2);
    em.c.op(op);
  });
}

function binS(em: BlockEmitter, j: number, x: Insn, op: Op): void {
  farith(em, j, x, true, [x.d.rs1, x.d.rs2], () => {
    loadS(em, x.d.rs1);
    loadS(em, x.d.rs2);
    em.c.op(op);
  });
}

/** x × y + z (negations are exact), through the module's fmaRne helper; NaN from it falls back. */
function fmaD(em: BlockEmitter, j: number, x: Insn, negProduct: boolean, negAddend: boolean): void {
  farith(em, j, x, false, [], () => {
    loadD(em, x.d.rs1, negProduct);
    loadD(em, x.d.rs2);
    loadD(em, x.d.rs3, negAddend);
    em.c.call(F_FMA);
  });
}

/**
 * Single-precision fused multiply-add in binary64: the product of two singles is exact, and
 * s = fl(p + z) with its TwoSum error e. Rounding s to single gives the correctly rounded
 * result unless e ≠ 0 and s is exactly a midpoint between two singles (then falls back).
 */
function fmaS(em: BlockEmitter, j: number, x: Insn, negProduct: boolean, negAddend: boolean): void {
  const c = em.c;
  const { fa, fb, fr } = em.locals;
  const d = x.d;
  farith(em, j, x, true, [d.rs1, d.rs2, d.rs3], () => {
    loadS(em, d.rs1);
    c.op(Op.f64_promote_f32);
    if (negProduct) c.op(Op.f64_neg);
    loadS(em, d.rs2);
    c.op(Op.f64_promote_f32).op(Op.f64_mul).set(fa); // p, exact
    loadS(em, d.rs3);
    c.op(Op.f64_promote_f32);
    if (negAddend) c.op(Op.f64_neg);
    c.set(fb);
    // s = p + z; e = (p - (s - bb)) + (z - bb), bb = s - p
    c.get(fa).get(fb).op(Op.f64_add).set(fr);
    c.get(fa).get(fr).get(fr).get(fa).op(Op.f64_sub).op(Op.f64_sub).op(Op.f64_sub);
    c.get(fb).get(fr).get(fa).op(Op.f64_sub).op(Op.f64_sub).op(Op.f64_add);
    c.f64(0).op(Op.f64_eq);
    // ... or s not at a single's midpoint: the 29 bits below a single's significand are not 1000...0.
    c.get(fr).op(Op.i64_reinterpret_f64).i64(0x1fff_ffff).op(Op.i64_and).i64(0x1000_0000).op(Op.i64_ne);
    c.op(Op.i32_or);
    // Fall back (the result NaN fails the normal check) when the rounding could be double.
    c.if(F64).get(fr).else().f64(NaN).end();
    c.op(Op.f32_demote_f64);
  });
}

/** FSGNJ/FSGNJN/FSGNJX (kind 0, 1, 2): bit operations, no flags, no canonicalising. */
function sgnj(em: BlockEmitter, j: number, x: Insn, kind: number, single: boolean): void {
  const c = em.c;
  const d = x.d;
  guarded(em, j, x, (unless) => {
    em.fsState(FsGuard.Dirty);
    unless();
    if (single) {
      boxed(em, [d.rs1, d.rs2]);
      unless();
    }
    c.i32(em.hb);
    if (single) {
      const sign = 0x8000_0000 | 0;
      c.i32(em.hb).mem(Op.i32_load, 2, fo(d.rs1));
      if (kind !== 2) c.i32(~sign).op(Op.i32_and);
      c.i32(em.hb).mem(Op.i32_load, 2, fo(d.rs2)).i32(sign).op(Op.i32_and);
      if (kind === 1) c.i32(sign).op(Op.i32_xor);
      c.op(kind === 2 ? Op.i32_xor : Op.i32_or);
      c.op(Op.i64_extend_i32_u).i64(BOX).op(Op.i64_or);
    } else {
      c.i32(em.hb).mem(Op.i64_load, 3, fo(d.rs1));
      if (kind !== 2) c.i64(~SIGN64).op(Op.i64_and);
      c.i32(em.hb).mem(Op.i64_load, 3, fo(d.rs2)).i64(SIGN64).op(Op.i64_and);
      if (kind === 1) c.i64(SIGN64).op(Op.i64_xor);
      c.op(kind === 2 ? Op.i64_xor : Op.i64_or);
    }
    c.mem(Op.i64_store, 3, fo(d.rd));
  });
}

/** FEQ/FLT/FLE: only with no NaN operand (NaNs raise NV by rules that differ per instruction). */
function fcmp(em: BlockEmitter, j: number, x: Insn, op: Op, single: boolean): void {
  const c = em.c;
  const d = x.d;
  const { fa, fr, sr } = em.locals;
  guarded(em, j, x, (unless) => {
    em.fsState(FsGuard.On);
    unless();
    if (single) {
      boxed(em, [d.rs1, d.rs2]);
      unless();
      loadS(em, d.rs1);
      c.set(sr);
      loadS(em, d.rs2);
      c.op(Op.f64_promote_f32).set(fr);
      c.get(sr).op(Op.f64_promote_f32).set(fa); // promotion is exact and keeps the order
    } else {
      loadD(em, d.rs1);
      c.set(fa);
      loadD(em, d.rs2);
      c.set(fr);
    }
    c.get(fa).get(fa).op(Op.f64_eq).get(fr).get(fr).op(Op.f64_eq).op(Op.i32_and);
    unless();
    em.pushXAddr(d.rd);
    c.get(fa).get(fr).op(op).op(Op.i64_extend_i32_u);
    em.storeX(d.rd);
  });
}

/** FCVT.D.W/WU/L/LU, FCVT.S.W: integer to float, only where exact (no flag, any legal mode). */
function fromInt(em: BlockEmitter, j: number, x: Insn, kind: 'w' | 'wu' | 'l' | 'lu' | 'sw'): void {
  const d = x.d;
  if (d.rm === 5 || d.rm === 6) return em.viaInterpreter(j, x);
  const c = em.c;
  guarded(em, j, x, (unless) => {
    em.fsState(FsGuard.Dirty);
    unless();
    rmLegal(em, d.rm);
    unless();
    if (kind === 'l') {
      em.getX(d.rs1);
      c.i64(2 ** 53).op(Op.i64_add).i64(2 ** 54).op(Op.i64_le_u);
      unless();
    } else if (kind === 'lu') {
      em.getX(d.rs1);
      c.i64(2 ** 53).op(Op.i64_le_u);
      unless();
    } else if (kind === 'sw') {
      em.getX(d.rs1);
      c.op(Op.i32_wrap_i64).i32(2 ** 24).op(Op.i32_add).i32(2 ** 25).op(Op.i32_le_u);
      unless();
    }
    if (kind === 'sw') {
      em.getX(d.rs1);
      c.op(Op.i32_wrap_i64).op(Op.f32_convert_i32_s).set(em.locals.sr);
      storeBoxed(em, d.rd, em.locals.sr);
      return;
    }
    c.i32(em.hb);
    em.getX(d.rs1);
    if (kind === 'w') c.op(Op.i32_wrap_i64).op(Op.f64_convert_i32_s);
    else if (kind === 'wu') c.op(Op.i32_wrap_i64).op(Op.f64_convert_i32_u);
    else if (kind === 'l') c.op(Op.f64_convert_i64_s);
    else c.op(Op.f64_convert_i64_u);
    c.mem(Op.f64_store, 3, fo(d.rd));
  });
}

/**
 * FCVT.W.D/FCVT.L.D with static RTZ (what C casts compile to): in range, the truncation is
 * the result; an inexact one raises NX, which needs NX accrued and FS Dirty already.
 */
function toIntRtz(em: BlockEmitter, j: number, x: Insn, long: boolean): void {
  const d = x.d;
  if (d.rm !== 1) return em.viaInterpreter(j, x);
  const c = em.c;
  const { fa } = em.locals;
  guarded(em, j, x, (unless) => {
    em.fsState(FsGuard.On);
    unless();
    loadD(em, d.rs1);
    c.set(fa);
    // -2^31 - 1 < v < 2^31 (or -2^63 ≤ v < 2^63): the truncation fits; NaN fails.
    c.get(fa).f64(long ? -(2 ** 63) : -(2 ** 31) - 1).op(long ? Op.f64_ge : Op.f64_gt);
    c.get(fa).f64(long ? 2 ** 63 : 2 ** 31).op(Op.f64_lt).op(Op.i32_and);
    unless();
    // Exact, or NX already set with FS Dirty (the interpreter would write fflags).
    c.get(fa).op(Op.f64_trunc).get(fa).op(Op.f64_eq);
    em.fsState(FsGuard.Dirty);
    c.i32(em.hb).mem(Op.i32_load, 2, FCSR).i32(1).op(Op.i32_and).op(Op.i32_and).op(Op.i32_or);
    unless();
    em.pushXAddr(d.rd);
    c.get(fa);
    if (long) c.op(Op.i64_trunc_f64_s);
    else c.op(Op.i32_trunc_f64_s).op(Op.i64_extend_i32_s);
    em.storeX(d.rd);
  });
}

/** FMV.X.D/FMV.X.W (to x: no FS change), FMV.D.X/FMV.W.X (to f: FS Dirty already). */
function fmv(em: BlockEmitter, j: number, x: Insn, toX: boolean, single: boolean): void {
  const c = em.c;
  const d = x.d;
  guarded(em, j, x, (unless) => {
    em.fsState(toX ? FsGuard.On : FsGuard.Dirty);
    unless();
    if (toX) {
      em.pushXAddr(d.rd);
      c.i32(em.hb).mem(single ? Op.i64_load32_s : Op.i64_load, single ? 2 : 3, fo(d.rs1));
      em.storeX(d.rd);
    } else {
      c.i32(em.hb);
      em.getX(d.rs1);
      if (single) c.i64(BOX).op(Op.i64_or);
      c.mem(Op.i64_store, 3, fo(d.rd));
    }
  });
}

/** The F and D rows with a fast path, by mnemonic (FP loads and stores are in emit-mem.ts). */
export const FP_EMITTERS: Record<string, EmitFn> = {
  'fadd.d': (e, j, x) => binD(e, j, x, Op.f64_add),
  'fsub.d': (e, j, x) => binD(e, j, x, Op.f64_sub),
  'fmul.d': (e, j, x) => binD(e, j, x, Op.f64_mul),
  'fdiv.d': (e, j, x) => binD(e, j, x, Op.f64_div),
  'fsqrt.d': (e, j, x) =>
    farith(e, j, x, false, [], () => {
      loadD(e, x.d.rs1);
      e.c.op(Op.f64_sqrt);
    }),
  'fadd.s': (e, j, x) => binS(e, j, x, Op.f32_add),
  'fsub.s': (e, j, x) => binS(e, j, x, Op.f32_sub),
  'fmul.s': (e, j, x) => binS(e, j, x, Op.f32_mul),
  'fdiv.s': (e, j, x) => binS(e, j, x, Op.f32_div),
  'fsqrt.s': (e, j, x) =>
    farith(e, j, x, true, [x.d.rs1], () => {
      loadS(e, x.d.rs1);
      e.c.op(Op.f32_sqrt);
    }),
  'fmadd.d': (e, j, x) => fmaD(e, j, x, false, false),
  'fmsub.d': (e, j, x) => fmaD(e, j, x, false, true),
  'fnmsub.d': (e, j, x) => fmaD(e, j, x, true, false),
  'fnmadd.d': (e, j, x) => fmaD(e, j, x, true, true),
  'fmadd.s': (e, j, x) => fmaS(e, j, x, false, false),
  'fmsub.s': (e, j, x) => fmaS(e, j, x, false, true),
  'fnmsub.s': (e, j, x) => fmaS(e, j, x, true, false),
  'fnmadd.s': (e, j, x) => fmaS(e, j, x, true, true),
  'fsgnj.d': (e, j, x) => sgnj(e, j, x, 0, false),
  'fsgnjn.d': (e, j, x) => sgnj(e, j, x, 1, false),
  'fsgnjx.d': (e, j, x) => sgnj(e, j, x, 2, false),
  'fsgnj.s': (e, j, x) => sgnj(e, j, x, 0, true),
  'fsgnjn.s': (e, j, x) => sgnj(e, j, x, 1, true),
  'fsgnjx.s': (e, j, x) => sgnj(e, j, x, 2, true),
  'feq.d': (e, j, x) => fcmp(e, j, x, Op.f64_eq, false),
  'flt.d': (e, j, x) => fcmp(e, j, x, Op.f64_lt, false),
  'fle.d': (e, j, x) => fcmp(e, j, x, Op.f64_le, false),
  'feq.s': (e, j, x) => fcmp(e, j, x, Op.f64_eq, true),
  'flt.s': (e, j, x) => fcmp(e, j, x, Op.f64_lt, true),
  'fle.s': (e, j, x) => fcmp(e, j, x, Op.f64_le, true),
  'fcvt.d.w': (e, j, x) => fromInt(e, j, x, 'w'),
  'fcvt.d.wu': (e, j, x) => fromInt(e, j, x, 'wu'),
  'fcvt.d.l': (e, j, x) => fromInt(e, j, x, 'l'),
  'fcvt.d.lu': (e, j, x) => fromInt(e, j, x, 'lu'),
  'fcvt.s.w': (e, j, x) => fromInt(e, j, x, 'sw'),
  'fcvt.w.d': (e, j, x) => toIntRtz(e, j, x, false),
  'fcvt.l.d': (e, j, x) => toIntRtz(e, j, x, true),
  'fmv.x.d': (e, j, x) => fmv(e, j, x, true, false),
  'fmv.x.w': (e, j, x) => fmv(e, j, x, true, true),
  'fmv.d.x': (e, j, x) => fmv(e, j, x, false, false),
  'fmv.w.x': (e, j, x) => fmv(e, j, x, false, true),
};
