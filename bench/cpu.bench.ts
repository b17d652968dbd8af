/**
 * CPU-bound bare-metal programs (sieve/sort/hash): guest instructions per second on virtus's
 * engines and the same program's run time on QEMU (-M spike -bios none), in one run.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Machine } from '../src/machine/machine.ts';
import { parseElf } from '../src/machine/elf.ts';
import { buildGuest } from '../test/support/toolchain.ts';
import { medianMs, type Benchmark, type Row } from './harness.ts';

/** Runs an ELF to completion in-process; returns instructions and seconds. */
function runVirtus(elf: string): { insns: number; seconds: number } {
  const img = parseElf(new Uint8Array(readFileSync(elf)), elf);
  const m = new Machine({ ramSize: 64 << 20, console: () => {} });
  for (const s of img.segments) m.ram.load(s.paddr, s.data);
  m.attachHtif(img.symbols.get('tohost')!, img.symbols.get('fromhost') ?? null);
  m.harts[0]!.setPcNum(img.entry);
  const t = performance.now();
  while (!m.exit) m.slice(4_000_000);
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

export const bench: Benchmark = {
  name: 'cpu',
  async run(): Promise<Row[]> {
    const rows: Row[] = [];
    const elf = buildGuest('bench-sieve', ['common/crt.S', 'bench/sieve.c'], { cflags: ['-DREPS=30'] });
    runVirtus(elf); // warm up the engine (V8 tiers)
    const runs = [runVirtus(elf), runVirtus(elf), runVirtus(elf)].sort((a, b) => a.seconds - b.seconds);
    const v = runs[1]!;
    const q = await qemuSeconds(elf);
    rows.push({ name: 'sieve+sort+hash, bare metal', unit: 'MIPS', better: 'higher', virtus: v.insns / v.seconds / 1e6, qemu: v.insns / q / 1e6, note: `${(v.insns / 1e6).toFixed(0)}M insns` });
    rows.push({ name: 'sieve+sort+hash, bare metal', unit: 's', better: 'lower', virtus: v.seconds, qemu: q });
    return rows;
  },
};
