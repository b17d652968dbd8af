/**
 * src/fpu arithmetic against the host's IEEE 754 arithmetic (test/fpu/ref.c), bit for bit and
 * flag for flag, in all five rounding modes, for both formats: add, sub, mul, div, sqrt and the
 * four fused multiply-adds, over edge cases and a seeded random set.
 *
 * Where RISC-V departs from the host, the expectation states the RISC-V rule:
 * - a NaN result is the canonical NaN (Unprivileged 20.3 and the opening of ch. 21), whatever NaN the host made;
 * - ∞ × 0 + qNaN raises NV (Unprivileged 20.6; IEEE 754 leaves it to the implementation).
 *
 * Underflow: RISC-V detects tininess after rounding (Unprivileged 20.4), and so does x86-64
 * SSE (Intel SDM vol. 1, "Numeric Underflow Exception (#U)": the result is tiny when, rounded
 * as if the exponent range were unbounded, it is below the smallest normal), so the host's UF
 * flag is a valid reference. The first test below checks that claim on this host, with a
 * product that is tiny before rounding but not after.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f32Add, f32Div, f32Fma, f32Mul, f32Sqrt } from '../../src/fpu/f32.ts';
import { f64Add, f64Div, f64Mul, f64Sqrt } from '../../src/fpu/f64.ts';
import { f64Fma } from '../../src/fpu/fma64.ts';
import { fpOut, takeFlags } from '../../src/fpu/state.ts';
import { compare, RANDOM, type Outcome } from './harness.ts';
import { Batch, opIndex, OPS, runReference, type OpName } from './reference.ts';
import { exp32, exp64, F32_EDGES, F64_EDGES, randF32, randF64, Rng } from './vectors.ts';

const SIGN = 0x8000_0000 | 0;
const NX = 1;
const UF = 2;
const NV = 16;

/** Calls src/fpu for case i of a batch (operand halves in fields 2..7). */
function apply(b: Batch, i: number): void {
  const op = OPS[b.get(i, 0)] as OpName;
  const rm = b.get(i, 1);
  const [aLo, aHi, bLo, bHi, cLo, cHi] = [2, 3, 4, 5, 6, 7].map((f) => b.get(i, f)) as [number, number, number, number, number, number];
  switch (op) {
    case 'fadd.d': return f64Add(aLo, aHi, bLo, bHi, rm);
    case 'fsub.d': return f64Add(aLo, aHi, bLo, bHi ^ SIGN, rm);
    case 'fmul.d': return f64Mul(aLo, aHi, bLo, bHi, rm);
    case 'fdiv.d': return f64Div(aLo, aHi, bLo, bHi, rm);
    case 'fsqrt.d': return f64Sqrt(aLo, aHi, rm);
    case 'fmadd.d': return f64Fma(aLo, aHi, bLo, bHi, cLo, cHi, rm);
    case 'fmsub.d': return f64Fma(aLo, aHi, bLo, bHi, cLo, cHi ^ SIGN, rm);
    case 'fnmsub.d': return f64Fma(aLo, aHi ^ SIGN, bLo, bHi, cLo, cHi, rm);
    case 'fnmadd.d': return f64Fma(aLo, aHi ^ SIGN, bLo, bHi, cLo, cHi ^ SIGN, rm);
    case 'fadd.s': return f32Add(aLo, bLo, rm);
    case 'fsub.s': return f32Add(aLo, bLo ^ SIGN, rm);
    case 'fmul.s': return f32Mul(aLo, bLo, rm);
    case 'fdiv.s': return f32Div(aLo, bLo, rm);
    case 'fsqrt.s': return f32Sqrt(aLo, rm);
    case 'fmadd.s': return f32Fma(aLo, bLo, cLo, rm);
    case 'fmsub.s': return f32Fma(aLo, bLo, cLo ^ SIGN, rm);
    case 'fnmsub.s': return f32Fma(aLo ^ SIGN, bLo, cLo, rm);
    case 'fnmadd.s': return f32Fma(aLo ^ SIGN, bLo, cLo ^ SIGN, rm);
    default: throw new Error(`not an arithmetic operation: ${op}`);
  }
}

const isNaN64 = (lo: number, hi: number): boolean => (hi & 0x7ff0_0000) === 0x7ff0_0000 && ((hi & 0xf_ffff) | lo) !== 0;
const isNaN32 = (v: number): boolean => (v & 0x7f80_0000) === 0x7f80_0000 && (v & 0x7f_ffff) !== 0;
const isInf64 = (lo: number, hi: number): boolean => (hi & 0x7fff_ffff) === 0x7ff0_0000 && lo === 0;
const isZero64 = (lo: number, hi: number): boolean => ((hi & 0x7fff_ffff) | lo) === 0;
const isInf32 = (v: number): boolean => (v & 0x7fff_ffff) === 0x7f80_0000;
const isZero32 = (v: number): boolean => (v & 0x7fff_ffff) === 0;

