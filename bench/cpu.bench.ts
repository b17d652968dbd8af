/**
 * CPU-bound bare-metal programs: guest instructions per second on virtus's translator (the
 * virtus column) and interpreter (alt), and the same program's run time on QEMU (-M spike
 * -bios none), in one run. The integer program is test/guest/bench/sieve.c (sieve, quicksort,
 * FNV hash); the floating-point one is test/guest/bench/fp.c (n-body with fsqrt.d, a matrix
 * multiply of fused multiply-adds, single-precision normalisation); the multiprecision one is
 * test/guest/bench/mpi.c (2048-bit Montgomery exponentiation: MUL and MULHU in carry chains).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Machine } from '../src/machine/machine.ts';
import { parseElf } from '../src/machine/elf.ts';
import { buildGuest } from '../test/support/toolchain.ts';
import { medianMs, type Benchmark, type Row } from './harness.ts';

/** Runs an ELF to completion in-process, yielding to the event loop between slices as `virtus run` does. */
async function runVirtus(elf: string, engine: 'jit' | 'interp'): Promise<{ insns: number; seconds: number }> {
  const img = parseElf(new Uint8Array(readFileSync(elf)), elf);
  const m = new Machine({ ramSize: 64 << 20, console: () => {}, engine });
  for (const s of img.segments) m.ram.load(s.paddr, s.data);
  m.attachHtif(img.symbols.get('tohost')!, img.symbols.get('fromhost') ?? null);
  m.harts[0]!.setPcNum(img.entry);
  const t = performance.now();
  while (!m.exit) {
    m.slice(1_000_000);
    await new Promise((r) => setImmediate(r));
  }
  const seconds = (performance.now() - t) / 1000;
  if (m.exit.code !== 0) throw new Error(`${elf} exited with ${m.exit.code}`);
  return { insns: m.instret(), seconds };
}

async function qemuSeconds(elf: string): Promise<number> {
  const ms = await medianMs(3, () => {
    const r = spawnSync('qemu-system-riscv64', ['-M', 'spike', '-bios', 'none', '-kernel', elf, '-display', 'none', '-monitor', 'none', '-serial', 'none'], { timeout: 120_000 });
    if (r.status !== 0) throw new Error(`qemu failed on ${elf}`);
  });
  return ms / 1000;
}

/** Median of three runs after a warm-up run (V8's tiers, and the translator's own). */
async function median(elf: string, engine: 'jit' | 'interp'): Promise<{ insns: number; seconds: number }> {
  await runVirtus(elf, engine);
  const runs = [await runVirtus(elf, engine), await runVirtus(elf, engine), await runVirtus(elf, engine)];
  return runs.sort((a, b) => a.seconds - b.seconds)[1]!;
}

export const bench: Benchmark = {
  name: 'cpu',
  altLabel: 'virtus --engine interp',
  async run(): Promise<Row[]> {
    const rows: Row[] = [];
    const programs = [
      { name: 'sieve+sort+hash, bare metal', elf: buildGuest('bench-sieve', ['common/crt.S', 'bench/sieve.c'], { cflags: ['-DREPS=30'] }) },
      { name: 'fp (n-body, matmul), bare metal', elf: buildGuest('bench-fp', ['common/crt.S', 'bench/fp.c'], { cflags: ['-DREPS=8'] }) },
      { name: 'mpi (2048-bit modexp), bare metal', elf: buildGuest('bench-mpi', ['common/crt.S', 'bench/mpi.c'], { cflags: ['-DREPS=100'] }) },
    ];
    for (const p of programs) {
      const j = await median(p.elf, 'jit');
      const i = await median(p.elf, 'interp');
      const q = await qemuSeconds(p.elf);
      rows.push({ name: p.name, unit: 'MIPS', better: 'higher', virtus: j.insns / j.seconds / 1e6, virtusAlt: i.insns / i.seconds / 1e6, qemu: j.insns / q / 1e6, note: `${(j.insns / 1e6).toFixed(0)}M insns` });
      rows.push({ name: p.name, unit: 's', better: 'lower', virtus: j.seconds, virtusAlt: i.seconds, qemu: q });
    }
    return rows;
  },
};
