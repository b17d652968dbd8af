/**
 * Error-free transformations on host doubles: they give the exact rounding error of an
 * addition or a multiplication as a second double, which is what lets the fast paths detect
 * inexact results exactly and derive the directed rounding modes from the host's
 * round-to-nearest result.
 */

/** Veltkamp's splitting constant 2^27 + 1: splits a double into two 26-bit halves. */
const SPLIT = 134217729;

/** The exact error of the last twoProd: a × b - fl(a × b). */
export let prodErr = 0;

/**
 * fl(a × b), setting prodErr to the exact error (Dekker's product). Exact when |a| and |b|
 * are below 2^995 (the split does not overflow) and e_a + e_b ≥ -970 (the error is not
 * below the subnormal range); callers check both on the exponents.
 */
export function twoProd(a: number, b: number): number {
  const p = a * b;
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  prodErr = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  return p;
}

/** The exact error of the last twoSum: a + b - fl(a + b). */
export let sumErr = 0;

/** fl(a + b), setting sumErr to the exact error (Knuth's TwoSum; exact unless fl(a + b) overflows). */
export function twoSum(a: number, b: number): number {
  const s = a + b;
  const bb = s - a;
  sumErr = (a - (s - bb)) + (b - bb);
  return s;
}
