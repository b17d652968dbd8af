/**
 * Lockstep differential testing: the translator and the reference interpreter run the same
 * guest from the same state, with the same budgets, and their full architectural state is
 * compared every time they stop (block boundaries and exits). The first divergence is
 * reported with both states, which points at the instruction the translator got wrong.
 */
import { SLOTS } from '../../src/cpu/layout.ts';
import type { Machine } from '../../src/machine/machine.ts';
import { X_NAMES } from '../../src/isa/formats.ts';

export interface LockstepResult {
  steps: number;
  instructions: number;
  /** Instructions the translator ran from compiled regions (not interpreted). */
  translated: number;
}

const hex = (lo: number, hi: number): string =>
  BigInt.asUintN(64, (BigInt(hi) << 32n) | BigInt(lo >>> 0)).toString(16);

/** Engine bookkeeping among the slots, not architectural state. */
const BOOKKEEPING = new Set(['tlbGen', 'dtlb', 'jcGen', 'jcHits']);
/** Indices (in 32-bit halves) of the architectural slots. */
const ARCH_SLOTS = SLOTS.flatMap((name, i) => (BOOKKEEPING.has(name) ? [] : [2 * i, 2 * i + 1]));

function sameWords(a: Int32Array, b: Int32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether registers, pc and architectural slots agree (the quick check before stateDiff). */
function sameState(a: Machine, b: Machine): boolean {
  const ha = a.harts[0]!;
  const hb = b.harts[0]!;
  if (!sameWords(ha.x, hb.x, 2, 64) || !sameWords(ha.f, hb.f, 0, 64) || ha.pc[0] !== hb.pc[0] || ha.pc[1] !== hb.pc[1]) return false;
  for (const i of ARCH_SLOTS) if (ha.s[i] !== hb.s[i]) return false;
  return true;
}

/** Differences between the architectural states of two machines (empty when equal). */
export function stateDiff(a: Machine, b: Machine, compareRam: boolean): string[] {
  const out: string[] = [];
  const ha = a.harts[0]!;
  const hb = b.harts[0]!;
  if (ha.pc[0] !== hb.pc[0] || ha.pc[1] !== hb.pc[1]) out.push(`pc: jit ${hex(ha.pc[0]!, ha.pc[1]!)} interp ${hex(hb.pc[0]!, hb.pc[1]!)}`);
  for (let r = 1; r < 32; r++) {
    if (ha.x[2 * r] !== hb.x[2 * r] || ha.x[2 * r + 1] !== hb.x[2 * r + 1]) {
      out.push(`${X_NAMES[r]}: jit ${hex(ha.x[2 * r]!, ha.x[2 * r + 1]!)} interp ${hex(hb.x[2 * r]!, hb.x[2 * r + 1]!)}`);
    }
  }
  for (let r = 0; r < 64; r++) if (ha.f[r] !== hb.f[r]) out.push(`f${r >> 1}: differs`);
  SLOTS.forEach((name, i) => {
    if (BOOKKEEPING.has(name)) return;
    if (ha.s[2 * i] !== hb.s[2 * i] || ha.s[2 * i + 1] !== hb.s[2 * i + 1]) {
      out.push(`${name}: jit ${hex(ha.s[2 * i]!, ha.s[2 * i + 1]!)} interp ${hex(hb.s[2 * i]!, hb.s[2 * i + 1]!)}`);
    }
  });
  if (compareRam) {
    const ra = a.ram.bytes;
    const rb = b.ram.bytes;
    const wa = new Int32Array(ra.buffer, ra.byteOffset, ra.length >>> 2);
    const wb = new Int32Array(rb.buffer, rb.byteOffset, rb.length >>> 2);
    for (let i = 0; i < wa.length; i++) {
      if (wa[i] !== wb[i]) {
        let at = i * 4;
        while (ra[at] === rb[at]) at++;
        out.push(`RAM differs first at 0x${(a.ram.base + at).toString(16)}`);
        return out;
      }
    }
  }
  return out;
}

/**
 * Steps `jit` and `interp` (identically prepared machines) through `maxInsns` instructions, or
 * `maxSteps` steps (a guest that keeps trapping retires nothing). Each step gives both the same
 * slice budget; throws at the first divergence.
 */
export function lockstep(
  jit: Machine,
  interp: Machine,
  maxInsns: number,
  o: { budget?: number; ramEvery?: number; maxSteps?: number } = {},
): LockstepResult {
  let steps = 0;
  const budget = o.budget ?? 200;
  const ramEvery = o.ramEvery ?? 10_000;
  const maxSteps = o.maxSteps ?? Infinity;
  while (jit.instret() < maxInsns && !jit.exit && !interp.exit && steps < maxSteps) {
    const before = jit.instret();
    const na = jit.slice(budget);
    const nb = interp.slice(budget);
    steps++;
    if (na === 0 && nb === 0 && jit.harts[0]!.get('wfi')) {
      const d = jit.nextDeadline();
      if (d === Infinity) break;
      jit.clock.skipTo(d);
      interp.clock.skipTo(d);
    }
    const diff = sameState(jit, interp) && steps % ramEvery !== 0 ? [] : stateDiff(jit, interp, steps % ramEvery === 0);
    if (na !== nb || diff.length > 0) {
      throw new Error(
        `lockstep divergence after step ${steps} (instruction ${before} -> jit ${jit.instret()}, interp ${interp.instret()}; ` +
          `retired jit ${na} interp ${nb}):\n  ${diff.join('\n  ')}`,
      );
    }
  }
  const tail = stateDiff(jit, interp, true);
  if (tail.length) throw new Error(`lockstep divergence at the end:\n  ${tail.join('\n  ')}`);
  const s = jit.jit!.stats;
  return { steps, instructions: jit.instret(), translated: jit.instret() - s.interpretedInsns };
}
