/**
 * binary64 addition, multiplication, division and square root (Unprivileged ch. 21 on
 * IEEE 754-2008 5.4.1), on bit patterns given as low/high int32 halves. Results go to fpOut,
 * exceptions to the accrued flags (state.ts).
 *
 * Fast path: when the operands' exponents guarantee a normal result far from both overflow
 * and underflow, the host computes the round-to-nearest result and an error-free
 * transformation gives the exact error, which decides inexact and the directed modes
 * (finish64). Everything else (NaNs, infinities, zeros, subnormals, results near the
 * exponent limits) is decided on the bit patterns, and finite operands are rescaled to [1, 2)
 * so the same host arithmetic stays exact, with the exponent carried separately into the
 * general rounder (round.ts).
 */
import { prodErr, twoProd } from './eft.ts';
import { finish64, roundDD64 } from './round.ts';
import { CANONICAL_NAN_D_HI, DZ, fpOut, NV, NX, raise, RDN, RNE } from './state.ts';

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

export function isNaN64(lo: number, hi: number): boolean {
  return (hi & EXP) === EXP && ((hi & 0xf_ffff) | lo) !== 0;
}

/** A signaling NaN: a NaN with the quiet bit (the fraction's top bit) clear. */
export function isSNaN64(lo: number, hi: number): boolean {
  return isNaN64(lo, hi) && (hi & 0x8_0000) === 0;
}

export function isZero64(lo: number, hi: number): boolean {
  return ((hi & 0x7fff_ffff) | lo) === 0;
}

/** Writes the canonical NaN (Unprivileged 21.1), raising NV when `invalid`. */
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

/** a + b (fsub.d is a + (-b): negation is exact and does not signal). */
export function f64Add(aLo: number, aHi: number, bLo: number, bHi: number, rm: number): void {
  if ((aHi & EXP) === EXP || (bHi & EXP) === EXP) return addSpecial(aLo, aHi, bLo, bHi);
  const x = num64(aLo, aHi);
  const y = num64(bLo, bHi);
  const s = x + y;
  const bb = s - x;
  const err = (x - (s - bb)) + (y - bb);
  if (err === 0) {
    if (s === 0) {
      // An exact zero sum is +0 in every mode but RDN, where it is -0; x + x keeps x's sign (IEEE 754 6.3).
      fpOut[0] = 0;
      fpOut[1] = (rm === RDN ? aHi | bHi : aHi & bHi) & SIGN;
      return;
    }
    if (s - s === 0) return out64(s);
  } else if (err - err === 0 && s - s === 0) {
    // A sum is inexact only when it is at least 2^-1021: it is normal and cannot underflow.
    if (rm !== RNE) return finish64(s, err, true, rm);
    raise(NX);
    return out64(s);
  }
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

/** a × b. */
export function f64Mul(aLo: number, aHi: number, bLo: number, bHi: number, rm: number): void {
  const ea = (aHi >>> 20) & 0x7ff;
  const eb = (bHi >>> 20) & 0x7ff;
  // Fast: both normal, below 2^996 (the split in twoProd), product exponent within ±960.
  if ((ea - 1) >>> 0 < 2018 && (eb - 1) >>> 0 < 2018 && (ea + eb - 2046 + 960) >>> 0 <= 1920) {
    const p = twoProd(num64(aLo, aHi), num64(bLo, bHi));
    const err = prodErr;
    if (err === 0) return out64(p);
    if (rm !== RNE) return finish64(p, err, true, rm);
    raise(NX);
    return out64(p);
  }
  const sign = (aHi ^ bHi) & SIGN;
  const an = isNaN64(aLo, aHi);
  const bn = isNaN64(bLo, bHi);
  if (an || bn) return nan64(isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi));
  const aInf = ea === 0x7ff;
  const bInf = eb === 0x7ff;
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
 * a ÷ b. An inexact quotient is never a 53-bit midpoint (nor, then, a midpoint of a coarser
 * subnormal grid), so the sign of the remainder is all the rounder needs.
 */
export function f64Div(aLo: number, aHi: number, bLo: number, bHi: number, rm: number): void {
  const ea = (aHi >>> 20) & 0x7ff;
  const eb = (bHi >>> 20) & 0x7ff;
  // Fast: a ≥ 2^-958 (so q × b's error is representable), b normal and below 2^996, quotient exponent within ±960.
  if ((ea - 65) >>> 0 < 1954 && (eb - 1) >>> 0 < 2018 && (ea - eb + 960) >>> 0 <= 1920) {
    const x = num64(aLo, aHi);
    const y = num64(bLo, bHi);
    const q = x / y;
    const p = twoProd(q, y);
    // The remainder x - q·y is exact (x - p by Sterbenz's lemma, then the representable difference).
    const rem = (x - p) - prodErr;
    if (rem === 0) return out64(q);
    if (rm !== RNE) return finish64(q, (rem > 0) === (y > 0) ? 1 : -1, false, rm);
    raise(NX);
    return out64(q);
  }
  const sign = (aHi ^ bHi) & SIGN;
  if (isNaN64(aLo, aHi) || isNaN64(bLo, bHi)) return nan64(isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi));
  const aInf = ea === 0x7ff;
  const bInf = eb === 0x7ff;
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

/** √a. An inexact root is never a midpoint either; the sign of a - s² gives the direction. */
export function f64Sqrt(aLo: number, aHi: number, rm: number): void {
  const ea = (aHi >>> 20) & 0x7ff;
  if (aHi >= 0 && (ea - 100) >>> 0 < 1800) {
    const x = num64(aLo, aHi);
    const s = Math.sqrt(x);
    const p = twoProd(s, s);
    const rem = (x - p) - prodErr;
    if (rem === 0) return out64(s);
    if (rm !== RNE) return finish64(s, rem, false, rm);
    raise(NX);
    return out64(s);
  }
  if (isNaN64(aLo, aHi)) return nan64(isSNaN64(aLo, aHi));
  if (isZero64(aLo, aHi)) {
    fpOut[0] = 0;
    fpOut[1] = aHi; // √±0 = ±0 (IEEE 754 5.4.1)
    return;
  }
  if (aHi < 0) return nan64(true);
  if (ea === 0x7ff) {
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
