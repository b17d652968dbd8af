/**
 * A hart's counters across threads (--stats, query-stats): a hart's thread (hart-thread.ts)
 * writes its trap and interrupt counts and its translator's counters into its slots of the
 * control block (smp-shared.ts) whenever it stops; the device thread copies them into the
 * machine's own Hart and engine objects, which collectStats reads as for harts on one thread.
 */
import type { Hart } from '../cpu/hart.ts';
import type { JitStats } from '../jit/engine.ts';
import { STATS_SLOTS } from './smp-shared.ts';

/** Slots: trap counts by cause, interrupt counts by cause, then the translator's counters. */
const TRAPS = 0;
const IRQS = 32;
const JIT = 48;

/** Writes `h`'s counters (and its translator's) into `out`. */
export function publishHartStats(out: Float64Array, h: Hart, jit: JitStats | null): void {
  out.fill(0);
  for (const [c, n] of h.trapCounts) if (c < IRQS - TRAPS) out[TRAPS + c] = n;
  for (const [c, n] of h.irqCounts) if (c < JIT - IRQS) out[IRQS + c] = n;
  if (jit) Object.values(jit).forEach((v, k) => (out[JIT + k] = v));
}

/** Takes the counters `publishHartStats` wrote into `h` and `jit` (replacing theirs). */
export function takeHartStats(src: Float64Array, h: Hart, jit: JitStats | null): void {
  h.trapCounts.clear();
  h.irqCounts.clear();
  for (let c = 0; c < IRQS - TRAPS; c++) if (src[TRAPS + c]) h.trapCounts.set(c, src[TRAPS + c]!);
  for (let c = 0; c < JIT - IRQS; c++) if (src[IRQS + c]) h.irqCounts.set(c, src[IRQS + c]!);
  if (jit) {
    const keys = Object.keys(jit) as Array<keyof JitStats>;
    keys.forEach((k, i) => (jit[k] = src[JIT + i]!));
  }
}

if (JIT + 16 > STATS_SLOTS) throw new Error('hart-stats: the counters do not fit');
