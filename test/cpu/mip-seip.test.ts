/**
 * mip.SEIP read-modify-write (Privileged 3.1.9): CSRRS/CSRRC on mip use the software-writable
 * SEIP bit, not the PLIC's signal, so firmware that sets SSIP while an external interrupt is
 * pending does not latch SEIP for ever (OpenSBI does exactly that to deliver IPIs on an SMP
 * machine: a latched SEIP was an interrupt storm on hart 0). The same program on QEMU's virt
 * board is the reference.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { it } from 'node:test';
import { buildGuest, requireTool, runVirtus } from '../support/toolchain.ts';

it('csrs mip leaves the PLIC-driven SEIP out of the software bit, as on QEMU', () => {
  const elf = buildGuest('seip', ['common/crt.S', 'cpu/seip.c']);
  const v = runVirtus(['run', '--bios', 'none', '--kernel', elf], { input: '' });
  requireTool('qemu-system-riscv64');
  const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-m', '64M', '-nographic', '-bios', 'none', '-kernel', elf], { encoding: 'utf8', timeout: 60_000, input: '' });
  assert.equal(q.status, 0, q.stderr);
  assert.equal(q.stdout.replace(/\r/g, ''), 'seip while the PLIC asks=1\nclaimed the UART=1\nssip after csrs=1\nseip after the request ended=0\nssip after csrc=0\n');
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout, q.stdout.replace(/\r/g, ''));
});
