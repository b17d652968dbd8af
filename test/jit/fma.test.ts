/**
 * The translator's fmaRne helper (src/jit/fma-rne.ts) against the FPU's exact fused multiply-add
 * (src/fpu/fma64.ts) under round-to-nearest-even: where the helper answers, it must answer
 * the bits f64Fma gives; it may decline (NaN) anywhere.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fmaFunction } from '../../src/jit/fma-rne.ts';
import { f64Fma } from '../../src/fpu/fma64.ts';
import { fpOut, takeFlags } from '../../src/fpu/state.ts';
import { encodeModule, F64 } from '../../src/jit/wasm.ts';

const bytes = encodeModule({
  types: [{ params: [F64, F64, F64], results: [F64] }],
  imports: [],
  memory: { shared: false, maxPages: 1 },
  funcs: [{ type: 0, code: fmaFunction(), export: 'fma' }],
});
const mem = new WebAssembly.Memory({ initial: 1, maximum: 1 });
const fma = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } }).exports.fma as (x: number, y: number, z: number) => number;

const buf = new DataView(new ArrayBuffer(8));
const bits = (v: number): bigint => {
  buf.setFloat64(0, v, true);
  return buf.getBigUint64(0, true);
};
const num = (b: bigint): number => {
  buf.setBigUint64(0, BigInt.asUintN(64, b), true);
  return buf.getFloat64(0, true);
};
function exact(x: number, y: number, z: number): bigint {
  const [a, b, c] = [bits(x), bits(y), bits(z)];
  const half = (v: bigint): [number, number] => [Number(v & 0xffff_ffffn) | 0, Number(v >> 32n) | 0];
  f64Fma(...half(a), ...half(b), ...half(c), 0);
  takeFlags();
  return (BigInt(fpOut[1]! >>> 0) << 32n) | BigInt(fpOut[0]! >>> 0);
}

let state = 0x1234_5678_9abc_def0n;
function rnd(): bigint {
  state = BigInt.asUintN(64, state * 6364136223846793005n + 1442695040888963407n);
  return state;
}
/** A double with a random significand (often few bits set, to make ties) and an exponent near `e`. */
function rndD(e: number, spread: number): number {
  const r = rnd();
  let m = r & 0xf_ffff_ffff_ffffn;
  if ((r >> 60n) % 3n === 0n) m &= 0xf_ff00_0000_0000n;
  const ex = BigInt(1023 + e + Number((r >> 52n) % BigInt(2 * spread + 1)) - spread);
  return num(((r >> 63n) << 63n) | (ex << 52n) | m);
}

test('fmaRne agrees with the exact fused multiply-add wherever it answers', () => {
  let answered = 0;
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const x = rndD(0, 30);
    const y = rndD(0, 30);
    let z: number;
    const k = i % 5;
    if (k === 0) z = -x * y; // cancellation down to the product's error
    else if (k === 1) z = rndD(0, 60);
    else if (k === 2) z = num(bits(x * y) ^ (1n << 63n)) * (1 + 2 ** -52);
    else if (k === 3) z = (x * y) * 2 ** -53 * (i & 8 ? 1 : -1); // near half an ulp of the product
    else z = 0;
    const r = fma(x, y, z);
    if (r !== r) continue;
    answered++;
    assert.equal(bits(r), exact(x, y, z), `fma(${x}, ${y}, ${z})`);
  }
  assert.ok(answered > n * 0.9, `the helper answered ${answered} of ${n}`);
});

test('fmaRne declines outside its window', () => {
  for (const [x, y, z] of [[NaN, 1, 1], [Infinity, 1, 1], [1, 1, Infinity], [2 ** -1030, 1, 1], [2 ** 1000, 1, 1], [2 ** -500, 2 ** -400, 1]]) {
    assert.ok(Number.isNaN(fma(x!, y!, z!)), `fma(${x}, ${y}, ${z})`);
  }
});
