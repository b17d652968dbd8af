/**
 * Deterministic operation streams for the crash tests: the process under test and the test
 * that checks it derive the same operations from the same seed, so the checker can replay
 * exactly what was flushed and know which bytes were touched after the last flush.
 */
import type { BlockBackend } from '../../src/storage/backend.ts';
import { Rng } from './support.ts';

export type CrashOp =
  | { kind: 'write'; off: number; data: Uint8Array }
  | { kind: 'zero' | 'discard'; off: number; len: number }
  | { kind: 'flush' };

/** An endless stream of operations on a disk of `size` bytes with `cs`-byte clusters. */
export function* crashOps(seed: number, size: number, cs: number): Generator<CrashOp> {
  const rng = new Rng(seed);
  for (;;) {
    const r = rng.below(100);
    const aligned = rng.below(2) === 0;
    const off = aligned ? Math.floor(rng.below(size) / cs) * cs : rng.below(size);
    const len = Math.min(size - off, 1 + rng.below(rng.below(3) === 0 ? 4 * cs : 6000));
    if (r < 70) yield { kind: 'write', off, data: rng.bytes(len) };
    else if (r < 78) yield { kind: 'zero', off, len };
    else if (r < 84) yield { kind: 'discard', off, len };
    else yield { kind: 'flush' };
  }
}

/** Applies an operation to a backend. */
export function applyOp(b: BlockBackend, op: CrashOp): void {
  switch (op.kind) {
    case 'write': b.write(op.off, op.data); break;
    case 'zero': b.writeZeroes(op.off, op.len); break;
    case 'discard': b.discard(op.off, op.len); break;
    case 'flush': b.flush();
  }
}

/** What the disk must read as: `data`, except where `undef` is set (discarded bytes). */
export interface DiskModel {
  data: Uint8Array;
  undef: Uint8Array;
}

export function newModel(size: number): DiskModel {
  return { data: new Uint8Array(size), undef: new Uint8Array(size) };
}

/**
 * Applies an operation to the model. A discard leaves its bytes undefined (zeros or the old
 * data) until they are written again. `touched`, when given, marks every byte the operation
 * may change.
 */
export function modelOp(m: DiskModel, touched: Uint8Array | null, op: CrashOp): void {
  if (op.kind === 'flush') return;
  const len = op.kind === 'write' ? op.data.length : op.len;
  touched?.fill(1, op.off, op.off + len);
  if (op.kind === 'write') m.data.set(op.data, op.off);
  else if (op.kind === 'zero') m.data.fill(0, op.off, op.off + len);
  m.undef.fill(op.kind === 'discard' ? 1 : 0, op.off, op.off + len);
}

/** The first byte where `got` disagrees with the model outside `touched`, or -1. */
export function firstMismatch(got: Uint8Array, m: DiskModel, touched: Uint8Array): number {
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== m.data[i] && !m.undef[i] && !touched[i]) return i;
  }
  return -1;
}
