/**
 * Test operands for the FPU: hand-picked edge cases and a seeded random stream shaped to hit
 * the interesting places (close exponents for cancellation, short significands for exact
 * results and midpoints, products and quotients at the overflow and underflow thresholds).
 * binary64 values are [low, high] int32 halves; binary32 values are int32 patterns.
 */

/** A small, fast, seeded generator (xorshift128). */
export class Rng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    this.s[0] = seed ^ 0x9e3779b9;
    this.s[1] = 0x243f6a88;
    this.s[2] = 0xb7e15162;
    this.s[3] = 0x6a09e667 ^ (seed * 31);
    for (let i = 0; i < 16; i++) this.u32();
  }

  /** A random 32-bit pattern (as a signed int32). */
  u32(): number {
    const s = this.s;
    let t = s[3]!;
    t ^= t << 11;
    t ^= t >>> 8;
    s[3] = s[2]!;
    s[2] = s[1]!;
    s[1] = s[0]!;
    const a = s[0]!;
    s[0] = t ^ a ^ (a >>> 19);
    return s[0]! | 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return (this.u32() >>> 0) % n;
  }

  bool(): boolean {
    return (this.u32() & 1) === 1;
  }
}

type F64 = [number, number];

const h = (hi: number, lo = 0): F64 => [lo | 0, hi | 0];

/** binary64 edge values (both signs are added below). */
const F64_POSITIVE: F64[] = [
  h(0), h(0, 1), h(0, 3), h(0x0008_0000), h(0x000f_ffff, -1), h(0x0010_0000), h(0x0010_0000, 1), h(0x0018_0000),
  h(0x3ff0_0000), h(0x3ff0_0000, 1), h(0x3fef_ffff, -1), h(0x3ff8_0000), h(0x4000_0000), h(0x4008_0000), h(0x3fe0_0000),
  h(0x4004_0000), h(0x3fb9_9999, 0x9999999a), h(0x3cb0_0000), h(0x3ca0_0000), h(0x1ff0_0000), h(0x5ff0_0000),
  h(0x4330_0000), h(0x4340_0000), h(0x4340_0000, 1), h(0x41e0_0000), h(0x41f0_0000), h(0x41df_ffff, 0xffc0_0000),
  h(0x41ef_ffff, 0xffe0_0000), h(0x41df_ffff, 0xffe0_0000), h(0x41ef_ffff, 0xfff0_0000), h(0x43df_ffff, -1), h(0x43e0_0000),
  h(0x43ef_ffff, -1), h(0x43f0_0000), h(0x3ff0_0000, 0x8000_0000), h(0x7fef_ffff, -1), h(0x7fe0_0000), h(0x7fdf_ffff, -1),
  h(0x7ff0_0000), h(0x7ff8_0000), h(0x7ff0_0000, 1), h(0x7ff4_dead, 0xbeef), h(0x7ffc_0000, 0x1234_5678),
  h(0x47ef_ffff, 0xe000_0000), h(0x47ef_ffff, 0xf000_0000), h(0x36a0_0000), h(0x3690_0000), h(0x3800_0000),
];

function both<T>(pos: T[], neg: (v: T) => T): T[] {
  return pos.flatMap((v) => [v, neg(v)]);
}

export const F64_EDGES: F64[] = both(F64_POSITIVE, ([lo, hi]) => [lo, hi ^ (0x8000_0000 | 0)]);

/** binary32 edge values. */
const F32_POSITIVE = [
  0, 1, 3, 0x0040_0000, 0x007f_ffff, 0x0080_0000, 0x0080_0001, 0x00c0_0000, 0x3f80_0000, 0x3f80_0001, 0x3f7f_ffff,
  0x3fc0_0000, 0x4000_0000, 0x4040_0000, 0x3f00_0000, 0x4020_0000, 0x3dcc_cccd, 0x3400_0000, 0x3380_0000,
  0x4b00_0000, 0x4b80_0000, 0x4b80_0001, 0x4f00_0000, 0x4f80_0000, 0x4eff_ffff, 0x4f7f_ffff, 0x5eff_ffff, 0x5f00_0000,
  0x5f7f_ffff, 0x5f80_0000, 0x7f7f_ffff, 0x7f00_0000, 0x7eff_ffff, 0x7f80_0000, 0x7fc0_0000, 0x7f80_0001, 0x7fa0_beef,
  0x7fc1_2345, 0x1f80_0000, 0x5f00_0001, 0x3fc0_0001, 0x0000_0002,
];

