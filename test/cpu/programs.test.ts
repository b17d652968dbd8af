/**
 * Differential runs: each project-written program runs on virtus and on QEMU
 * (`qemu-system-riscv64 -M spike -bios none -kernel prog.elf`); both must report the same
 * result through tohost and print the same output.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGuest, runQemuSpike, runVirtus } from '../support/toolchain.ts';

interface Program {
  name: string;
  sources: string[];
  cflags?: string[];
}

export const PROGRAMS: Program[] = [
  { name: 'sieve', sources: ['common/crt.S', 'bench/sieve.c'], cflags: ['-DREPS=1'] },
];

for (const p of PROGRAMS) {
  test(`${p.name}: virtus and QEMU agree`, () => {
    const elf = buildGuest(p.name, p.sources, { cflags: p.cflags });
    const ours = runVirtus(['run', '--bios', 'none', '--kernel', elf]);
    const ref = runQemuSpike(elf);
    assert.equal(ref.status, 0, `QEMU: exit ${ref.status}\n${ref.stdout}${ref.stderr}`);
    assert.equal(ours.status, ref.status, `virtus: exit ${ours.status}\n${ours.stdout}${ours.stderr}`);
    assert.equal(ours.stdout, ref.stdout);
  });
}
