/**
 * In-process fuzzing of the parsers that read untrusted input (files, streams, guest messages).
 *
 * A target takes bytes and either accepts them or refuses them with a VirtusError; anything
 * else it throws (a RangeError, a TypeError, an internal assertion) is a crash, and so is an
 * input that takes longer than the target's time limit. Inputs are made by mutating the
 * target's seeds (valid inputs) with a seeded generator, so a run is reproducible from its
 * seed. Inputs that crashed once live in `fuzz/corpus/<target>/` and run first, every time:
 * they are the regression tests of the bugs they found.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { isVirtusError } from '../src/util/errors.ts';

/** Something that parses untrusted bytes. */
export interface FuzzTarget {
  /** Short name (the corpus folder and the `npm run fuzz -- NAME` filter). */
  readonly name: string;
  /** Valid inputs to start from (mutated to make the rest). */
  seeds(): Uint8Array[] | Promise<Uint8Array[]>;
  /**
   * Parses one input. Refusing it with a VirtusError is a correct answer; any other throw is a
   * crash. May be async (a parser behind a promise).
   */
  run(input: Uint8Array): unknown;
  /** Largest input to make (default: twice the largest seed, at least 4 KiB). */
  readonly maxLength?: number;
  /**
   * Inputs in the seeded run of `npm test`, for a target much slower per input than the parsers
   * (which share SHORT_RUN_INPUTS among themselves); `npm run fuzz -- --iterations N` gives it
   * N * iterations / SHORT_RUN_INPUTS.
   */
  readonly iterations?: number;
  /** Milliseconds one input may take before it counts as a hang (default 2000). */
  readonly timeLimitMs?: number;
  /** Releases what the target holds (temporary files), after a run. */
  close?(): void;
}

/** Inputs of the seeded run in `npm test` shared by the parser targets (the issue's bar is 10^5). */
export const SHORT_RUN_INPUTS = 120_000;

/**
 * Inputs for each target in a run that gives the parsers `perParser` each out of `total` (the
 * seeded run: SHORT_RUN_INPUTS shared; `npm run fuzz`: the same number each). A target with its
 * own `iterations` gets that share of `total` instead.
 */
export function iterationsFor(t: FuzzTarget, perParser: number, total: number): number {
  return t.iterations === undefined ? perParser : Math.max(1, Math.round((t.iterations * total) / SHORT_RUN_INPUTS));
}

/** A crash: the input and what it did. */
export interface Finding {
  target: string;
  input: Uint8Array;
  error: string;
}

export interface FuzzResult {
  target: string;
  /** Inputs run (the corpus included). */
  runs: number;
  findings: Finding[];
  ms: number;
}

/** sfc32: a small, fast generator with a 128-bit state; the same seed gives the same inputs. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** True with probability 1/n. */
  oneIn(n: number): boolean {
    return this.below(n) === 0;
  }

  /** Random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** Values that break parsers: zero, one, all ones, sign bits, powers of two and their neighbours. */
const INTERESTING_32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 512, 4096, 65536, 1 << 20, 1 << 30];

function writeWord(b: Uint8Array, at: number, value: number, width: number, littleEndian: boolean): void {
  for (let i = 0; i < width && at + i < b.length; i++) {
    const shift = littleEndian ? i : width - 1 - i;
    b[at + i] = shift >= 4 ? (value < 0 ? 0xff : 0) : (value >>> (8 * shift)) & 0xff;
  }
}

/**
 * One mutated input from `base`: a few stacked edits of the kinds coverage-guided fuzzers use
 * (bit flips, random and interesting bytes and words in either byte order, block insertion,
 * deletion, duplication, splicing with another seed, truncation).
 */
