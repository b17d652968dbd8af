/**
 * What the monitor did: the exits into it by reason. Hypercalls (SBI calls by extension and
 * function), device accesses (MMIO, per device), traps by cause and interrupts by source. The
 * same counters feed `--stats` and the web console.
 */
import { causeName } from '../cpu/trap.ts';
import type { VirtBoard } from './virt.ts';

export interface MachineStats {
  instructions: number;
  /** Per hart: instructions retired, traps and interrupts taken ("hart1 instructions"). */
  harts: Record<string, number>;
  sbi: Record<string, number>;
  devices: Record<string, number>;
  traps: Record<string, number>;
  interrupts: Record<string, number>;
  /** Paravirtual I/O, per virtio device: requests, bytes, notifications ("virtio-blk0 bytes read"). */
  virtio: Record<string, number>;
  /** The translator's counters (absent when the machine interprets). */
  jit?: Record<string, number>;
}

const sorted = (m: Map<string, number>): Record<string, number> =>
  Object.fromEntries([...m].sort((a, b) => b[1] - a[1]));

export function collectStats(board: VirtBoard): MachineStats {
  const m = board.machine;
  const traps = new Map<string, number>();
  const irqs = new Map<string, number>();
  for (const h of m.harts) {
    for (const [c, n] of h.trapCounts) traps.set(causeName(c), (traps.get(causeName(c)) ?? 0) + n);
    for (const [c, n] of h.irqCounts) irqs.set(causeName(c, true), (irqs.get(causeName(c, true)) ?? 0) + n);
  }
  const harts: Record<string, number> = {};
  const total = (c: Map<number, number>): number => [...c.values()].reduce((a, n) => a + n, 0);
  for (const h of m.harts) {
    harts[`hart${h.id} instructions`] = h.getNum('minstret');
    harts[`hart${h.id} traps`] = total(h.trapCounts);
    harts[`hart${h.id} interrupts`] = total(h.irqCounts);
  }
  if (m.hartThreads) harts['threads of their own'] = m.hartThreads;
  // The translators' counters, summed over the harts' engines.
  let jit: Record<string, number> | null = null;
  for (const e of m.jits) {
    jit ??= {};
    for (const [k, v] of Object.entries(e.stats)) jit[k] = (jit[k] ?? 0) + v;
  }
  return {
    instructions: m.instret(),
    harts,
    sbi: board.sbi.stats(),
    devices: sorted(m.bus.accessCounts),
    traps: sorted(traps),
    interrupts: sorted(irqs),
    virtio: Object.fromEntries(board.virtio.flatMap((t) => Object.entries(t.counters()).map(([k, n]) => [`${t.name} ${k}`, n]))),
    ...(jit ? { jit } : {}),
  };
}

/** The statistics as a text report (what `--stats` prints at exit). */
export function formatStats(s: MachineStats): string {
  const lines = [`instructions: ${s.instructions}`];
  if (Object.keys(s.harts).length > 3) {
    lines.push('harts:', ...Object.entries(s.harts).map(([k, n]) => `  ${k.padEnd(34)} ${String(n).padStart(12)}`));
  }
  const section = (title: string, r: Record<string, number>): void => {
    const entries = Object.entries(r);
    const total = entries.reduce((a, [, n]) => a + n, 0);
    lines.push(`${title}: ${total}`);
    for (const [k, n] of entries) lines.push(`  ${k.padEnd(34)} ${String(n).padStart(12)}`);
  };
  section('SBI calls (hypercalls)', s.sbi);
  section('device accesses (MMIO exits)', s.devices);
  section('traps', s.traps);
  section('interrupts', s.interrupts);
  // Counts of different things (requests, bytes): listed without a total.
  const virtio = Object.entries(s.virtio).filter(([, n]) => n > 0);
  if (virtio.length) lines.push('virtio devices (paravirtual I/O):', ...virtio.map(([k, n]) => `  ${k.padEnd(34)} ${String(n).padStart(12)}`));
  if (s.jit) {
    lines.push('translator:');
    for (const [k, v] of Object.entries(s.jit)) lines.push(`  ${k.padEnd(34)} ${String(Math.round(v)).padStart(12)}`);
  }
  return lines.join('\n');
}
