/**
 * Conversions (Unprivileged 20.7 and 21.5): between the two formats, from either format to
 * 32- and 64-bit signed and unsigned integers with the RISC-V saturation rules, and from
 * integers to either format. Integers travel as low/high int32 halves; a 32-bit integer
 * result is sign-extended to 64 bits, as FCVT.W[U] requires on RV64.
 */
import { finish32, isNaN32, isSNaN32, nan32, num32 } from './f32.ts';
import { isNaN64, isSNaN64, nan64, num64, out64 } from './f64.ts';
import { round32, round64 } from './round.ts';
import { fpOut, NV, NX, raise, RDN, RMM, RTZ, RUP } from './state.ts';

/** Integer kinds, in the order of the rs2 field of FCVT (Unprivileged 20.7): W, WU, L, LU. */
export const INT_W = 0;
export const INT_WU = 1;
export const INT_L = 2;
export const INT_LU = 3;

const TWO32 = 0x1_0000_0000;
const TWO52 = 4503599627370496;
const TWO63 = 9223372036854775808;
const TWO64 = 18446744073709551616;

/** FCVT.S.D: rounds a binary64 to binary32. */
export function f64ToF32(lo: number, hi: number, rm: number): void {
  if (isNaN64(lo, hi)) return nan32(isSNaN64(lo, hi));
  const x = num64(lo, hi);
  const ax = x < 0 ? -x : x;
  if (ax === 0 || ax === Infinity) {
    fpOut[0] = f32Bits(x); // zeros and infinities convert exactly
    return;
  }
  // Far below binary32's smallest subnormal every value rounds alike: a stand-in of the same
  // sign keeps the rounder's double arithmetic in the normal range.
  finish32(ax < 1e-300 ? (x < 0 ? -1e-300 : 1e-300) : x, 0, true, true, rm);
}

const BUF = new ArrayBuffer(8);
const F32 = new Float32Array(BUF);
const I32 = new Int32Array(BUF);

function f32Bits(v: number): number {
  F32[0] = v;
  return I32[0]!;
}

/** FCVT.D.S: exact, except that a NaN becomes the canonical NaN. */
export function f32ToF64(b: number): void {
  if (isNaN32(b)) return nan64(isSNaN32(b));
  out64(num32(b));
}

let inexact = false;

/** x rounded to an integral value under rm (x finite or infinite); sets `inexact`. */
function roundIntegral(x: number, rm: number): number {
  inexact = false;
  if (!(x > -TWO52 && x < TWO52)) return x; // already integral (or infinite)
  const t = Math.trunc(x);
  if (t === x) return x;
  inexact = true;
  switch (rm) {
    case RTZ:
      return t;
    case RDN:
      return Math.floor(x);
    case RUP:
      return Math.ceil(x);
    default: {
      const f = Math.floor(x);
      const d = x - f; // exact below 2^52
      if (d !== 0.5) return d < 0.5 ? f : f + 1;
      if (rm === RMM) return x < 0 ? f : f + 1;
      return f % 2 === 0 ? f : f + 1; // RNE
    }
  }
}

/** Writes the 64-bit two's complement of an integral double r with |r| < 2^64. */
function outInt(r: number): void {
  const m = r < 0 ? -r : r;
  const hi = Math.floor(m / TWO32);
  let l = (m - hi * TWO32) | 0;
  let h = hi | 0;
  if (r < 0) {
    l = (~l + 1) | 0;
    h = (~h + (l === 0 ? 1 : 0)) | 0;
  }
  fpOut[0] = l;
  fpOut[1] = h;
}

/**
 * Converts x (or a NaN, when `nan`) to integer `kind` under rm. Out-of-range values, infinities
 * and NaNs saturate and raise only NV (Unprivileged 20.7, table "Domains of float-to-integer
 * conversions"); otherwise NX reports a rounded result.
 */
