/**
 * Why 64-bit guest registers are pairs of 32-bit halves: the same interpreter-like mix of
 * loads, adds and unsigned compares, once on Int32Array halves and once on BigInt64Array.
 * Run: node --import tsx bench/repr.ts
 */
const mem = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
const X = new Int32Array(mem.buffer, 0, 80);
const B = new BigInt64Array(mem.buffer, 512, 40);
const M32 = new Int32Array(mem.buffer);

function halves(n: number): number {
  let taken = 0;
  for (let i = 0; i < n; i++) {
    const op = i & 3;
    if (op === 0) {
      const v = M32[((X[2]! + 65536) >>> 2) & 0xffff]!;
      X[4] = v;
      X[5] = v >> 31;
    } else if (op === 1) {
      const aLo = X[6]!;
      const lo = (aLo + X[4]!) | 0;
      X[6] = lo;
      X[7] = (X[7]! + X[5]! + ((lo >>> 0) < (aLo >>> 0) ? 1 : 0)) | 0;
    } else if (op === 2) {
      const aLo = X[2]!;
      const lo = (aLo + 4) | 0;
      X[2] = lo;
      X[3] = (X[3]! + ((lo >>> 0) < (aLo >>> 0) ? 1 : 0)) | 0;
    } else {
      const ah = X[3]! >>> 0;
      const bh = X[9]! >>> 0;
      if (ah < bh || (ah === bh && X[2]! >>> 0 < X[8]! >>> 0)) taken++;
      else X[2] = X[3] = 0;
    }
  }
  return taken;
}

function bigints(n: number): number {
  let taken = 0;
  for (let i = 0; i < n; i++) {
    const op = i & 3;
    if (op === 0) B[2] = BigInt(M32[((Number(BigInt.asUintN(32, B[1]!)) + 65536) >>> 2) & 0xffff]!);
    else if (op === 1) B[3] = BigInt.asIntN(64, B[3]! + B[2]!);
    else if (op === 2) B[1] = BigInt.asIntN(64, B[1]! + 4n);
    else if (BigInt.asUintN(64, B[1]!) < BigInt.asUintN(64, B[4]!)) taken++;
    else B[1] = 0n;
  }
  return taken;
}

export function measure(): { halves: number; bigint: number } {
  X[8] = 1 << 20;
  B[4] = 1n << 20n;
  const rate = (f: (n: number) => number, n: number): number => {
    f(10_000);
    const t = performance.now();
    f(n);
    return n / (performance.now() - t) / 1e3;
  };
  return { halves: rate(halves, 1e8), bigint: rate(bigints, 1e7) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = measure();
  console.log(`32-bit halves: ${r.halves.toFixed(0)} M ops/s; BigInt: ${r.bigint.toFixed(0)} M ops/s; ratio ${(r.halves / r.bigint).toFixed(1)}x`);
}
