/**
 * The CLINT's time at the edges of its range, through `virtus run` (test/guest/devices/time.c):
 * mtime set near 2^64 and back, a WFI for a timer a few ticks ahead each time. Each wait
 * ends with mtime past mtimecmp, in real time and in deterministic mode (where the machine
 * skips time to the deadline and, with time near 2^64 in doubles, could skip forever).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildGuest, runVirtus } from '../support/toolchain.ts';

describe('CLINT time near 2^64', () => {
  for (const mode of [[], ['--deterministic']]) {
    it(`mtime writes wrap at 52 bits and every timer wait ends (${mode.join(' ') || 'real time'})`, () => {
      const elf = buildGuest('devices-time', ['common/crt.S', 'devices/time.c']);
      const r = runVirtus(['run', '--bios', 'none', '--kernel', elf, ...mode], { timeout: 60_000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^mtime_high=0x000fffff[0-9a-f]{8}$/m);
      assert.match(r.stdout, /^time: ok$/m);
    });
  }
});

describe('a deterministic machine never skips time beyond 2^53 ticks', () => {
  it('a WFI for a timer at 2^64-1 ends the run cleanly: the interrupt can never arrive', () => {
    const elf = buildGuest('devices-leap', ['common/crt.S', 'devices/leap.c']);
    const r = runVirtus(['run', '--bios', 'none', '--kernel', elf, '--deterministic'], { timeout: 60_000 });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^waiting for mtimecmp 2\^64-1$/m);
    assert.doesNotMatch(r.stdout, /woke/);
    assert.equal(r.stderr.trim(), 'virtus: the guest waits for an interrupt that can never arrive');
  });
});
