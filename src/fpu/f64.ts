/**
 * binary64 addition, multiplication, division and square root (Unprivileged ch. 21 on
 * IEEE 754-2008 5.4.1), on bit patterns given as low/high int32 halves. Results go to fpOut,
 * exceptions to the accrued flags (state.ts).
 *
 * Each operation has a fast form on host doubles (f64AddFast, ...): when the operands'
 * magnitudes guarantee a normal result far from overflow and underflow, the host computes
 * the round-to-nearest result and an error-free transformation gives the exact error, which
 * decides inexact and the directed modes (finishNum). A fast form returns NaN, raising
 * nothing, when it cannot decide; NaN operands, which a host double may not carry faithfully,
 * always end there. The bit-pattern form then decides NaNs, infinities and zeros on the bits
 * and rescales finite operands to [1, 2), so the same host arithmetic stays exact, with the
 * exponent carried separately into the general rounder (round.ts). A caller that holds its
 * operands as doubles (the hart's f registers have a Float64Array view) calls the fast form
 * first and skips the conversions.
 */
import { prodErr, twoProd } from './eft.ts';
import { finishNum, roundDD64 } from './round.ts';
import { CANONICAL_NAN_D_HI, DZ, fpOut, NV, raise, RDN } from './state.ts';

const EXP = 0x7ff0_0000;
const SIGN = 0x8000_0000 | 0;
const TWO64 = 18446744073709551616;

const BUF = new ArrayBuffer(8);
const F64 = new Float64Array(BUF);
const I32 = new Int32Array(BUF);

/** The double with bits (lo, hi); only for non-NaN patterns (a host NaN need not keep its payload). */
export function num64(lo: number, hi: number): number {
  I32[0] = lo;
  I32[1] = hi;
  return F64[0]!;
}

/** Writes a non-NaN double to fpOut. */
export function out64(v: number): void {
  F64[0] = v;
  fpOut[0] = I32[0]!;
  fpOut[1] = I32[1]!;
}

/** Whether a binary64 pattern is a NaN (exponent all ones, fraction non-zero). */
export function isNaN64(lo: number, hi: number): boolean {
  return (hi & EXP) === EXP && ((hi & 0xf_ffff) | lo) !== 0;
}

/** A signaling NaN: a NaN with the quiet bit (the fraction's top bit) clear. */
export function isSNaN64(lo: number, hi: number): boolean {
  return isNaN64(lo, hi) && (hi & 0x8_0000) === 0;
}

/** Whether a binary64 pattern is ±0. */
export function isZero64(lo: number, hi: number): boolean {
  return ((hi & 0x7fff_ffff) | lo) === 0;
}

/** Writes the canonical NaN (the opening of Unprivileged ch. 21), raising NV when `invalid`. */
export function nan64(invalid: boolean): void {
  if (invalid) raise(NV);
  fpOut[0] = 0;
  fpOut[1] = CANONICAL_NAN_D_HI;
}

/** Exponent of the last unpack64 result's scale. */
export let unpackExp = 0;

/**
 * A finite non-zero binary64 as ±[1, 2) × 2^unpackExp: returns the signed significand as a
 * double, which host arithmetic can then combine exactly regardless of the real exponent.
 */
export function unpack64(lo: number, hi: number): number {
  const be = (hi >>> 20) & 0x7ff;
  I32[0] = lo;
  if (be !== 0) {
    I32[1] = (hi & 0x800f_ffff) | 0x3ff0_0000;
    unpackExp = be - 1023;
    return F64[0]!;
  }
  // Subnormal: scaling by 2^64 is exact and makes it normal.
  I32[1] = hi;
  F64[0] = F64[0]! * TWO64;
  const h = I32[1]!;
  unpackExp = ((h >>> 20) & 0x7ff) - 1023 - 64;
  I32[1] = (h & 0x800f_ffff) | 0x3ff0_0000;
  return F64[0]!;
}

const MIN_NORMAL = 2.2250738585072014e-308; // 2^-1022
const LO_960 = 2 ** -960;
const HI_960 = 2 ** 960;
const LO_958 = 2 ** -958;

