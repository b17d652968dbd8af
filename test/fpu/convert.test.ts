/**
 * src/fpu conversions against the host (test/fpu/ref.c), every rounding mode: FCVT.S.D and
 * FCVT.D.S, floating-point to 32/64-bit signed/unsigned integers, and integers to both formats.
 *
 * RISC-V rules the expectations state where the host differs:
 * - NaN results are canonical (Unprivileged 20.3 and the opening of ch. 21).
 * - Float to integer (Unprivileged 20.7, table "Domains of float-to-integer conversions"): the
 *   value is rounded to an integral value under rm (the host's rint(), or round() for RMM,
 *   answers that part, with its inexact flag); if the rounded value fits the destination it
 *   is the result and NX is the only possible flag; otherwise the result saturates (NaN and
 *   +∞ to the maximum, -∞ to the minimum, other values by sign) and NV is the only flag. A
 *   32-bit result is sign-extended to 64 bits, unsigned ones included.
 */
import { test } from 'node:test';
import { f32ToF64, f32ToInt, f64ToF32, f64ToInt, intToF32, intToF64 } from '../../src/fpu/convert.ts';
import { compare, RANDOM, type Outcome } from './harness.ts';
import { Batch, opIndex, OPS } from './reference.ts';
import { F32_EDGES, F64_EDGES, INT_EDGES, randF32, randF64, Rng } from './vectors.ts';

const NV = 16;

const isNaN64 = (lo: number, hi: number): boolean => (hi & 0x7ff0_0000) === 0x7ff0_0000 && ((hi & 0xf_ffff) | lo) !== 0;
const isNaN32 = (v: number): boolean => (v & 0x7f80_0000) === 0x7f80_0000 && (v & 0x7f_ffff) !== 0;

const buf = new Float64Array(1);
const w64 = new Int32Array(buf.buffer);
const f32 = new Float32Array(1);
const w32 = new Int32Array(f32.buffer);
function val64(lo: number, hi: number): number {
  w64[0] = lo;
  w64[1] = hi;
  return buf[0]!;
}
function val32(v: number): number {
  w32[0] = v;
  return f32[0]!;
}

test(`fcvt.s.d and fcvt.d.s: edge cases and ${RANDOM} random values, every rounding mode`, () => {
  const b = new Batch();
  const rng = new Rng(0xc5d);
  const sd = opIndex('fcvt.s.d');
  const ds = opIndex('fcvt.d.s');
  const push = (op: number, lo: number, hi: number): void => {
    for (let rm = 0; rm < 5; rm++) b.push(op, rm, lo, hi);
  };
  for (const [lo, hi] of F64_EDGES) push(sd, lo, hi);
  for (const v of F32_EDGES) push(ds, v, 0);
  for (let i = 0; i < RANDOM; i++) {
    // Mostly around binary32's range, including its subnormals and overflow threshold.
    const [lo, hi] = rng.int(4) === 0 ? randF64(rng) : randF64(rng, 1023 - 155, 1023 + 130);
    push(sd, lo, hi);
    push(ds, randF32(rng), 0);
  }
  compare(
    b,
    (i) => {
      const rm = b.get(i, 1);
      if (b.get(i, 0) === sd) f64ToF32(b.get(i, 2), b.get(i, 3), rm);
      else f32ToF64(b.get(i, 2));
    },
    (i, host) => {
      if (b.get(i, 0) === sd) return { lo: isNaN32(host.lo) ? 0x7fc0_0000 : host.lo, hi: 0, flags: host.flags };
      return isNaN64(host.lo, host.hi) ? { lo: 0, hi: 0x7ff8_0000, flags: host.flags } : host;
    },
    { wide: (i) => b.get(i, 0) === ds },
  );
});

/** The RISC-V result of converting x (NaN when `nan`), given the host's integral value r and flags. */
function intExpectation(x: number, nan: boolean, r: number, flags: number, kind: number): Outcome {
  const [min, max] = [[-(2 ** 31), 2 ** 31 - 1], [0, 2 ** 32 - 1], [-(2 ** 63), 2 ** 63], [0, 2 ** 64]][kind]!;
  const wide = kind >= 2;
  if (!nan && r >= min && (wide ? r < max : r <= max)) {
    const v = BigInt(r);
    return { lo: Number(BigInt.asIntN(32, v)), hi: wide ? Number(BigInt.asIntN(32, v >> 32n)) : Number(BigInt.asIntN(32, v)) >> 31, flags };
  }
  const top = nan || x > 0;
  const sat = [[0x7fff_ffff, 0, 0x8000_0000 | 0, -1], [-1, -1, 0, 0], [-1, 0x7fff_ffff, 0, 0x8000_0000 | 0], [-1, -1, 0, 0]][kind]!;
  return top ? { lo: sat[0]!, hi: sat[1]!, flags: NV } : { lo: sat[2]!, hi: sat[3]!, flags: NV };
}

