/**
 * The benchmark harness behind `npm run bench`. A benchmark module (bench/*.bench.ts) exports
 * `bench: Benchmark`; each run returns rows that put virtus next to QEMU (and the host, where it
 * makes sense) on the same guest in the same run. Speed is reported here, never asserted in a
 * test: absolute times on shared machines drift, ratios within one run are what we compare.
 */
export interface Row {
  /** What was measured, e.g. "sieve (bare metal)". */
  name: string;
  unit: string;
  /** Whether a bigger number is better (MIPS, MB/s) or a smaller one (seconds). */
  better: 'higher' | 'lower';
  virtus?: number;
  /** A second virtus configuration (e.g. the interpreter next to the translator). */
  virtusAlt?: number;
  qemu?: number;
  native?: number;
  note?: string;
}

export interface Benchmark {
  name: string;
  /** What virtusAlt means for this benchmark, when used. */
  altLabel?: string;
  run(): Promise<Row[]>;
}

/** Median of `n` timed runs of `f` (milliseconds). */
export async function medianMs(n: number, f: () => Promise<void> | void): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await f();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

const fmt = (v: number | undefined): string => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** The rows as a text table with the virtus/QEMU ratio (how many times slower virtus is). */
export function table(rows: Row[]): string {
  const head = ['benchmark', 'unit', 'virtus', 'alt', 'qemu', 'native', 'virtus/qemu', 'note'];
  const body = rows.map((r) => {
    let ratio = '-';
    if (r.virtus !== undefined && r.qemu !== undefined && r.virtus > 0 && r.qemu > 0) {
      const slower = r.better === 'higher' ? r.qemu / r.virtus : r.virtus / r.qemu;
      ratio = `${slower.toFixed(2)}x slower`;
      if (slower < 1) ratio = `${(1 / slower).toFixed(2)}x faster`;
    }
    return [r.name, r.unit, fmt(r.virtus), fmt(r.virtusAlt), fmt(r.qemu), fmt(r.native), ratio, r.note ?? ''];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
