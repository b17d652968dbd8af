/**
 * Random block workloads checked against a plain in-memory model of the disk: the model is
 * what the virtual disk must read as after every operation.
 */
import assert from 'node:assert/strict';
import type { BlockBackend } from '../../src/storage/backend.ts';
import type { Rng } from './support.ts';

export interface WorkloadOptions {
  ops: number;
  /** Cluster size of the image under test (for discard's whole-cluster semantics). */
  clusterSize: number;
  /** Discard of a whole cluster reads back zeros (qcow2 v3, or no backing file). */
  discardZeroes: boolean;
  /** Largest single write. */
  maxLength?: number;
  /** Probability weights: write, writeZeroes, discard, flush, read-check. */
  mix?: [number, number, number, number, number];
}

/** Applies `o.ops` random operations to `b` and `model`, checking reads along the way. */
export function runWorkload(b: BlockBackend, model: Uint8Array, rng: Rng, o: WorkloadOptions): void {
  const mix = o.mix ?? [60, 12, 10, 6, 12];
  const total = mix.reduce((a, c) => a + c, 0);
  const maxLen = o.maxLength ?? 4 * o.clusterSize + 1000;
  for (let k = 0; k < o.ops; k++) {
    const off = randomOffset(rng, b.size, o.clusterSize);
    const len = Math.min(b.size - off, 1 + rng.below(rng.below(4) === 0 ? maxLen : 8192));
    let pick = rng.below(total);
    let op = 0;
    while (pick >= mix[op]!) pick -= mix[op++]!;
    switch (op) {
      case 0: {
        const d = rng.bytes(len);
        b.write(off, d);
        model.set(d, off);
        break;
      }
      case 1:
        b.writeZeroes(off, len);
        model.fill(0, off, off + len);
        break;
      case 2: {
        b.discard(off, len);
        if (!o.discardZeroes) break;
        // Only whole clusters are dropped (the disk's last, partial cluster counts as whole).
        const cs = o.clusterSize;
        const first = Math.ceil(off / cs) * cs;
        let end = Math.floor((off + len) / cs) * cs;
        if (off + len === b.size) end = b.size;
        if (end > first) model.fill(0, first, end);
        break;
      }
      case 3:
        b.flush();
        break;
      default: {
        const got = new Uint8Array(len);
        b.read(off, got);
        assertSame(got, model.subarray(off, off + len), `read ${off}+${len} after ${k} ops`);
      }
    }
  }
}

/** Offsets biased toward cluster boundaries and the disk's ends, where bugs live. */
function randomOffset(rng: Rng, size: number, cs: number): number {
  switch (rng.below(5)) {
    case 0: return Math.floor(rng.below(size) / cs) * cs;
    case 1: return Math.max(0, Math.floor(rng.below(size) / cs) * cs - 1 - rng.below(600));
    case 2: return Math.max(0, size - 1 - rng.below(3 * cs));
    default: return rng.below(size);
  }
}

/** Byte-exact comparison that reports the first difference instead of dumping buffers. */
export function assertSame(got: Uint8Array, want: Uint8Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) assert.fail(`${what}: first difference at byte ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

/** Reads the whole disk and compares it with the model. */
export function assertDisk(b: BlockBackend, model: Uint8Array, what: string): void {
  const got = new Uint8Array(b.size);
  b.read(0, got);
  assertSame(got, model, what);
}
