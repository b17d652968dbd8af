import assert from 'node:assert/strict';
import { test } from 'node:test';
import { div, divu, mul, mulh, mulhsu, mulhu, r64 } from './int64.ts';

const M = (1n << 64n) - 1n;
const lo = (v: bigint): number => Number(BigInt.asIntN(32, v));
const hi = (v: bigint): number => Number(BigInt.asIntN(32, v >> 32n));
const got = (): bigint => BigInt.asUintN(64, (BigInt(r64[1]!) << 32n) | BigInt(r64[0]! >>> 0));
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const MIN = 1n << 63n;

/** Edge values plus a seeded stream of small, large, negative and random operands. */
function* operands(n: number): Generator<[bigint, bigint]> {
  const edges = [0n, 1n, 2n, 3n, M, M - 1n, MIN, MIN - 1n, MIN + 1n, 0xffff_ffffn, 0x1_0000_0000n, 0x1f_ffff_ffff_ffffn, 0x20_0000_0000_0000n, 7n, M - 6n];
  for (const a of edges) for (const b of edges) yield [a, b];
  let s = 0x9e3779b97f4a7c15n;
  for (let i = 0; i < n; i++) {
    const next = (): bigint => {
      s = (s * 6364136223846793005n + 1442695040888963407n) & M;
      const k = Number(s >> 61n);
      const v = s ^ (s >> 29n);
      return k < 2 ? v & 0xffffn : k < 4 ? BigInt.asUintN(64, -(v & 0xffffffn)) : k < 5 ? v & 0xf_ffff_ffff_ffffn : v & M;
    };
    yield [next(), next()];
  }
}

test('64-bit multiply and divide on 32-bit halves match exact BigInt arithmetic (Unprivileged ch. 13)', () => {
  for (const [a, b] of operands(50_000)) {
    const args = [lo(a), hi(a), lo(b), hi(b)] as const;
    const sa = s64(a);
    const sb = s64(b);
    const cases: Array<[string, () => void, bigint]> = [
      ['mul', () => mul(...args), a * b],
      ['mulhu', () => mulhu(...args), (a * b) >> 64n],
      ['mulh', () => mulh(...args), (sa * sb) >> 64n],
      ['mulhsu', () => mulhsu(...args), (sa * b) >> 64n],
      ['divu', () => divu(...args, false), b === 0n ? M : a / b],
      ['remu', () => divu(...args, true), b === 0n ? a : a % b],
      ['div', () => div(...args, false), sb === 0n ? -1n : sa === -MIN && sb === -1n ? sa : sa / sb],
      ['rem', () => div(...args, true), sb === 0n ? sa : sa === -MIN && sb === -1n ? 0n : sa % sb],
    ];
    for (const [name, run, want] of cases) {
      run();
      assert.equal(got(), BigInt.asUintN(64, want), `${name}(0x${a.toString(16)}, 0x${b.toString(16)})`);
    }
  }
});
