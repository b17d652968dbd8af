/**
 * binary32 arithmetic (Unprivileged ch. 20): add, multiply, divide, square root and fused
 * multiply-add on f32 bit patterns (one int32 each; NaN-boxing is the caller's concern).
 *
 * Every binary32 value is exactly a double, and the double range covers every binary32
 * intermediate: a product of two is exact, a sum or fused sum is exact as a double-double
 * (TwoSum), a quotient or root has an exact remainder. The double-double is then rounded once
 * to binary32. For round-to-nearest, rounding the double result again with Math.fround is
 * already correct for +, -, ×, ÷ and √ (53 ≥ 2·24 + 2 makes the double rounding innocuous),
 * which is the fast path; the fused multiply-add and the other modes use the exact rounder.
 */
import { prodErr, twoProd } from './eft.ts';
import { roundDD32 } from './round.ts';
import { CANONICAL_NAN_S, DZ, fpOut, NV, NX, raise, RDN, RNE } from './state.ts';

const EXP = 0x7f80_0000;
const SIGN = 0x8000_0000 | 0;
const MIN_NORMAL = 1.1754943508222875e-38; // 2^-126
const MAX = 3.4028234663852886e38;

const BUF = new ArrayBuffer(8);
const F32 = new Float32Array(BUF);
const I32 = new Int32Array(BUF);

/** The value of a non-NaN binary32 pattern, as a double. */
export function num32(b: number): number {
  I32[0] = b;
  return F32[0]!;
}

/** Whether a binary32 pattern is a NaN (exponent all ones, fraction non-zero). */
export function isNaN32(b: number): boolean {
  return (b & EXP) === EXP && (b & 0x7f_ffff) !== 0;
}

/** A signaling NaN: the quiet bit (fraction bit 22) is clear. */
export function isSNaN32(b: number): boolean {
  return isNaN32(b) && (b & 0x40_0000) === 0;
}

/** Writes the canonical NaN (Unprivileged 20.3), raising NV when `invalid`. */
export function nan32(invalid: boolean): void {
  if (invalid) raise(NV);
  fpOut[0] = CANONICAL_NAN_S;
}

/**
 * Rounds s + err to binary32 (s = RN53 of the exact value, err the exact error, or only its
 * sign when !errExact). `innocuous` says RN24(s) is the correctly rounded result, which holds
 * for the basic operations and for any exact s.
 */
export function finish32(s: number, err: number, errExact: boolean, innocuous: boolean, rm: number): void {
  if (rm === RNE && innocuous) {
    const f = Math.fround(s);
    const af = f < 0 ? -f : f;
    // Above 2^-126 the exact value is not tiny: no underflow to consider.
    if (af > MIN_NORMAL && af <= MAX) {
      F32[0] = f;
      fpOut[0] = I32[0]!;
      if (f !== s || err !== 0) raise(NX);
      return;
    }
  }
  roundDD32(s, err, 0, errExact, rm);
}

/** A sum with a NaN or infinite operand. */
function addSpecial(a: number, b: number): void {
  if (isNaN32(a) || isNaN32(b)) return nan32(isSNaN32(a) || isSNaN32(b));
  const aInf = (a & EXP) === EXP;
  if (aInf && (b & EXP) === EXP && (a ^ b) < 0) return nan32(true); // ∞ - ∞
  fpOut[0] = aInf ? a : b;
}

/** a + b (fsub.s is a + (-b)). */
export function f32Add(a: number, b: number, rm: number): void {
  if ((a & EXP) === EXP || (b & EXP) === EXP) return addSpecial(a, b);
  const x = num32(a);
  const y = num32(b);
  const s = x + y;
  if (s === 0) {
    // Exact zero: +0, or -0 rounding down; x + x keeps x's sign (IEEE 754 6.3).
    fpOut[0] = (rm === RDN ? a | b : a & b) & SIGN;
    return;
  }
  const bb = s - x;
  finish32(s, (x - (s - bb)) + (y - bb), true, true, rm);
}