function toInt(x: number, nan: boolean, kind: number, rm: number): void {
  const r = nan ? NaN : roundIntegral(x, rm);
  let ok: boolean;
  switch (kind) {
    case INT_W:
      ok = r >= -2147483648 && r <= 2147483647;
      break;
    case INT_WU:
      ok = r >= 0 && r <= 4294967295; // -0 is in range: a negative value that rounds to zero
      break;
    case INT_L:
      ok = r >= -TWO63 && r < TWO63;
      break;
    default:
      ok = r >= 0 && r < TWO64;
  }
  if (ok) {
    if (inexact) raise(NX);
    if (kind === INT_W || kind === INT_WU) {
      const v = r | 0;
      fpOut[0] = v;
      fpOut[1] = v >> 31;
    } else {
      outInt(r);
    }
    return;
  }
  raise(NV);
  const positive = nan || x > 0;
  switch (kind) {
    case INT_W:
      fpOut[0] = positive ? 0x7fff_ffff : 0x8000_0000 | 0;
      fpOut[1] = positive ? 0 : -1;
      break;
    case INT_L:
      fpOut[0] = positive ? -1 : 0;
      fpOut[1] = positive ? 0x7fff_ffff : 0x8000_0000 | 0;
      break;
    default: // WU (2^32 - 1, sign-extended) and LU (2^64 - 1)
      fpOut[0] = positive ? -1 : 0;
      fpOut[1] = positive ? -1 : 0;
  }
}

/** FCVT.{W,WU,L,LU}.D */
export function f64ToInt(lo: number, hi: number, kind: number, rm: number): void {
  const nan = isNaN64(lo, hi);
  toInt(nan ? 0 : num64(lo, hi), nan, kind, rm);
}

/** FCVT.{W,WU,L,LU}.S */
export function f32ToInt(b: number, kind: number, rm: number): void {
  const nan = isNaN32(b);
  toInt(nan ? 0 : num32(b), nan, kind, rm);
}

// Magnitude of the integer operand as unsigned halves, and its sign.
let mHi = 0;
let mLo = 0;
let mNeg = 0;
function magnitude(lo: number, hi: number, kind: number): void {
  mNeg = 0;
  mLo = lo >>> 0;
  mHi = 0;
  if (kind === INT_W) {
    if (lo < 0) {
      mNeg = 1;
      mLo = -lo >>> 0;
    }
  } else if (kind === INT_L || kind === INT_LU) {
    mHi = hi >>> 0;
    if (kind === INT_L && hi < 0) {
      mNeg = 1;
      const l = (~lo + 1) | 0;
      mLo = l >>> 0;
      mHi = (~hi + (l === 0 ? 1 : 0)) >>> 0;
    }
  }
}

/**
 * Splits a magnitude of 54 to 64 bits into a 53-bit significand, its exponent and the class
 * of the dropped bits (round.ts), then rounds with `round`.
 */
function roundWide(rm: number, round: (s: number, m: number, e: number, rs: number, rm: number) => void): void {
  const sh = 11 - Math.clz32(mHi); // bits beyond 53 (the magnitude has 64 - clz bits)
  const m = mHi * 2 ** (32 - sh) + (mLo >>> sh);
  const rem = mLo & ((1 << sh) - 1);
  const half = 1 << (sh - 1);
  round(mNeg, m, sh, rem === 0 ? 0 : rem < half ? 1 : rem === half ? 2 : 3, rm);
}

/** FCVT.D.{W,WU,L,LU}: exact below 2^53, rounded above. */
export function intToF64(lo: number, hi: number, kind: number, rm: number): void {
  magnitude(lo, hi, kind);
  if (mHi < 0x20_0000) {
    const v = mHi * TWO32 + mLo;
    return out64(mNeg ? -v : v); // integer zero is +0
  }
  roundWide(rm, round64);
}

/** FCVT.S.{W,WU,L,LU} */
export function intToF32(lo: number, hi: number, kind: number, rm: number): void {
  magnitude(lo, hi, kind);
  if (mHi < 0x20_0000) {
    const v = mHi * TWO32 + mLo;
    if (v === 0) {
      fpOut[0] = 0;
      return;
    }
    return finish32(mNeg ? -v : v, 0, true, true, rm);
  }
  roundWide(rm, round32);
}
