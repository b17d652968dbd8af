/**
 * Rounding: from an exact value, described as an integer significand plus a round/sticky class,
 * to a binary64 or binary32 bit pattern under one of the five RISC-V rounding modes, with the
 * exception flags IEEE 754-2008 7.4-7.6 define and RISC-V refines: tininess is detected after
 * rounding (Unprivileged 20.4), i.e. on the result rounded to full precision as if the
 * exponent range were unbounded, and underflow is raised only when the tiny result is also
 * inexact.
 *
 * The operations hand over their exact result in one of two shapes:
 * - parts: (-1)^sign × (m + f) × 2^e with m an integer below 2^53 and f ∈ [0, 1) known only as
 *   a class `rs`: 0 (f = 0), 1 (0 < f < ½), 2 (f = ½), 3 (½ < f < 1). When rs ≠ 0, m ≥ 2^52,
 *   so the rounding position is never finer than m's last bit and the class decides every
 *   mode exactly.
 * - a double-double r + err where r = RN53(exact) and err = exact - r (error-free
 *   transformations produce these); `decompose` turns it into parts.
 */
import { fpOut, NX, OF, POW2, raise, RDN, RMM, RNE, RTZ, RUP, UF } from './state.ts';

const TWO32 = 0x1_0000_0000;
const TWO52 = 4503599627370496;
const TWO53 = 9007199254740992;

const BUF = new ArrayBuffer(8);
const F64 = new Float64Array(BUF);
const I32 = new Int32Array(BUF);

/** Number of significant bits of a positive integer below 2^53. */
export function bitLength(m: number): number {
  return m >= TWO32 ? 64 - Math.clz32(Math.floor(m / TWO32)) : 32 - Math.clz32(m);
}

/** True when rounding must move away from zero, given the kept significand's parity and the class of the rest. */
function roundsUp(odd: boolean, cls: number, sign: number, rm: number): boolean {
  if (cls === 0) return false;
  switch (rm) {
    case RNE:
      return cls === 3 || (cls === 2 && odd);
    case RTZ:
      return false;
    case RDN:
      return sign !== 0;
    case RUP:
      return sign === 0;
    default: // RMM
      return cls >= 2;
  }
}

/** Whether an overflowing result becomes infinity (else the largest finite number), IEEE 754 7.4. */
function overflowsToInf(sign: number, rm: number): boolean {
  return rm === RNE || rm === RMM || (rm === RUP && sign === 0) || (rm === RDN && sign !== 0);
}

// Outputs of core(): significand with its hidden bit, biased exponent (0: subnormal or zero).
let cSig = 0;
let cBiased = 0;
let cOver = false;

/** Rounds m with class rs by dropping `sh` low bits of m; sets kSig and kCls. */
let kSig = 0;
let kCls = 0;
function drop(m: number, rs: number, sh: number): void {
  if (sh === 0) {
    kSig = m;
    kCls = rs;
  } else if (sh > 53) {
    kSig = 0;
    kCls = 1; // everything is below half of the kept unit, and not zero
  } else {
    const unit = POW2[sh + 1074]!;
    const kept = Math.floor(m / unit);
    const rem = m - kept * unit;
    const half = unit * 0.5;
    kSig = kept;
    kCls = rem === 0 ? (rs === 0 ? 0 : 1) : rem < half ? 1 : rem === half ? (rs === 0 ? 2 : 3) : 3;
  }
}

/**
 * Rounds parts to a format with p significand bits and normal exponents [emin, emax] (bias
 * emax). Raises NX, UF, OF. Sets cSig/cBiased, or cOver on overflow.
 */
function core(sign: number, m: number, e: number, rs: number, rm: number, p: number, emin: number, emax: number): void {
  if (m < TWO52) {
    // Only exact values (rs = 0) arrive unnormalised; shifting them left is exact.
    const k = 53 - bitLength(m);
    m *= POW2[k + 1074]!;
    e -= k;
  }
  let exp = e + 52; // exponent of the leading bit
  const tiny = exp < emin;
  drop(m, rs, tiny ? 53 - p + (emin - exp) : 53 - p);
  const inexact = kCls !== 0;
  const sig = kSig + (roundsUp(kSig % 2 === 1, kCls, sign, rm) ? 1 : 0);
  if (inexact) raise(NX);
  const top = POW2[p + 1074]!;
  if (tiny) {
    // Unprivileged 20.4: tininess after rounding. Only a value in [2^(emin-1), 2^emin) can
    // round (at full precision, unbounded exponent) up to 2^emin and so not be tiny.
    let afterTiny = true;
    if (exp === emin - 1) {
      drop(m, rs, 53 - p);
      if (kSig + (roundsUp(kSig % 2 === 1, kCls, sign, rm) ? 1 : 0) === top) afterTiny = false;
    }
    if (afterTiny && inexact) raise(UF);
    cSig = sig;
    cBiased = sig >= top * 0.5 ? 1 : 0;
    cOver = false;
    return;
  }
  let s = sig;
  if (s === top) {
    s = top * 0.5;
    exp++;
  }
  if (exp > emax) {
    raise(OF | NX);
    cOver = true;
    return;
  }
  cSig = s;
  cBiased = exp + emax;
  cOver = false;
}