test(`fcvt.{w,wu,l,lu}.{d,s}: edge cases and ${RANDOM} random values, every rounding mode`, () => {
  const b = new Batch();
  const rng = new Rng(0x1e7);
  const rd = opIndex('rint.d');
  const rs = opIndex('rint.s');
  // The host answers the rounding to an integral value; c's low half carries the kind.
  const push = (op: number, lo: number, hi: number): void => {
    for (let rm = 0; rm < 5; rm++) for (let k = 0; k < 4; k++) b.push(op, rm, lo, hi, 0, 0, k, 0);
  };
  const halves = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2 ** 31 - 0.5, -(2 ** 31) - 0.5, 2 ** 32 - 0.5, -0.4, -0.6, 0.4, 0.6, 2 ** 31 - 1.5];
  for (const v of halves) {
    buf[0] = v;
    push(rd, w64[0]!, w64[1]!);
    f32[0] = v;
    if (f32[0] === v) push(rs, w32[0]!, 0);
  }
  for (const [lo, hi] of F64_EDGES) push(rd, lo, hi);
  for (const v of F32_EDGES) push(rs, v, 0);
  for (let i = 0; i < RANDOM / 4; i++) {
    // Magnitudes from below 1 up to past 2^64, where the limits are.
    push(rd, ...randF64(rng, 1023 - 4, 1023 + 66));
    push(rs, randF32(rng, 127 - 4, 127 + 66), 0);
  }
  compare(
    b,
    (i) => {
      const kind = b.get(i, 6);
      if (b.get(i, 0) === rd) f64ToInt(b.get(i, 2), b.get(i, 3), kind, b.get(i, 1));
      else f32ToInt(b.get(i, 2), kind, b.get(i, 1));
    },
    (i, host) => {
      const kind = b.get(i, 6);
      const single = b.get(i, 0) === rs;
      const nan = single ? isNaN32(b.get(i, 2)) : isNaN64(b.get(i, 2), b.get(i, 3));
      const x = nan ? 0 : single ? val32(b.get(i, 2)) : val64(b.get(i, 2), b.get(i, 3));
      const r = nan ? NaN : single ? val32(host.lo) : val64(host.lo, host.hi);
      return intExpectation(x, nan, r, host.flags, kind);
    },
  );
});

test(`fcvt.{d,s}.{w,wu,l,lu}: edge cases and ${RANDOM} random integers, every rounding mode`, () => {
  const b = new Batch();
  const rng = new Rng(0x17f);
  const ops = ['fcvt.d.w', 'fcvt.d.wu', 'fcvt.d.l', 'fcvt.d.lu', 'fcvt.s.w', 'fcvt.s.wu', 'fcvt.s.l', 'fcvt.s.lu'].map((n) => opIndex(n as never));
  const push = (lo: number, hi: number): void => {
    for (const op of ops) for (let rm = 0; rm < 5; rm++) b.push(op, rm, lo, hi);
  };
  for (const [lo, hi] of INT_EDGES) push(lo, hi);
  for (let i = 0; i < RANDOM / 4; i++) {
    // Random widths, so every magnitude from a few bits to 64 is common, with sparse patterns for midpoints.
    const bits = 1 + rng.int(64);
    let lo = rng.u32();
    let hi = rng.u32();
    if (bits <= 32) {
      hi = 0;
      lo = bits === 32 ? lo : lo & ((1 << bits) - 1);
    } else if (bits < 64) {
      hi &= (1 << (bits - 32)) - 1;
    }
    if (rng.int(3) === 0) lo &= ~((1 << rng.int(32)) - 1) | (rng.bool() ? 1 << rng.int(32) : 0);
    if (rng.bool()) {
      // negate (two's complement)
      lo = (~lo + 1) | 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) | 0;
    }
    push(lo | 0, hi | 0);
  }
  compare(
    b,
    (i) => {
      const k = ops.indexOf(b.get(i, 0));
      if (k < 4) intToF64(b.get(i, 2), b.get(i, 3), k, b.get(i, 1));
      else intToF32(b.get(i, 2), b.get(i, 3), k - 4, b.get(i, 1));
    },
    (_i, host) => host,
    { wide: (i) => OPS[b.get(i, 0)]!.startsWith('fcvt.d') },
  );
});
