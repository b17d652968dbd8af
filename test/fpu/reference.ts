/**
 * The host reference (test/fpu/ref.c): compiled with the host gcc at test time into build/,
 * fed batches of operations, answering result bits and flags. See ref.c for how each
 * operation is evaluated on the host.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD, requireTool, ROOT } from '../support/toolchain.ts';

/** Operation numbers shared with ref.c (its enum lists them in this order). */
export const OPS = [
  'fadd.d', 'fsub.d', 'fmul.d', 'fdiv.d', 'fsqrt.d', 'fmadd.d', 'fmsub.d', 'fnmsub.d', 'fnmadd.d',
  'fadd.s', 'fsub.s', 'fmul.s', 'fdiv.s', 'fsqrt.s', 'fmadd.s', 'fmsub.s', 'fnmsub.s', 'fnmadd.s',
  'fcvt.s.d', 'fcvt.d.s', 'rint.d', 'rint.s',
  'fcvt.d.w', 'fcvt.d.wu', 'fcvt.d.l', 'fcvt.d.lu', 'fcvt.s.w', 'fcvt.s.wu', 'fcvt.s.l', 'fcvt.s.lu',
  'feq.d', 'flt.d', 'fle.d', 'feq.s', 'flt.s', 'fle.s', 'fclass.d', 'fclass.s',
] as const;
export type OpName = (typeof OPS)[number];
export const opIndex = (n: OpName): number => OPS.indexOf(n);

/** A batch of operations: op, rm and three 64-bit operands as int32 halves. */
export class Batch {
  n = 0;
  private buf = new Int32Array(8 * 1024);

  push(op: number, rm: number, aLo: number, aHi: number, bLo = 0, bHi = 0, cLo = 0, cHi = 0): void {
    if ((this.n + 1) * 8 > this.buf.length) {
      const b = new Int32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    const i = this.n++ * 8;
    const B = this.buf;
    B[i] = op;
    B[i + 1] = rm;
    B[i + 2] = aLo;
    B[i + 3] = aHi;
    B[i + 4] = bLo;
    B[i + 5] = bHi;
    B[i + 6] = cLo;
    B[i + 7] = cHi;
  }

  /** Field `f` (0 op, 1 rm, 2..7 operand halves) of case `i`. */
  get(i: number, f: number): number {
    return this.buf[i * 8 + f]!;
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.buf.buffer, 0, this.n * 32);
  }
}

/** Host answers for a batch: result halves and flags per case. */
export interface Answers {
  lo: Int32Array;
  hi: Int32Array;
  flags: Int32Array;
}

let built: string | undefined;

/** Compiles ref.c (only when it changed) and returns the executable's path. */
export function buildReference(): string {
  if (built) return built;
  requireTool('gcc');
  const src = join(ROOT, 'test/fpu/ref.c');
  const out = join(BUILD, 'fpu', 'ref');
  mkdirSync(join(BUILD, 'fpu'), { recursive: true });
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    const r = spawnSync('gcc', ['-O1', '-std=gnu11', '-frounding-math', '-fsignaling-nans', '-o', out, src, '-lm'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building the FPU reference failed:\n${r.stderr}`);
  }
  built = out;
  return out;
}

/** Runs a batch through the host reference. */
export function runReference(batch: Batch): Answers {
  const exe = buildReference();
  const r = spawnSync(exe, [], { input: batch.bytes(), maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`the FPU reference failed (status ${r.status}): ${String(r.stderr)}`);
  // Typed views need 4-byte alignment; a pooled Buffer may not have it.
  const out = r.stdout.byteOffset % 4 === 0 ? r.stdout : new Uint8Array(r.stdout);
  if (out.length !== batch.n * 16) throw new Error(`the FPU reference answered ${out.length / 16} of ${batch.n} cases`);
  const words = new Int32Array(out.buffer, out.byteOffset, out.length / 4);
  const lo = new Int32Array(batch.n);
  const hi = new Int32Array(batch.n);
  const flags = new Int32Array(batch.n);
  for (let i = 0; i < batch.n; i++) {
    lo[i] = words[i * 4]!;
    hi[i] = words[i * 4 + 1]!;
    flags[i] = words[i * 4 + 2]!;
  }
  return { lo, hi, flags };
}
