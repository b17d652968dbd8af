/**
 * Shared state of the FPU library: rounding-mode and flag encodings, the result output and the
 * accrued flags. Every operation in src/fpu/ works on bit patterns (f64 as low/high int32
 * halves, f32 as one int32), writes its result to `fpOut` and ORs the exceptions it raises into
 * a flags word the caller collects with `takeFlags()`. Nothing allocates on the way.
 *
 * The library assumes a little-endian host (as the hart's typed-array views of WebAssembly
 * memory already do): element 0 of an Int32Array over a Float64Array is the low word.
 */

/** Rounding modes, encoded as in the rm field and frm (Unprivileged 20.2, rounding mode encoding). */
export const RNE = 0;
export const RTZ = 1;
export const RDN = 2;
export const RUP = 3;
export const RMM = 4;

/** Accrued exception flags, as the bits of fflags (Unprivileged 20.2, accrued exception flag encoding). */
export const NX = 1;
export const UF = 2;
export const OF = 4;
export const DZ = 8;
export const NV = 16;

/** Canonical NaNs (Unprivileged 20.3 and the opening of ch. 21): positive, quiet bit only. */
export const CANONICAL_NAN_S = 0x7fc0_0000;
export const CANONICAL_NAN_D_HI = 0x7ff8_0000;

/** Result of the last operation: an f64 or a 64-bit integer as [low, high]; an f32 in [0]. */
export const fpOut = new Int32Array(2);

let flags = 0;

/** ORs exception flags into the accrued set. */
export function raise(f: number): void {
  flags |= f;
}

/** Returns the flags raised since the last call and clears them. */
export function takeFlags(): number {
  const f = flags;
  flags = 0;
  return f;
}

const BUF = new ArrayBuffer(8);
const F64 = new Float64Array(BUF);
const I32 = new Int32Array(BUF);

/**
 * 2^k for integer k in [-1074, 1023], built from bit patterns so it is exact (Math.pow makes
 * no such promise for negative exponents). Index with k + 1074.
 */
export const POW2 = new Float64Array(2098);
for (let k = -1074; k <= 1023; k++) {
  if (k >= -1022) {
    I32[0] = 0;
    I32[1] = (k + 1023) << 20;
  } else {
    const bit = k + 1074;
    I32[0] = bit < 32 ? 1 << bit : 0;
    I32[1] = bit < 32 ? 0 : 1 << (bit - 32);
  }
  POW2[k + 1074] = F64[0]!;
}

/** 2^k, exact, for k in [-1074, 1023]. */
export function pow2(k: number): number {
  return POW2[k + 1074]!;
}
