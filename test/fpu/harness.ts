/**
 * Comparison harness for the FPU tests: runs a batch on the host reference and on src/fpu/,
 * lets the test turn the host answer into the RISC-V expectation, and reports mismatches
 * with their operands, bit for bit.
 */
import assert from 'node:assert/strict';
import { fpOut, takeFlags } from '../../src/fpu/state.ts';
import { Batch, OPS, runReference, type Answers } from './reference.ts';

export const MODE_NAMES = ['rne', 'rtz', 'rdn', 'rup', 'rmm'];
export const FLAG_NAMES = ['nx', 'uf', 'of', 'dz', 'nv'];

/** Number of random cases per operation and rounding mode (FPU_CASES overrides). */
export const RANDOM = Number(process.env.FPU_CASES ?? 20000);

export const hex32 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');
export const hex64 = (lo: number, hi: number): string => `${hex32(hi)}_${hex32(lo)}`;
const flagText = (f: number): string => FLAG_NAMES.filter((_, i) => f & (1 << i)).join('|') || '-';

/** An expectation or an outcome: result halves and flags. */
export interface Outcome {
  lo: number;
  hi: number;
  flags: number;
}

/**
 * Runs every case of `batch` through `ours` (which calls src/fpu/ and leaves the result in
 * fpOut) and compares it with `expect(i, host)`, the RISC-V result derived from the host's
 * answer. Fails with the first mismatches listed.
 */
export function compare(
  batch: Batch,
  ours: (i: number) => void,
  expect: (i: number, host: Outcome) => Outcome,
  o: { wide?: (i: number) => boolean } = {},
): void {
  const host: Answers = runReference(batch);
  const bad: string[] = [];
  let count = 0;
  takeFlags();
  for (let i = 0; i < batch.n; i++) {
    ours(i);
    const got: Outcome = { lo: fpOut[0]!, hi: fpOut[1]!, flags: takeFlags() };
    const want = expect(i, { lo: host.lo[i]!, hi: host.hi[i]!, flags: host.flags[i]! });
    const wide = o.wide ? o.wide(i) : true;
    const same = got.lo === want.lo && (!wide || got.hi === want.hi) && got.flags === want.flags;
    if (same) continue;
    count++;
    if (bad.length < 12) {
      const g = (f: number): number => batch.get(i, f);
      bad.push(
        `${OPS[g(0)]} ${MODE_NAMES[g(1)]} a=${hex64(g(2), g(3))} b=${hex64(g(4), g(5))} c=${hex64(g(6), g(7))}: ` +
          `want ${wide ? hex64(want.lo, want.hi) : hex32(want.lo)} ${flagText(want.flags)}, ` +
          `got ${wide ? hex64(got.lo, got.hi) : hex32(got.lo)} ${flagText(got.flags)}`,
      );
    }
  }
  assert.equal(count, 0, `${count} of ${batch.n} cases differ:\n${bad.join('\n')}`);
}
