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
    if (name === 'tlbGen' || name === 'dtlb' || name === 'jcGen' || name === 'jcHits') return; // engine bookkeeping, not architectural
    if (ha.s[2 * i] !== hb.s[2 * i] || ha.s[2 * i + 1] !== hb.s[2 * i + 1]) {
      out.push(`${name}: jit ${hex(ha.s[2 * i]!, ha.s[2 * i + 1]!)} interp ${hex(hb.s[2 * i]!, hb.s[2 * i + 1]!)}`);
    }
  });
  if (compareRam) {
    const ra = a.ram.bytes;
    const rb = b.ram.bytes;
    for (let p = 0; p < ra.length; p += 4096) {
      for (let i = p; i < p + 4096; i++) {
        if (ra[i] !== rb[i]) {
          out.push(`RAM differs first at 0x${(a.ram.base + i).toString(16)}`);
          return out;
        }
      }
    }
  }
  return out;
}

/**
 * Steps `jit` and `interp` (identically prepared machines) through `maxInsns` instructions.
 * Each step gives both the same slice budget; throws at the first divergence.
 */
export function lockstep(jit: Machine, interp: Machine, maxInsns: number, o: { budget?: number; ramEvery?: number } = {}): LockstepResult {
  let steps = 0;
  const budget = o.budget ?? 200;
  const ramEvery = o.ramEvery ?? 10_000;
  while (jit.instret() < maxInsns && !jit.exit && !interp.exit) {
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
    const diff = stateDiff(jit, interp, steps % ramEvery === 0);
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
