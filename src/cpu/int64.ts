/**
 * 64-bit integer arithmetic on pairs of 32-bit halves, for the M extension (Unprivileged ch. 13).
 * Results go to `r64` (low, high) so the hot path allocates nothing. Division uses Number
 * arithmetic when both operands fit in 53 bits and BigInt otherwise.
 */

/** Whether a < b as unsigned 64-bit values (halves). */
export const ltu = (aLo: number, aHi: number, bLo: number, bHi: number): boolean =>
  aHi === bHi ? aLo >>> 0 < bLo >>> 0 : aHi >>> 0 < bHi >>> 0;
/** Whether a < b as signed 64-bit values (halves). */
export const lt = (aLo: number, aHi: number, bLo: number, bHi: number): boolean =>
  aHi === bHi ? aLo >>> 0 < bLo >>> 0 : aHi < bHi;

/** Output of the functions below: r64[0] low half, r64[1] high half. */
export const r64 = new Int32Array(2);

const P32 = 0x1_0000_0000;

/** Unsigned 32x32 -> 64 product into r64. */
export function mulU32(a: number, b: number): void {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const t = a0 * b0 + (p01 & 0xffff) * 65536 + (p10 & 0xffff) * 65536;
  r64[0] = t >>> 0;
  r64[1] = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + Math.floor(t / P32)) | 0;
}

/** Low 64 bits of a * b (MUL). */
export function mul(aLo: number, aHi: number, bLo: number, bHi: number): void {
  mulU32(aLo >>> 0, bLo >>> 0);
  r64[1] = (r64[1]! + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) | 0;
}

/** High 64 bits of the unsigned 128-bit product (MULHU). */
export function mulhu(aLo: number, aHi: number, bLo: number, bHi: number): void {
  // Schoolbook with 32-bit words: w0..w3 of the 128-bit product; we need w2, w3.
  mulU32(aLo, bLo);
  const ll1 = r64[1]! >>> 0;
  mulU32(aLo, bHi);
  const lh0 = r64[0]! >>> 0;
  const lh1 = r64[1]! >>> 0;
  mulU32(aHi, bLo);
  const hl0 = r64[0]! >>> 0;
  const hl1 = r64[1]! >>> 0;
  mulU32(aHi, bHi);
  const hh0 = r64[0]! >>> 0;
  const hh1 = r64[1]! >>> 0;
  const w1 = ll1 + lh0 + hl0; // < 3 * 2^32
  const w2 = hh0 + lh1 + hl1 + Math.floor(w1 / P32);
  r64[0] = w2 >>> 0;
  r64[1] = (hh1 + Math.floor(w2 / P32)) | 0;
}

/** High 64 bits of signed x signed (MULH). */
export function mulh(aLo: number, aHi: number, bLo: number, bHi: number): void {
  mulhu(aLo, aHi, bLo, bHi);
  let lo = r64[0]!;
  let hi = r64[1]!;
  if (aHi < 0) [lo, hi] = sub(lo, hi, bLo, bHi);
  if (bHi < 0) [lo, hi] = sub(lo, hi, aLo, aHi);
  r64[0] = lo;
  r64[1] = hi;
}

/** High 64 bits of signed a x unsigned b (MULHSU). */
export function mulhsu(aLo: number, aHi: number, bLo: number, bHi: number): void {
  mulhu(aLo, aHi, bLo, bHi);
  if (aHi < 0) {
    const [lo, hi] = sub(r64[0]!, r64[1]!, bLo, bHi);
    r64[0] = lo;
    r64[1] = hi;
  }
}

function sub(aLo: number, aHi: number, bLo: number, bHi: number): [number, number] {
  const lo = (aLo - bLo) | 0;
  const borrow = (aLo >>> 0) < (bLo >>> 0) ? 1 : 0;
  return [lo, (aHi - bHi - borrow) | 0];
}

/** True when the unsigned 64-bit value fits in 53 bits. */
function small(hi: number): boolean {
  return hi >>> 0 < 0x20_0000;
}

function setNum(v: number): void {
  r64[0] = v % P32 | 0;
  r64[1] = Math.floor(v / P32) | 0;
}

function setBig(v: bigint): void {
  r64[0] = Number(BigInt.asIntN(32, v));
  r64[1] = Number(BigInt.asIntN(32, v >> 32n));
}

function big(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo >>> 0);
}

/** Unsigned division (DIVU) or remainder (REMU) into r64; x / 0 = 2^64-1 and x % 0 = x (13.2). */
export function divu(aLo: number, aHi: number, bLo: number, bHi: number, rem: boolean): void {
  if (bLo === 0 && bHi === 0) {
    if (rem) {
      r64[0] = aLo;
      r64[1] = aHi;
    } else {
      r64[0] = -1;
      r64[1] = -1;
    }
    return;
  }
  if (small(aHi) && small(bHi)) {
    const a = (aHi >>> 0) * P32 + (aLo >>> 0);
    const b = (bHi >>> 0) * P32 + (bLo >>> 0);
    let q = Math.floor(a / b);
    let r = a - q * b;
    if (r < 0) {
      q--;
      r += b;
    } else if (r >= b) {
      q++;
      r -= b;
    }
    setNum(rem ? r : q);
    return;
  }
  const a = BigInt.asUintN(64, big(aLo, aHi));
  const b = BigInt.asUintN(64, big(bLo, bHi));
  setBig(rem ? a % b : a / b);
}

/** Signed division (DIV) or remainder (REM) into r64, with the overflow and zero rules of 13.2. */
export function div(aLo: number, aHi: number, bLo: number, bHi: number, rem: boolean): void {
  if (bLo === 0 && bHi === 0) {
    if (rem) {
      r64[0] = aLo;
      r64[1] = aHi;
    } else {
      r64[0] = -1;
      r64[1] = -1;
    }
    return;
  }
  if (bLo === -1 && bHi === -1 && aLo === 0 && aHi === (0x8000_0000 | 0)) {
    // Most negative / -1 overflows: quotient is the dividend, remainder 0.
    r64[0] = rem ? 0 : aLo;
    r64[1] = rem ? 0 : aHi;
    return;
  }
  const aNeg = aHi < 0;
  const bNeg = bHi < 0;
  const xLo = aNeg ? -aLo | 0 : aLo;
  const xHi = aNeg ? (~aHi + (aLo === 0 ? 1 : 0)) | 0 : aHi;
  const yLo = bNeg ? -bLo | 0 : bLo;
  const yHi = bNeg ? (~bHi + (bLo === 0 ? 1 : 0)) | 0 : bHi;
  if (small(xHi) && small(yHi)) {
    // Truncating division on magnitudes: the quotient's sign is the XOR, the remainder's the dividend's.
    divu(xLo, xHi, yLo, yHi, rem);
    if (rem ? aNeg : aNeg !== bNeg) {
      const lo = r64[0]!;
      r64[0] = -lo | 0;
      r64[1] = (~r64[1]! + (lo === 0 ? 1 : 0)) | 0;
    }
    return;
  }
  const a = big(aLo, aHi);
  const b = big(bLo, bHi);
  setBig(rem ? a % b : a / b);
}
