/**
 * src/fpu comparisons, classification and minimum/maximum against the host (test/fpu/ref.c).
 *
 * FEQ is the host's quiet ==, FLT and FLE its signaling < and <= (Unprivileged 20.8: invalid
 * for any NaN operand, FEQ only for a signaling one); FCLASS follows C's classification.
 * FMIN/FMAX differ from anything the host offers, so the expectation states the RISC-V rule
 * (Unprivileged 20.6, IEEE 754-2019 minimumNumber/maximumNumber) on the host's ordering: two
 * NaNs give the canonical NaN, one NaN gives the other operand, -0 is below +0, and NV is
 * raised exactly when an operand is a signaling NaN.
 */
import { test } from 'node:test';
import { f32Class, f32Eq, f32Lt, f32MinMax, f64Class, f64Eq, f64Lt, f64MinMax } from '../../src/fpu/compare.ts';
import { fpOut } from '../../src/fpu/state.ts';
import { compare, RANDOM } from './harness.ts';
import { Batch, opIndex, OPS, runReference, type OpName } from './reference.ts';
import { exp32, exp64, F32_EDGES, F64_EDGES, randF32, randF64, Rng } from './vectors.ts';

const NV = 16;
const isNaN64 = (lo: number, hi: number): boolean => (hi & 0x7ff0_0000) === 0x7ff0_0000 && ((hi & 0xf_ffff) | lo) !== 0;
const isNaN32 = (v: number): boolean => (v & 0x7f80_0000) === 0x7f80_0000 && (v & 0x7f_ffff) !== 0;
const isSNaN64 = (lo: number, hi: number): boolean => isNaN64(lo, hi) && (hi & 0x8_0000) === 0;
const isSNaN32 = (v: number): boolean => isNaN32(v) && (v & 0x40_0000) === 0;

/** Edge pairs and random pairs, often equal or of close exponents, for double and single operations. */
function pairs(op64: number[], op32: number[]): Batch {
  const b = new Batch();
  const rng = new Rng(0xc0);
  for (const [aLo, aHi] of F64_EDGES) for (const [bLo, bHi] of F64_EDGES) for (const op of op64) b.push(op, 0, aLo, aHi, bLo, bHi);
  for (const a of F32_EDGES) for (const x of F32_EDGES) for (const op of op32) b.push(op, 0, a, 0, x, 0);
  for (let i = 0; i < RANDOM; i++) {
    const a = randF64(rng);
    const k = rng.int(4);
    const e = exp64(a);
    const x = k === 0 ? a : k === 1 ? randF64(rng) : randF64(rng, e - 1, e + 1);
    for (const op of op64) b.push(op, 0, a[0], a[1], x[0], x[1]);
    const a32 = randF32(rng);
    const x32 = k === 0 ? a32 : k === 1 ? randF32(rng) : randF32(rng, exp32(a32) - 1, exp32(a32) + 1);
    for (const op of op32) b.push(op, 0, a32, 0, x32, 0);
  }
  return b;
}

test(`feq, flt, fle (.d and .s): edge pairs and ${RANDOM} random pairs`, () => {
  const names: OpName[] = ['feq.d', 'flt.d', 'fle.d', 'feq.s', 'flt.s', 'fle.s'];
  const b = pairs(names.slice(0, 3).map(opIndex), names.slice(3).map(opIndex));
  compare(
    b,
    (i) => {
      const [aLo, aHi, bLo, bHi] = [b.get(i, 2), b.get(i, 3), b.get(i, 4), b.get(i, 5)];
      let r: number;
      switch (OPS[b.get(i, 0)]) {
        case 'feq.d': r = f64Eq(aLo, aHi, bLo, bHi); break;
        case 'flt.d': r = f64Lt(aLo, aHi, bLo, bHi, false); break;
        case 'fle.d': r = f64Lt(aLo, aHi, bLo, bHi, true); break;
        case 'feq.s': r = f32Eq(aLo, bLo); break;
        case 'flt.s': r = f32Lt(aLo, bLo, false); break;
        default: r = f32Lt(aLo, bLo, true);
      }
      fpOut[0] = r;
      fpOut[1] = 0;
    },
    (_i, host) => host,
  );
});

test('fclass.d and fclass.s: every edge value and random values', () => {
  const b = new Batch();
  const rng = new Rng(0xc1a55);
  for (const [lo, hi] of F64_EDGES) b.push(opIndex('fclass.d'), 0, lo, hi);
  for (const v of F32_EDGES) b.push(opIndex('fclass.s'), 0, v, 0);
  for (let i = 0; i < RANDOM; i++) {
    b.push(opIndex('fclass.d'), 0, ...randF64(rng));
    b.push(opIndex('fclass.s'), 0, randF32(rng), 0);
  }
  compare(
    b,
    (i) => {
      fpOut[0] = OPS[b.get(i, 0)] === 'fclass.d' ? f64Class(b.get(i, 2), b.get(i, 3)) : f32Class(b.get(i, 2));
      fpOut[1] = 0;
    },
    (_i, host) => host,
  );
});

test(`fmin and fmax (.d and .s): the IEEE 754-2019 rules on the host's ordering, edge pairs and ${RANDOM} random pairs`, () => {
  // The host answers a < b and a <= b; each pair is checked as min and as max (c's low half).
  const lt = pairs([opIndex('flt.d')], [opIndex('flt.s')]);
  const le = pairs([opIndex('fle.d')], [opIndex('fle.s')]);
  const hostLe = runReference(le).lo;
  const b = new Batch();
  for (let i = 0; i < lt.n; i++) for (const max of [0, 1]) b.push(lt.get(i, 0), 0, lt.get(i, 2), lt.get(i, 3), lt.get(i, 4), lt.get(i, 5), max);
  compare(
    b,
    (i) => {
      const max = b.get(i, 6) === 1;
      if (OPS[b.get(i, 0)] === 'flt.d') f64MinMax(b.get(i, 2), b.get(i, 3), b.get(i, 4), b.get(i, 5), max);
      else f32MinMax(b.get(i, 2), b.get(i, 4), max);
    },
    (i, host) => {
      const max = b.get(i, 6) === 1;
      const single = OPS[b.get(i, 0)] === 'flt.s';
      const [aLo, aHi, bLo, bHi] = [b.get(i, 2), b.get(i, 3), b.get(i, 4), b.get(i, 5)];
      const an = single ? isNaN32(aLo) : isNaN64(aLo, aHi);
      const bn = single ? isNaN32(bLo) : isNaN64(bLo, bHi);
      const flags = (single ? isSNaN32(aLo) || isSNaN32(bLo) : isSNaN64(aLo, aHi) || isSNaN64(bLo, bHi)) ? NV : 0;
      if (an && bn) return single ? { lo: 0x7fc0_0000, hi: 0, flags } : { lo: 0, hi: 0x7ff8_0000, flags };
      let pickA: boolean;
      if (an || bn) pickA = bn;
      else if (host.lo === 1) pickA = !max; // a < b
      else if (hostLe[i >> 1] === 1) pickA = ((single ? aLo : aHi) < 0) !== max; // a = b: -0 is the smaller
      else pickA = max;
      return pickA ? { lo: aLo, hi: single ? 0 : aHi, flags } : { lo: bLo, hi: single ? 0 : bHi, flags };
    },
    { wide: (i) => OPS[b.get(i, 0)] === 'flt.d' },
  );
});