/** The RISC-V expectation from the host's answer (see the rules at the top of this file). */
function expectation(b: Batch, i: number, host: Outcome): Outcome {
  const op = OPS[b.get(i, 0)] as OpName;
  const single = op.endsWith('.s');
  let flags = host.flags;
  if (op.startsWith('fmadd') || op.startsWith('fmsub') || op.startsWith('fnm')) {
    const [aLo, aHi, bLo, bHi] = [b.get(i, 2), b.get(i, 3), b.get(i, 4), b.get(i, 5)];
    const infZero = single
      ? (isInf32(aLo) && isZero32(bLo)) || (isZero32(aLo) && isInf32(bLo))
      : (isInf64(aLo, aHi) && isZero64(bLo, bHi)) || (isZero64(aLo, aHi) && isInf64(bLo, bHi));
    if (infZero) flags |= NV;
  }
  if (single) return { lo: isNaN32(host.lo) ? 0x7fc0_0000 : host.lo, hi: 0, flags };
  if (isNaN64(host.lo, host.hi)) return { lo: 0, hi: 0x7ff8_0000, flags };
  return { lo: host.lo, hi: host.hi, flags };
}

function check(b: Batch): void {
  compare(b, (i) => apply(b, i), (i, host) => expectation(b, i, host), { wide: (i) => !OPS[b.get(i, 0)]!.endsWith('.s') });
}

/** Pushes `op` for every rounding mode. */
function pushAll(b: Batch, op: number, a: [number, number], x: [number, number] = [0, 0], c: [number, number] = [0, 0]): void {
  for (let rm = 0; rm < 5; rm++) b.push(op, rm, a[0], a[1], x[0], x[1], c[0], c[1]);
}

const f32v = (v: number): [number, number] => [v, 0];

/** A random binary64 operand pair for a binary operation, steering the result's exponent. */
function pair64(rng: Rng, op: string): [[number, number], [number, number]] {
  const a = randF64(rng);
  const ea = exp64(a);
  const k = rng.int(8);
  if (k === 0) return [a, randF64(rng)];
  if (op === 'add' || op === 'sub') {
    const e = ea + rng.int(121) - 60;
    return [a, randF64(rng, e, e)];
  }
  // Target result exponent: near the underflow threshold, near overflow, or anywhere normal.
  const t = k < 4 ? 1 + rng.int(64) - 58 : k < 6 ? 2042 + rng.int(8) : 1 + rng.int(2046);
  const e = op === 'mul' ? t - ea + 1023 : ea - t + 1023;
  return [a, randF64(rng, e, e)];
}

function pair32(rng: Rng, op: string): [number, number] {
  const a = randF32(rng);
  const ea = exp32(a);
  const k = rng.int(8);
  if (k === 0) return [a, randF32(rng)];
  if (op === 'add' || op === 'sub') {
    const e = ea + rng.int(61) - 30;
    return [a, randF32(rng, e, e)];
  }
  const t = k < 4 ? 1 + rng.int(30) - 26 : k < 6 ? 250 + rng.int(8) : 1 + rng.int(254);
  const e = op === 'mul' ? t - ea + 127 : ea - t + 127;
  return [a, randF32(rng, e, e)];
}

test('x86-64 detects tininess after rounding, like RISC-V (so host UF flags are a valid reference)', () => {
  // (1 + 2^-52) × (2^-1022 - 2^-1074) = 2^-1022 × (1 - 2^-104): tiny before rounding, but it
  // rounds (53 bits, unbounded exponent) to 2^-1022, so it is not tiny after rounding: the
  // result is 2^-1022 with NX alone. A before-rounding host would also raise UF.
  const b = new Batch();
  b.push(opIndex('fmul.d'), 0, 1, 0x3ff0_0000, -1, 0x000f_ffff);
  // binary32: (1 + 2^-23) × (2^-126 - 2^-149), the same shape.
  b.push(opIndex('fmul.s'), 0, 0x3f80_0001, 0, 0x007f_ffff, 0);
  const host = runReference(b);
  assert.deepEqual([host.lo[0], host.hi[0], host.flags[0]], [0, 0x0010_0000, NX]);
  assert.deepEqual([host.lo[1], host.flags[1]], [0x0080_0000, NX]);
  f64Mul(1, 0x3ff0_0000, -1, 0x000f_ffff, 0);
  assert.deepEqual([fpOut[0], fpOut[1], takeFlags()], [0, 0x0010_0000, NX]);
  // Rounding toward zero it stays below 2^-1022 and is tiny and inexact: UF.
  f64Mul(1, 0x3ff0_0000, -1, 0x000f_ffff, 1);
  assert.deepEqual([fpOut[0], fpOut[1], takeFlags()], [-1, 0x000f_ffff, NX | UF]);
});