/**
 * x + y rounded under rm, for doubles x and y; NaN (nothing raised) when the sum overflows or
 * an operand is not finite. A sum is inexact only when it is at least 2^-1021, so an inexact
 * sum is normal and never underflows.
 */
export function f64AddFast(x: number, y: number, rm: number): number {
  const s = x + y;
  const bb = s - x;
  const err = (x - (s - bb)) + (y - bb);
  if (err === 0) {
    // An exact zero sum is +0 in every mode but RDN, where it is -0 unless both operands are
    // +0 (IEEE 754 6.3); the host's sum has the RNE sign, and -((-x) + (-y)) the RDN one.
    if (s === 0) return rm === RDN ? -(-x - y) : s;
    return s - s === 0 ? s : NaN;
  }
  if (err - err !== 0 || s - s !== 0) return NaN;
  return finishNum(s, err, true, rm);
}

/** a + b (fsub.d is a + (-b): negation is exact and does not signal). */
export function f64Add(aLo: number, aHi: number, bLo: number, bHi: number, rm: number): void {
  if ((aHi & EXP) === EXP || (bHi & EXP) === EXP) return addSpecial(aLo, aHi, bLo, bHi);
  const x = num64(aLo, aHi);
  const y = num64(bLo, bHi);
  const r = f64AddFast(x, y, rm);
  if (r === r) return out64(r);
  // The rounded sum overflowed, so both operands are at least 2^970: halving them is exact.
  const x2 = x * 0.5;
  const y2 = y * 0.5;
  const s2 = x2 + y2;
  const b2 = s2 - x2;
  roundDD64(s2, (x2 - (s2 - b2)) + (y2 - b2), 1, true, rm);
}

function addSpecial(aLo: number, aHi: number, bLo: number, bHi: number): void {
  const an = isNaN64(aLo, aHi);
  const bn = isNaN64(bLo, bHi);
  if (an || bn) return nan64(isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi));
  const aInf = (aHi & EXP) === EXP;
  const bInf = (bHi & EXP) === EXP;
  // ∞ - ∞ is invalid (IEEE 754 7.2).
  if (aInf && bInf && (aHi ^ bHi) < 0) return nan64(true);
  fpOut[0] = 0;
  fpOut[1] = aInf ? aHi : bHi;
}

/**
 * x × y rounded under rm; NaN unless both are normal and the product is within 2^±960 (then
 * twoProd is exact: a split that overflows shows as a NaN error).
 */
export function f64MulFast(x: number, y: number, rm: number): number {
  const p = x * y;
  const ap = p < 0 ? -p : p;
  if (!(ap >= LO_960 && ap <= HI_960 && (x < 0 ? -x : x) >= MIN_NORMAL && (y < 0 ? -y : y) >= MIN_NORMAL)) return NaN;
  twoProd(x, y);
  const err = prodErr;
  if (err === 0) return p;
  if (err - err !== 0) return NaN;
  return finishNum(p, err, true, rm);
}

/** a × b. */
export function f64Mul(aLo: number, aHi: number, bLo: number, bHi: number, rm: number): void {
  const r = f64MulFast(num64(aLo, aHi), num64(bLo, bHi), rm);
  if (r === r) return out64(r);
  const sign = (aHi ^ bHi) & SIGN;
  if (isNaN64(aLo, aHi) || isNaN64(bLo, bHi)) return nan64(isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi));
  const aInf = (aHi & EXP) === EXP;
  const bInf = (bHi & EXP) === EXP;
  const aZero = isZero64(aLo, aHi);
  const bZero = isZero64(bLo, bHi);
  // ∞ × 0 is invalid (IEEE 754 7.2).
  if ((aInf && bZero) || (bInf && aZero)) return nan64(true);
  fpOut[0] = 0;
  if (aInf || bInf) {
    fpOut[1] = sign | EXP;
    return;
  }
  if (aZero || bZero) {
    fpOut[1] = sign;
    return;
  }
  const a = unpack64(aLo, aHi);
  const e = unpackExp;
  const p = twoProd(a, unpack64(bLo, bHi));
  roundDD64(p, prodErr, e + unpackExp, true, rm);
}

