/**
 * The module-internal helper fmaRne of a region module: a binary64 fused multiply-add rounded
 * to nearest-even by error-free transformations, for the FMADD.D family's fast path
 * (emit-fp.ts). test/jit/fma.test.ts checks it bit for bit against the FPU.
 */
import { Code, F64, I32, Op } from './wasm.ts';

/** The smallest normal double: a result of exactly this size may have underflowed (tininess after rounding). */
export const MIN_NORMAL_D = 2 ** -1022;

const SPLIT = 134217729; // 2^27 + 1: Veltkamp's split into two 26-bit halves

/**
 * The module-internal helper fmaRne(x, y, z): x × y + z rounded once to nearest-even, or NaN
 * when it cannot decide. It is src/fpu/fma64.ts's f64FmaFast for RNE, on the same window: x
 * and y normal and below 2^995, z zero or within [2^-800, 2^900], the product within 2^±800;
 * then a × b = ph + pl exactly (Dekker) and three TwoSums give exact = r + w + v with
 * r = fl(s + u), |w| ≤ ½ulp(r). The result is r, except at an exact midpoint r + w, where v's
 * sign decides. A non-zero result is normal; exact zeros and everything else fall back.
 */
export function fmaFunction(): Code {
  const c = new Code(3);
  const [x, y, z] = [0, 1, 2];
  const l = (): number => c.local(F64);
  const [ph, pl, s, t, u, v, r, w, bb, ah, al, bh, bl, half] = [l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l()];
  const er = c.local(I32);
  const nan = (): void => {
    c.f64(NaN).op(Op.return);
  };
  const inRange = (a: number, lo: number, hi: number): void => {
    c.get(a).op(Op.f64_abs).f64(lo).op(Op.f64_ge).get(a).op(Op.f64_abs).f64(hi).op(Op.f64_lt).op(Op.i32_and);
  };
  const bexp = (a: number): void => {
    c.get(a).op(Op.i64_reinterpret_f64).i64(52).op(Op.i64_shr_u).op(Op.i32_wrap_i64).i32(0x7ff).op(Op.i32_and);
  };
  // The window (NaNs and infinities fail it).
  inRange(x, MIN_NORMAL_D, 2 ** 995);
  inRange(y, MIN_NORMAL_D, 2 ** 995);
  c.op(Op.i32_and);
  c.get(z).f64(0).op(Op.f64_eq);
  c.get(z).op(Op.f64_abs).f64(2 ** -800).op(Op.f64_ge).get(z).op(Op.f64_abs).f64(2 ** 900).op(Op.f64_le).op(Op.i32_and);
  c.op(Op.i32_or).op(Op.i32_and).op(Op.i32_eqz).if();
  nan();
  c.end();
  // Dekker's product: ph + pl = x × y exactly.
  c.get(x).get(y).op(Op.f64_mul).set(ph);
  for (const [a, hi, lo] of [[x, ah, al], [y, bh, bl]] as const) {
    c.f64(SPLIT).get(a).op(Op.f64_mul).set(t);
    c.get(t).get(t).get(a).op(Op.f64_sub).op(Op.f64_sub).set(hi);
    c.get(a).get(hi).op(Op.f64_sub).set(lo);
  }
  // pl = (((ah × bh - ph) + ah × bl) + al × bh) + al × bl
  c.get(ah).get(bh).op(Op.f64_mul).get(ph).op(Op.f64_sub);
  c.get(ah).get(bl).op(Op.f64_mul).op(Op.f64_add);
  c.get(al).get(bh).op(Op.f64_mul).op(Op.f64_add);
  c.get(al).get(bl).op(Op.f64_mul).op(Op.f64_add).set(pl);
  c.get(ph).op(Op.f64_abs).f64(2 ** -800).op(Op.f64_ge).get(ph).op(Op.f64_abs).f64(2 ** 800).op(Op.f64_le).op(Op.i32_and);
  c.op(Op.i32_eqz).if();
  nan();
  c.end();
  /** sum = a + b, err = its exact error (Knuth's TwoSum). */
  const twoSum = (a: number, b: number, sum: number, err: number): void => {
    c.get(a).get(b).op(Op.f64_add).set(sum);
    c.get(sum).get(a).op(Op.f64_sub).set(bb);
    c.get(a).get(sum).get(bb).op(Op.f64_sub).op(Op.f64_sub);
    c.get(b).get(bb).op(Op.f64_sub).op(Op.f64_add).set(err);
  };
  twoSum(ph, z, s, t);
  twoSum(t, pl, u, v);
  twoSum(s, u, r, w);
  // v = 0: exact = r + w with r = fl(r + w).
  c.get(v).f64(0).op(Op.f64_eq).if();
  c.get(r).op(Op.return);
  c.end();
  // r = 0: then w = 0 and exact = v.
  c.get(r).f64(0).op(Op.f64_eq).if();
  c.get(v).op(Op.return);
  c.end();
  // v decides only at a midpoint when ulp(u) divides ulp(s) and a quarter of ulp(r).
  bexp(r);
  c.tee(er);
  bexp(u);
  c.i32(2).op(Op.i32_add).op(Op.i32_lt_u);
  bexp(u);
  bexp(s);
  c.op(Op.i32_gt_u).op(Op.i32_or);
  c.get(er).i32(54).op(Op.i32_lt_u).op(Op.i32_or); // ½ulp(r) below normal: not in the window
  c.if();
  nan();
  c.end();
  c.get(w).f64(0).op(Op.f64_eq).if();
  c.get(r).op(Op.return);
  c.end();
  // half = ½ulp(r) = 2^(er - 1076), or ¼ulp(r) when w points below a power of two.
  c.get(er).i32(53).op(Op.i32_sub).op(Op.i64_extend_i32_u).i64(52).op(Op.i64_shl).op(Op.f64_reinterpret_i64).set(half);
  c.get(r).f64(0).op(Op.f64_lt).get(w).f64(0).op(Op.f64_lt).op(Op.i32_ne);
  c.get(r).op(Op.i64_reinterpret_f64).i64(0xf_ffff_ffff_ffff).op(Op.i64_and).op(Op.i64_eqz).op(Op.i32_and).if();
  c.get(half).f64(0.5).op(Op.f64_mul).set(half);
  c.end();
  c.get(w).op(Op.f64_abs).get(half).op(Op.f64_ne).if();
  c.get(r).op(Op.return);
  c.end();
  // A midpoint: past it (v on w's side) the neighbour r + 2w is nearest.
  c.get(v).f64(0).op(Op.f64_lt).get(w).f64(0).op(Op.f64_lt).op(Op.i32_eq).if();
  c.get(r).get(w).get(w).op(Op.f64_add).op(Op.f64_add).op(Op.return);
  c.end();
  c.get(r);
  return c;
}