for (const [name, op64, op32] of [['add', 'fadd.d', 'fadd.s'], ['sub', 'fsub.d', 'fsub.s'], ['mul', 'fmul.d', 'fmul.s'], ['div', 'fdiv.d', 'fdiv.s']] as const) {
  test(`${op64}: edge cases x edge cases and ${RANDOM} random pairs, every rounding mode`, () => {
    const b = new Batch();
    const op = opIndex(op64);
    for (const a of F64_EDGES) for (const x of F64_EDGES) pushAll(b, op, a, x);
    const rng = new Rng(0x64 + op);
    for (let i = 0; i < RANDOM; i++) pushAll(b, op, ...pair64(rng, name));
    check(b);
  });
  test(`${op32}: edge cases x edge cases and ${RANDOM} random pairs, every rounding mode`, () => {
    const b = new Batch();
    const op = opIndex(op32);
    for (const a of F32_EDGES) for (const x of F32_EDGES) pushAll(b, op, f32v(a), f32v(x));
    const rng = new Rng(0x32 + op);
    for (let i = 0; i < RANDOM; i++) {
      const [a, x] = pair32(rng, name);
      pushAll(b, op, f32v(a), f32v(x));
    }
    check(b);
  });
}

test(`fsqrt.d and fsqrt.s: edge cases and ${RANDOM} random operands, every rounding mode`, () => {
  const b = new Batch();
  const rng = new Rng(0x5a);
  for (const a of F64_EDGES) pushAll(b, opIndex('fsqrt.d'), a);
  for (const a of F32_EDGES) pushAll(b, opIndex('fsqrt.s'), f32v(a));
  for (let i = 0; i < RANDOM; i++) {
    const a = randF64(rng);
    if (rng.int(8) !== 0) a[1] &= 0x7fff_ffff;
    pushAll(b, opIndex('fsqrt.d'), a);
    const s = randF32(rng);
    pushAll(b, opIndex('fsqrt.s'), f32v(rng.int(8) !== 0 ? s & 0x7fff_ffff : s));
  }
  check(b);
});

const F64_FMA_EDGES = F64_EDGES.filter((_, i) => i % 3 === 0);
const F32_FMA_EDGES = F32_EDGES.filter((_, i) => i % 3 === 0);

/** A random fused multiply-add: products near the limits, addends near the product or cancelling it. */
function triple64(rng: Rng): [number, number][] {
  const [a, x] = pair64(rng, 'mul');
  const pe = exp64(a) + exp64(x) - 1023;
  const k = rng.int(6);
  if (k === 0) return [a, x, randF64(rng)];
  if (k < 3) return [a, x, randF64(rng, pe - 60, pe + 60)];
  // c ≈ -(a × b): massive cancellation; perturb the low bits of the rounded product.
  const buf = new Float64Array(1);
  const w = new Int32Array(buf.buffer);
  w[0] = a[0];
  w[1] = a[1];
  const va = buf[0]!;
  w[0] = x[0];
  w[1] = x[1];
  buf[0] = -(va * buf[0]!);
  if (k === 3) w[0] ^= rng.int(1 << rng.int(31));
  else if (k === 4) w[0] ^= 1 << rng.int(8);
  return [a, x, [w[0]!, w[1]!]];
}

function triple32(rng: Rng): number[] {
  const [a, x] = pair32(rng, 'mul');
  const pe = exp32(a) + exp32(x) - 127;
  const k = rng.int(6);
  if (k === 0) return [a, x, randF32(rng)];
  if (k < 3) return [a, x, randF32(rng, pe - 30, pe + 30)];
  const f = new Float32Array(3);
  const w = new Int32Array(f.buffer);
  w[0] = a;
  w[1] = x;
  f[2] = -(f[0]! * f[1]!);
  if (k === 3) w[2] ^= rng.int(1 << rng.int(23));
  else if (k === 4) w[2] ^= 1 << rng.int(4);
  return [a, x, w[2]!];
}

for (const v of ['fmadd', 'fmsub', 'fnmsub', 'fnmadd'] as const) {
  test(`${v}.d and ${v}.s: edge-case triples and ${RANDOM} random triples, every rounding mode`, () => {
    const b = new Batch();
    const rng = new Rng(0xf3a + v.length);
    const op64 = opIndex(`${v}.d`);
    const op32 = opIndex(`${v}.s`);
    for (const a of F64_FMA_EDGES) for (const x of F64_FMA_EDGES) for (const c of F64_FMA_EDGES) pushAll(b, op64, a, x, c);
    for (const a of F32_FMA_EDGES) for (const x of F32_FMA_EDGES) for (const c of F32_FMA_EDGES) pushAll(b, op32, f32v(a), f32v(x), f32v(c));
    for (let i = 0; i < RANDOM; i++) {
      const [a, x, c] = triple64(rng) as [[number, number], [number, number], [number, number]];
      pushAll(b, op64, a, x, c);
      const [a32, x32, c32] = triple32(rng) as [number, number, number];
      pushAll(b, op32, f32v(a32), f32v(x32), f32v(c32));
    }
    check(b);
  });
}