/**
 * x ÷ y rounded under rm; NaN unless x ≥ 2^-958 (so q × y's error is representable), y is
 * normal and the quotient is within 2^±960. An inexact quotient is never a 53-bit midpoint
 * (nor, then, a midpoint of a coarser subnormal grid), so the sign of the exact remainder is
 * all the rounding needs.
 */
export function f64DivFast(x: number, y: number, rm: number): number {
  const q = x / y;
  const aq = q < 0 ? -q : q;
  if (!(aq >= LO_960 && aq <= HI_960 && (x < 0 ? -x : x) >= LO_958 && (y < 0 ? -y : y) >= MIN_NORMAL)) return NaN;
  const p = twoProd(q, y);
  // The remainder x - q·y is exact (x - p by Sterbenz's lemma, then a representable difference).
  const rem = (x - p) - prodErr;
  if (rem === 0) return q;
  if (rem - rem !== 0) return NaN;
  return finishNum(q, (rem > 0) === (y > 0) ? 1 : -1, false, rm);
}

/** a ÷ b. */
export function f64Div(aLo: number, aHi: number, bLo: number, bHi: number, rm: number): void {
  const r = f64DivFast(num64(aLo, aHi), num64(bLo, bHi), rm);
  if (r === r) return out64(r);
  const sign = (aHi ^ bHi) & SIGN;
  if (isNaN64(aLo, aHi) || isNaN64(bLo, bHi)) return nan64(isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi));
  const aInf = (aHi & EXP) === EXP;
  const bInf = (bHi & EXP) === EXP;
  const aZero = isZero64(aLo, aHi);
  const bZero = isZero64(bLo, bHi);
  // ∞/∞ and 0/0 are invalid (IEEE 754 7.2); finite/0 divides by zero (7.3).
  if ((aInf && bInf) || (aZero && bZero)) return nan64(true);
  fpOut[0] = 0;
  if (aInf || bZero) {
    if (bZero && !aInf) raise(DZ);
    fpOut[1] = sign | EXP;
    return;
  }
  if (bInf || aZero) {
    fpOut[1] = sign;
    return;
  }
  const a = unpack64(aLo, aHi);
  const e = unpackExp;
  const b = unpack64(bLo, bHi);
  const q = a / b;
  const p = twoProd(q, b);
  const rem = (a - p) - prodErr;
  roundDD64(q, rem === 0 ? 0 : (rem > 0) === (b > 0) ? 1 : -1, e - unpackExp, false, rm);
}

/**
 * √x rounded under rm; NaN unless 2^-958 ≤ x ≤ 2^960. An inexact root is never a midpoint
 * either; the sign of x - s² gives the direction.
 */
export function f64SqrtFast(x: number, rm: number): number {
  if (!(x >= LO_958 && x <= HI_960)) return NaN;
  const s = Math.sqrt(x);
  const p = twoProd(s, s);
  const rem = (x - p) - prodErr;
  if (rem === 0) return s;
  return finishNum(s, rem, false, rm);
}

/** √a. */
export function f64Sqrt(aLo: number, aHi: number, rm: number): void {
  const r = f64SqrtFast(num64(aLo, aHi), rm);
  if (r === r) return out64(r);
  if (isNaN64(aLo, aHi)) return nan64(isSNaN64(aLo, aHi));
  if (isZero64(aLo, aHi)) {
    fpOut[0] = 0;
    fpOut[1] = aHi; // √±0 = ±0 (IEEE 754 5.4.1)
    return;
  }
  if (aHi < 0) return nan64(true);
  if ((aHi & EXP) === EXP) {
    fpOut[0] = 0;
    fpOut[1] = EXP;
    return;
  }
  let a = unpack64(aLo, aHi);
  let e = unpackExp;
  if (e & 1) {
    a *= 2;
    e -= 1;
  }
  const s = Math.sqrt(a);
  const p = twoProd(s, s);
  const rem = (a - p) - prodErr;
  roundDD64(s, rem, e / 2, false, rm);
}
