/**
 * Comparisons, minimum/maximum and classification for both formats (Unprivileged 20.8, 20.9,
 * 20.6 for FMIN/FMAX, and ch. 21 for the D forms). NaNs are recognised on the bit patterns
 * before any value reaches host arithmetic.
 */
import { isNaN32, isSNaN32, num32 } from './f32.ts';
import { isNaN64, isSNaN64, num64 } from './f64.ts';
import { CANONICAL_NAN_D_HI, CANONICAL_NAN_S, fpOut, NV, raise } from './state.ts';

/** FEQ.D: a quiet comparison, invalid only for a signaling NaN; 0 when either is NaN. */
export function f64Eq(aLo: number, aHi: number, bLo: number, bHi: number): number {
  if (isNaN64(aLo, aHi) || isNaN64(bLo, bHi)) {
    if (isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi)) raise(NV);
    return 0;
  }
  return num64(aLo, aHi) === num64(bLo, bHi) ? 1 : 0;
}

/** FLT.D (`le` false) and FLE.D: signaling comparisons, invalid for any NaN. */
export function f64Lt(aLo: number, aHi: number, bLo: number, bHi: number, le: boolean): number {
  if (isNaN64(aLo, aHi) || isNaN64(bLo, bHi)) {
    raise(NV);
    return 0;
  }
  const x = num64(aLo, aHi);
  const y = num64(bLo, bHi);
  return (le ? x <= y : x < y) ? 1 : 0;
}

/**
 * FMIN.D / FMAX.D, IEEE 754-2019 minimumNumber / maximumNumber: a NaN operand yields the
 * other operand, two NaNs the canonical NaN, a signaling NaN raises NV even when the result
 * is a number, and -0 is less than +0.
 */
export function f64MinMax(aLo: number, aHi: number, bLo: number, bHi: number, max: boolean): void {
  const an = isNaN64(aLo, aHi);
  const bn = isNaN64(bLo, bHi);
  if (isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi)) raise(NV);
  let pickA: boolean;
  if (an && bn) {
    fpOut[0] = 0;
    fpOut[1] = CANONICAL_NAN_D_HI;
    return;
  } else if (an || bn) {
    pickA = bn;
  } else {
    const x = num64(aLo, aHi);
    const y = num64(bLo, bHi);
    // Equal values differ at most in the sign of zero: min takes the negative one.
    pickA = x === y ? (aHi < 0) !== max : (x < y) !== max;
  }
  fpOut[0] = pickA ? aLo : bLo;
  fpOut[1] = pickA ? aHi : bHi;
}

/** The FCLASS mask (Unprivileged 20.9, table "Format of result of FCLASS") from sign, exponent class and fraction facts. */
function classify(neg: boolean, expAllOnes: boolean, expZero: boolean, fracZero: boolean, quiet: boolean): number {
  if (expAllOnes) {
    if (!fracZero) return quiet ? 1 << 9 : 1 << 8;
    return neg ? 1 << 0 : 1 << 7;
  }
  if (expZero) {
    if (fracZero) return neg ? 1 << 3 : 1 << 4;
    return neg ? 1 << 2 : 1 << 5;
  }
  return neg ? 1 << 1 : 1 << 6;
}

/** FCLASS.D. */
export function f64Class(lo: number, hi: number): number {
  const e = hi & 0x7ff0_0000;
  return classify(hi < 0, e === 0x7ff0_0000, e === 0, ((hi & 0xf_ffff) | lo) === 0, (hi & 0x8_0000) !== 0);
}

/** FEQ.S. */
export function f32Eq(a: number, b: number): number {
  if (isNaN32(a) || isNaN32(b)) {
    if (isSNaN32(a) || isSNaN32(b)) raise(NV);
    return 0;
  }
  return num32(a) === num32(b) ? 1 : 0;
}

/** FLT.S (`le` false) and FLE.S. */
export function f32Lt(a: number, b: number, le: boolean): number {
  if (isNaN32(a) || isNaN32(b)) {
    raise(NV);
    return 0;
  }
  const x = num32(a);
  const y = num32(b);
  return (le ? x <= y : x < y) ? 1 : 0;
}

/** FMIN.S / FMAX.S (see f64MinMax). */
export function f32MinMax(a: number, b: number, max: boolean): void {
  const an = isNaN32(a);
  const bn = isNaN32(b);
  if (isSNaN32(a) || isSNaN32(b)) raise(NV);
  if (an && bn) {
    fpOut[0] = CANONICAL_NAN_S;
  } else if (an || bn) {
    fpOut[0] = an ? b : a;
  } else {
    const x = num32(a);
    const y = num32(b);
    fpOut[0] = (x === y ? (a < 0) !== max : (x < y) !== max) ? a : b;
  }
}

/** FCLASS.S. */
export function f32Class(b: number): number {
  const e = b & 0x7f80_0000;
  return classify(b < 0, e === 0x7f80_0000, e === 0, (b & 0x7f_ffff) === 0, (b & 0x40_0000) !== 0);
}
