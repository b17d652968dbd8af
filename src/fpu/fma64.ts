/**
 * binary64 fused multiply-add a × b + c with a single rounding (Unprivileged 20.6 on IEEE
 * 754-2008 5.4.1). FMSUB, FNMSUB and FNMADD are this with the signs of c and/or a flipped
 * by the caller: negation is exact and the result of a NaN is canonical anyway.
 *
 * Fast path (f64FmaFast, on host doubles): a × b = ph + pl exactly (Dekker), then three
 * TwoSums give exact = r + w + v with r = fl(s + u). When v is zero, or provably below the
 * unit that w and r's midpoints are multiples of, r and the sign of w (or v) decide every
 * mode. The remaining cases, and operands outside the fast window, go to an exact integer
 * computation (BigInt; rare: subnormal or extreme operands and some deep cancellations).
 */
import { prodErr, twoProd } from './eft.ts';
import { isNaN64, isSNaN64, isZero64, f64Mul, nan64, num64, out64 } from './f64.ts';
import { bitLength, finishNum, round64 } from './round.ts';
import { fpOut, POW2, RDN } from './state.ts';

const EXP = 0x7ff0_0000;
const SIGN = 0x8000_0000 | 0;
const TWO32 = 0x1_0000_0000;
const TWO52 = 4503599627370496;

const BUF = new ArrayBuffer(8);
const F64 = new Float64Array(BUF);
const I32 = new Int32Array(BUF);

/** An exact zero result of x + y with x, y of opposite signs: +0, or -0 when rounding down (IEEE 754 6.3). */
function exactZero(rm: number): void {
  fpOut[0] = 0;
  fpOut[1] = rm === RDN ? SIGN : 0;
}

const MIN_NORMAL = 2.2250738585072014e-308; // 2^-1022
const SPLIT_MAX = 2 ** 995; // twoProd's split overflows above
const LO_800 = 2 ** -800;
const HI_800 = 2 ** 800;
const HI_900 = 2 ** 900;

/**
 * x × y + z rounded once under rm, for doubles; NaN (nothing raised) when the fast path cannot
 * decide. The window: x and y normal and below 2^995, the product within 2^±800, z zero or
 * within [2^-800, 2^900]. Every term and error is then a multiple of 2^-904 and below 2^903,
 * so no intermediate rounding underflows or overflows and a non-zero result is normal.
 */
export function f64FmaFast(x: number, y: number, z: number, rm: number): number {
  const ax = x < 0 ? -x : x;
  const ay = y < 0 ? -y : y;
  const az = z < 0 ? -z : z;
  if (!(ax >= MIN_NORMAL && ax < SPLIT_MAX && ay >= MIN_NORMAL && ay < SPLIT_MAX && (az === 0 || (az >= LO_800 && az <= HI_900)))) return NaN;
  const ph = twoProd(x, y);
  const aph = ph < 0 ? -ph : ph;
  if (!(aph >= LO_800 && aph <= HI_800)) return NaN;
  const pl = prodErr;
  const s = ph + z;
  let bb = s - ph;
  const t = (ph - (s - bb)) + (z - bb);
  const u = t + pl;
  bb = u - t;
  const v = (t - (u - bb)) + (pl - bb);
  const r = s + u;
  bb = r - s;
  const w = (s - (r - bb)) + (u - bb);
  // exact = r + w + v, with r = fl(s + u) and |w| ≤ ½ulp(r).
  if (v === 0) {
    // An exact zero: the product and z cancel, so their signs differ (IEEE 754 6.3).
    if (w === 0) return r !== 0 ? r : rm === RDN ? -0 : 0;
    return finishNum(r, w, true, rm);
  }
  if (r === 0) return v; // then w = 0 too, and exact = v: a representable normal number
  // v ≠ 0, so u ≠ 0, and |v| ≤ ½ulp(u). When ulp(u) divides ulp(s) and a quarter of ulp(r),
  // w and every midpoint offset of r are multiples of ulp(u), so v (smaller than that unit)
  // can only decide the direction at an exact midpoint of r + w.
  F64[0] = u;
  const eu = (I32[1]! >>> 20) & 0x7ff;
  F64[0] = s;
  const es = (I32[1]! >>> 20) & 0x7ff;
  F64[0] = r;
  const hi = I32[1]!;
  const er = (hi >>> 20) & 0x7ff;
  if (!(eu <= es && eu + 2 <= er)) return NaN;
  if (w === 0) return finishNum(r, v, false, rm);
  let half = POW2[er - 2]!; // ½ulp(r), or ¼ulp(r) below a power of two
  if ((r < 0) !== (w < 0) && (hi & 0xf_ffff) === 0 && I32[0] === 0) half *= 0.5;
  if ((w < 0 ? -w : w) !== half) return finishNum(r, w, false, rm);
  // r + w is a midpoint: v's sign decides; past it the neighbour r + 2w is nearest.
  if ((v < 0) === (w < 0)) return finishNum(r + 2 * w, -w, false, rm);
  return finishNum(r, w, false, rm);
}