export function mutate(rng: Rng, base: Uint8Array, others: Uint8Array[], maxLength: number): Uint8Array {
  let b: Uint8Array = base.slice();
  const edits = 1 + rng.below(rng.oneIn(4) ? 16 : 4);
  for (let e = 0; e < edits; e++) {
    const at = rng.below(Math.max(1, b.length));
    switch (rng.below(10)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << rng.below(8));
        break;
      case 1:
        if (b.length) b[at] = rng.u32() & 0xff;
        break;
      case 2:
      case 3: {
        const width = [1, 2, 4, 8][rng.below(4)]!;
        const v = INTERESTING_32[rng.below(INTERESTING_32.length)]!;
        const delta = rng.oneIn(3) ? rng.below(33) - 16 : 0;
        writeWord(b, at, (v + delta) >>> 0, width, rng.below(2) === 0);
        break;
      }
      case 4: {
        // Add or subtract a small amount from a little-endian 32-bit field.
        if (b.length >= 4) {
          const i = rng.below(b.length - 3);
          const v = new DataView(b.buffer, b.byteOffset).getUint32(i, true);
          new DataView(b.buffer, b.byteOffset).setUint32(i, (v + rng.below(65) - 32) >>> 0, true);
        }
        break;
      }
      case 5: {
        const n = 1 + rng.below(Math.min(64, Math.max(1, b.length)));
        b = concat(b.subarray(0, at), b.subarray(at + n));
        break;
      }
      case 6: {
        const n = 1 + rng.below(64);
        b = concat(b.subarray(0, at), rng.oneIn(2) ? rng.bytes(n) : new Uint8Array(n).fill(rng.u32() & 0xff), b.subarray(at));
        break;
      }
      case 7: {
        // Duplicate a block in place.
        const n = 1 + rng.below(Math.min(256, Math.max(1, b.length - at)));
        b = concat(b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n));
        break;
      }
      case 8: {
        const other = others[rng.below(others.length)];
        if (other && other.length) {
          const from = rng.below(other.length);
          const n = 1 + rng.below(Math.min(512, other.length - from));
          b = concat(b.subarray(0, at), other.subarray(from, from + n), b.subarray(at + n));
        }
        break;
      }
      case 9:
        if (rng.oneIn(3)) b = b.subarray(0, rng.below(b.length + 1)).slice();
        else if (b.length) b[at] = b[(at + 1) % b.length]!;
        break;
    }
  }
  return b.length > maxLength ? b.subarray(0, maxLength).slice() : b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const fuzzDir = new URL('.', import.meta.url).pathname;

/** The inputs that crashed a target once (its regression corpus). */
export function corpus(name: string): Array<{ name: string; bytes: Uint8Array }> {
  const dir = join(fuzzDir, 'corpus', name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(join(dir, f))) }));
}

/** Every target in fuzz/targets/ (each module exports `target` or `targets`). */
export async function loadTargets(): Promise<FuzzTarget[]> {
  const dir = join(fuzzDir, 'targets');
  const out: FuzzTarget[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
    const m = (await import(join(dir, f))) as { target?: FuzzTarget; targets?: FuzzTarget[] };
    if (m.target) out.push(m.target);
    if (m.targets) out.push(...m.targets);
  }
  return out;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? `\n${e.stack.split('\n').slice(1, 6).join('\n')}` : ''}`;
  return String(e);
}

/**
 * Runs the corpus, then `iterations` mutated inputs (or until `timeMs` passes). Returns what
 * crashed; never throws for a target's sake.
 */
export async function fuzz(t: FuzzTarget, o: { iterations: number; seed: number; timeMs?: number }): Promise<FuzzResult> {
  const start = performance.now();
  const seeds = await t.seeds();
  if (!seeds.length) throw new Error(`fuzz target ${t.name} has no seeds`);
  const maxLength = t.maxLength ?? Math.max(4096, 2 * Math.max(...seeds.map((s) => s.length)));
  const limit = t.timeLimitMs ?? 2000;
  const rng = new Rng(o.seed);
  const findings: Finding[] = [];
  let runs = 0;
  const one = async (input: Uint8Array): Promise<void> => {
    runs++;
    const t0 = performance.now();
    try {
      await t.run(input);
    } catch (e) {
      if (!isVirtusError(e)) findings.push({ target: t.name, input, error: describe(e) });
      return;
    } finally {
      const ms = performance.now() - t0;
      if (ms > limit) findings.push({ target: t.name, input, error: `took ${ms.toFixed(0)} ms (limit ${limit} ms)` });
    }
  };
  try {
    for (const s of seeds) await one(s);
    for (const c of corpus(t.name)) await one(c.bytes);
    for (let i = 0; i < o.iterations; i++) {
      if (o.timeMs !== undefined && performance.now() - start > o.timeMs) break;
      const base = seeds[rng.below(seeds.length)]!;
      await one(mutate(rng, base, seeds, maxLength));
      if (findings.length >= 20) break;
    }
  } finally {
    t.close?.();
  }
  return { target: t.name, runs, findings, ms: performance.now() - start };
}