export const F32_EDGES: number[] = both(F32_POSITIVE, (v) => v ^ (0x8000_0000 | 0));

/** 64-bit integer edge values as [low, high]. */
export const INT_EDGES: F64[] = [
  h(0), h(0, 1), h(-1, -1), h(0, 2), h(-1, -2), h(0, 0x7fff_ffff), h(-1, 0x8000_0000), h(0, -1), h(1), h(-1),
  h(0x0020_0000, 1), h(0x0020_0000, 3), h(0x0020_0000), h(0x0020_0001), h(0x0010_0000, -1), h(0x7fff_ffff, -1),
  h(0x8000_0000), h(0x8000_0000, 1), h(0x7fff_ffff, 0xffff_fc00), h(0x7fff_ffff, 0xffff_fe00), h(0x7fff_ffff, 0xffff_fbff),
  h(-1, 0xffff_f800), h(-1, 0xffff_fc00), h(0, 0x0100_0001), h(0, 0x0100_0003), h(0, 0x0100_0002), h(0, 0x7fff_ffc0),
  h(0, 0x7fff_ff80), h(0, 0x7fff_ffbf), h(0, -128), h(0, -64), h(-1, 0x8000_0001), h(0x1234_5678, 0x9abc_def0),
  h(0x0080_0000, 0x0000_0080), h(0x0040_0000, 0x0000_0040), h(0x0040_0000, 0x0000_0020),
];

/**
 * A random binary64 with a biased exponent in [eMin, eMax] (clamped to the encodable range)
 * and a significand of one of several shapes: random, short (few significant bits), runs of
 * ones (carries), or a random prefix ending in a single one (midpoints after an operation).
 */
export function randF64(rng: Rng, eMin = 0, eMax = 2047): F64 {
  const e = Math.max(0, Math.min(2047, eMin + rng.int(eMax - eMin + 1)));
  let fHi = rng.u32() & 0xf_ffff;
  let fLo = rng.u32();
  switch (rng.int(5)) {
    case 0: {
      const keep = rng.int(53); // keep the top `keep` fraction bits
      if (keep < 20) {
        fHi &= ~((1 << (20 - keep)) - 1) & 0xf_ffff;
        fLo = 0;
      } else {
        fLo &= keep === 52 ? -1 : ~((1 << (52 - keep)) - 1) | 0;
      }
      break;
    }
    case 1:
      fHi |= 0xf_ff00;
      fLo |= -256;
      break;
    case 2: {
      const at = rng.int(52);
      if (at < 32) fLo = (fLo & ~((2 << at) - 1)) | (1 << at);
      else {
        fLo = 0;
        fHi = (fHi & ~((2 << (at - 32)) - 1)) | (1 << (at - 32));
      }
      break;
    }
    default:
      break;
  }
  if (e === 2047 && rng.int(4) !== 0) return randF64(rng, eMin, 2046);
  return [fLo | 0, ((rng.bool() ? 0x8000_0000 : 0) | (e << 20) | fHi) | 0];
}

/** A random binary32, shaped like randF64. */
export function randF32(rng: Rng, eMin = 0, eMax = 255): number {
  const e = Math.max(0, Math.min(255, eMin + rng.int(eMax - eMin + 1)));
  let f = rng.u32() & 0x7f_ffff;
  switch (rng.int(5)) {
    case 0:
      f &= ~((1 << rng.int(24)) - 1) & 0x7f_ffff;
      break;
    case 1:
      f |= 0x7f_ff00;
      break;
    case 2: {
      const at = rng.int(23);
      f = (f & ~((2 << at) - 1)) | (1 << at);
      break;
    }
    default:
      break;
  }
  if (e === 255 && rng.int(4) !== 0) return randF32(rng, eMin, 254);
  return ((rng.bool() ? 0x8000_0000 : 0) | (e << 23) | f) | 0;
}

/** Biased exponent of a binary64 given as halves. */
export const exp64 = (v: F64): number => (v[1] >>> 20) & 0x7ff;
/** Biased exponent of a binary32. */
export const exp32 = (v: number): number => (v >>> 23) & 0xff;