/** a × b + c. */
export function f64Fma(aLo: number, aHi: number, bLo: number, bHi: number, cLo: number, cHi: number, rm: number): void {
  const r = f64FmaFast(num64(aLo, aHi), num64(bLo, bHi), num64(cLo, cHi), rm);
  if (r === r) return out64(r);
  fmaSlow(aLo, aHi, bLo, bHi, cLo, cHi, rm);
}

function fmaSlow(aLo: number, aHi: number, bLo: number, bHi: number, cLo: number, cHi: number, rm: number): void {
  const aInf = (aHi & 0x7fff_ffff) === EXP && aLo === 0;
  const bInf = (bHi & 0x7fff_ffff) === EXP && bLo === 0;
  const cInf = (cHi & 0x7fff_ffff) === EXP && cLo === 0;
  const aZero = isZero64(aLo, aHi);
  const bZero = isZero64(bLo, bHi);
  const infTimesZero = (aInf && bZero) || (aZero && bInf);
  if (isNaN64(aLo, aHi) || isNaN64(bLo, bHi) || isNaN64(cLo, cHi)) {
    // Unprivileged 20.6: ∞ × 0 is invalid even when the addend is a quiet NaN.
    return nan64(infTimesZero || isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi) || isSNaN64(cLo, cHi));
  }
  if (infTimesZero) return nan64(true);
  const pSign = (aHi ^ bHi) & SIGN;
  if (aInf || bInf) {
    if (cInf && (cHi & SIGN) !== pSign) return nan64(true); // ∞ - ∞
    fpOut[0] = 0;
    fpOut[1] = pSign | EXP;
    return;
  }
  if (cInf || ((aZero || bZero) && !isZero64(cLo, cHi))) {
    fpOut[0] = cLo;
    fpOut[1] = cHi;
    return;
  }
  if (aZero || bZero) {
    // ±0 + ±0: the sum of equal signs keeps it; opposite signs give +0, or -0 rounding down.
    fpOut[0] = 0;
    fpOut[1] = rm === RDN ? pSign | (cHi & SIGN) : pSign & cHi;
    return;
  }
  // A zero addend leaves the product, rounded once.
  if (isZero64(cLo, cHi)) return f64Mul(aLo, aHi, bLo, bHi, rm);
  fmaExact(aLo, aHi, bLo, bHi, cLo, cHi, rm);
}

// Significand (normalised to 53 bits) and exponent of its unit, set by parts().
let pM = 0;
let pE = 0;
function parts(lo: number, hi: number): void {
  const be = (hi >>> 20) & 0x7ff;
  let m = (hi & 0xf_ffff) * TWO32 + (lo >>> 0);
  let e = be === 0 ? -1074 : be - 1075;
  if (be !== 0) m += TWO52;
  const k = 53 - bitLength(m);
  pM = m * POW2[k + 1074]!;
  pE = e - k;
}

/**
 * a × b + c for finite non-zero operands, exactly in integers. A term lying wholly below the
 * other's last bit (with margin) only acts as a sticky bit, so it is replaced by a unit of the
 * same sign three bits below: the result is then rounded identically and the shifts stay short.
 */
function fmaExact(aLo: number, aHi: number, bLo: number, bHi: number, cLo: number, cHi: number, rm: number): void {
  parts(aLo, aHi);
  const ma = pM;
  const ea = pE;
  parts(bLo, bHi);
  let prod = BigInt(ma) * BigInt(pM); // in [2^104, 2^106)
  let ep = ea + pE;
  parts(cLo, cHi);
  let addend = BigInt(pM); // in [2^52, 2^53)
  let ec = pE;
  if (ec + 53 < ep - 2) {
    prod <<= 3n;
    ep -= 3;
    addend = 1n;
    ec = ep;
  } else if (ep + 106 < ec - 2) {
    addend <<= 3n;
    ec -= 3;
    prod = 1n;
    ep = ec;
  }
  const base = ep < ec ? ep : ec;
  prod <<= BigInt(ep - base);
  addend <<= BigInt(ec - base);
  const n = ((aHi ^ bHi) < 0 ? -prod : prod) + (cHi < 0 ? -addend : addend);
  if (n === 0n) return exactZero(rm);
  const sign = n < 0n ? 1 : 0;
  const mag = n < 0n ? -n : n;
  const len = mag.toString(2).length;
  if (len <= 53) return round64(sign, Number(mag), base, 0, rm);
  const sh = BigInt(len - 53);
  const rem = mag & ((1n << sh) - 1n);
  const half = 1n << (sh - 1n);
  const rs = rem === 0n ? 0 : rem < half ? 1 : rem === half ? 2 : 3;
  round64(sign, Number(mag >> sh), base + len - 53, rs, rm);
}