/** Rounds parts to binary64; the result goes to fpOut as [low, high]. */
export function round64(sign: number, m: number, e: number, rs: number, rm: number): void {
  core(sign, m, e, rs, rm, 53, -1022, 1023);
  const s = sign << 31;
  if (cOver) {
    if (overflowsToInf(sign, rm)) {
      fpOut[0] = 0;
      fpOut[1] = s | 0x7ff0_0000;
    } else {
      fpOut[0] = -1;
      fpOut[1] = s | 0x7fef_ffff;
    }
    return;
  }
  const field = cBiased !== 0 ? cSig - TWO52 : cSig;
  const high = Math.floor(field / TWO32);
  fpOut[0] = (field - high * TWO32) | 0;
  fpOut[1] = s | (cBiased << 20) | high;
}

/** Rounds parts to binary32; the result goes to fpOut[0]. */
export function round32(sign: number, m: number, e: number, rs: number, rm: number): void {
  core(sign, m, e, rs, rm, 24, -126, 127);
  const s = sign << 31;
  if (cOver) {
    fpOut[0] = overflowsToInf(sign, rm) ? s | 0x7f80_0000 : s | 0x7f7f_ffff;
    return;
  }
  fpOut[0] = s | (cBiased << 23) | (cBiased !== 0 ? cSig - 0x80_0000 : cSig);
}

// Outputs of decompose().
let dSign = 0;
let dM = 0;
let dE = 0;
let dRs = 0;

/**
 * Parts of r + err, where r = RN53(r + err) is a double with biased exponent ≥ 3. With
 * `errExact` false only err's sign is trusted, which suffices when the exact value cannot be
 * a 53-bit midpoint (quotients and square roots).
 */
function decompose(r: number, err: number, errExact: boolean): void {
  F64[0] = r;
  const lo = I32[0]!;
  const hi = I32[1]!;
  const be = (hi >>> 20) & 0x7ff;
  let m = (hi & 0xf_ffff) * TWO32 + (lo >>> 0) + TWO52;
  let e = be - 1075;
  let rs = 0;
  dSign = hi >>> 31;
  if (err !== 0) {
    const away = dSign !== 0 ? err < 0 : err > 0;
    const mag = err < 0 ? -err : err;
    const half = POW2[be - 2]!; // half an ulp of r: 2^(be - 1076)
    if (away) {
      rs = errExact && mag === half ? 2 : 1;
    } else if (m === TWO52) {
      // Below a power of two the spacing halves: restate at one more bit of precision.
      m = TWO53 - 1;
      e -= 1;
      rs = errExact && mag === half * 0.5 ? 2 : 3;
    } else {
      m -= 1;
      rs = errExact && mag === half ? 2 : 3;
    }
  }
  dM = m;
  dE = e;
  dRs = rs;
}

/** Rounds (r + err) × 2^eAdj to binary64 (see decompose for r and err). */
export function roundDD64(r: number, err: number, eAdj: number, errExact: boolean, rm: number): void {
  decompose(r, err, errExact);
  round64(dSign, dM, dE + eAdj, dRs, rm);
}

/** Rounds (r + err) × 2^eAdj to binary32 (see decompose for r and err). */
export function roundDD32(r: number, err: number, eAdj: number, errExact: boolean, rm: number): void {
  decompose(r, err, errExact);
  round32(dSign, dM, dE + eAdj, dRs, rm);
}

/**
 * The fast ending of a binary64 operation whose exact value r + err is inexact (err ≠ 0) and
 * whose round-to-nearest result r is a normal double far from the underflow threshold: no
 * underflow is possible, and each directed mode is r or one step from r in the direction of
 * err (IEEE 754 4.3). Stepping past the largest finite number yields infinity, which is then
 * an overflow. With `errExact` false only err's sign is trusted (the exact value is then never
 * a midpoint). Returns the result as a double.
 */
export function finishNum(r: number, err: number, errExact: boolean, rm: number): number {
  raise(NX);
  if (rm === RNE) return r;
  const neg = r < 0;
  const away = neg ? err < 0 : err > 0;
  let step = 0;
  if (rm === RTZ) step = away ? 0 : -1;
  else if (rm === RDN) step = err < 0 ? (neg ? 1 : -1) : 0;
  else if (rm === RUP) step = err > 0 ? (neg ? -1 : 1) : 0;
  else if (away && errExact) {
    F64[0] = r;
    if ((err < 0 ? -err : err) === POW2[((I32[1]! >>> 20) & 0x7ff) - 2]) step = 1; // a midpoint: RMM goes away
  }
  if (step === 0) return r;
  F64[0] = r;
  let lo = I32[0]!;
  let hi = I32[1]!;
  if (step > 0) {
    lo = (lo + 1) | 0;
    if (lo === 0) hi = (hi + 1) | 0;
    if ((hi & 0x7ff0_0000) === 0x7ff0_0000) raise(OF);
  } else {
    if (lo === 0) hi = (hi - 1) | 0;
    lo = (lo - 1) | 0;
  }
  I32[0] = lo;
  I32[1] = hi;
  return F64[0]!;
}