/** a × b. */
export function f32Mul(a: number, b: number, rm: number): void {
  const sign = (a ^ b) & SIGN;
  if ((a & EXP) === EXP || (b & EXP) === EXP) {
    if (isNaN32(a) || isNaN32(b)) return nan32(isSNaN32(a) || isSNaN32(b));
    if ((a & 0x7fff_ffff) === 0 || (b & 0x7fff_ffff) === 0) return nan32(true); // ∞ × 0
    fpOut[0] = sign | EXP;
    return;
  }
  const p = num32(a) * num32(b); // exact: 48 significant bits
  if (p === 0) {
    fpOut[0] = sign;
    return;
  }
  finish32(p, 0, true, true, rm);
}

/** a ÷ b. */
export function f32Div(a: number, b: number, rm: number): void {
  const sign = (a ^ b) & SIGN;
  if (isNaN32(a) || isNaN32(b)) return nan32(isSNaN32(a) || isSNaN32(b));
  const aInf = (a & EXP) === EXP;
  const bInf = (b & EXP) === EXP;
  const aZero = (a & 0x7fff_ffff) === 0;
  const bZero = (b & 0x7fff_ffff) === 0;
  if ((aInf && bInf) || (aZero && bZero)) return nan32(true);
  if (aInf || bZero) {
    if (bZero && !aInf) raise(DZ);
    fpOut[0] = sign | EXP;
    return;
  }
  if (bInf || aZero) {
    fpOut[0] = sign;
    return;
  }
  const x = num32(a);
  const y = num32(b);
  const q = x / y;
  const p = twoProd(q, y);
  const rem = (x - p) - prodErr;
  finish32(q, rem === 0 ? 0 : (rem > 0) === (y > 0) ? 1 : -1, false, true, rm);
}

/** √a. */
export function f32Sqrt(a: number, rm: number): void {
  if (isNaN32(a)) return nan32(isSNaN32(a));
  if ((a & 0x7fff_ffff) === 0) {
    fpOut[0] = a; // √±0 = ±0
    return;
  }
  if (a < 0) return nan32(true);
  if (a === EXP) {
    fpOut[0] = a;
    return;
  }
  const x = num32(a);
  const s = Math.sqrt(x);
  const p = twoProd(s, s);
  finish32(s, (x - p) - prodErr, false, true, rm);
}

/** a × b + c with one rounding (callers flip signs for the other three forms). */
export function f32Fma(a: number, b: number, c: number, rm: number): void {
  const pSign = (a ^ b) & SIGN;
  const aInf = (a & 0x7fff_ffff) === EXP;
  const bInf = (b & 0x7fff_ffff) === EXP;
  const infTimesZero = (aInf && (b & 0x7fff_ffff) === 0) || (bInf && (a & 0x7fff_ffff) === 0);
  if (isNaN32(a) || isNaN32(b) || isNaN32(c)) {
    // Unprivileged 20.6: ∞ × 0 is invalid even when the addend is a quiet NaN.
    return nan32(infTimesZero || isSNaN32(a) || isSNaN32(b) || isSNaN32(c));
  }
  if (infTimesZero) return nan32(true);
  const cInf = (c & 0x7fff_ffff) === EXP;
  if (aInf || bInf) {
    if (cInf && (c & SIGN) !== pSign) return nan32(true); // ∞ - ∞
    fpOut[0] = pSign | EXP;
    return;
  }
  if (cInf) {
    fpOut[0] = c;
    return;
  }
  const p = num32(a) * num32(b); // exact
  const z = num32(c);
  const s = p + z;
  if (s === 0) {
    fpOut[0] = rm === RDN ? pSign | (c & SIGN) : pSign & c;
    return;
  }
  const bb = s - p;
  const err = (p - (s - bb)) + (z - bb);
  finish32(s, err, true, err === 0, rm);
}
