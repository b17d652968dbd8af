/**
 * The virt board's promise: Debian's unmodified kernel boots the default guest to a busybox
 * shell on virtus, once with virtus as the firmware (the built-in SBI: the kernel's ecalls are
 * hypercalls into the monitor) and once under Debian's OpenSBI (fw_dynamic, as QEMU boots
 * it). Over the console, as a user would: uname -a, /proc/cpuinfo (the ISA string the device
 * tree gives), /proc/interrupts (the UART's interrupt through the PLIC counts up as the shell
 * prints), then poweroff ends virtus with exit code 0. --stats shows the exits into the
 * monitor each way. Tests wait for console markers, never for fixed times.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../../src/host/node/guest/index.ts';
import { Guest } from '../support/guest.ts';
import { DEFAULT_CMDLINE } from '../../src/vmm/spec.ts';

let guest: DefaultGuest;
before(async () => {
  guest = await ensureDefaultGuest({ progress: stderrProgress() });
});
after(() => Guest.killAll());

/** The UART's line of /proc/interrupts: PLIC source 10 (as on QEMU's virt), named ttyS0. */
function uartInterrupts(text: string): number {
  const line = text.split('\n').find((l) => /\bttyS0\s*$/.test(l));
  assert.ok(line, `/proc/interrupts has a ttyS0 line:\n${text}`);
  assert.match(line, /\s10\s+(Level|Edge)\s+ttyS0\s*$/, 'the UART is PLIC source 10');
  return Number(/^\s*\d+:\s+(\d+)/.exec(line)![1]);
}

for (const firmware of ['builtin', 'opensbi'] as const) {
  test(`linux boots to a shell with ${firmware === 'builtin' ? 'the built-in SBI' : 'OpenSBI (fw_dynamic)'}`, { timeout: 20 * 60_000 }, async () => {
    const m = Guest.virtus(['--stats', ...(firmware === 'opensbi' ? ['--bios', 'opensbi'] : [])]);
    const boot = await m.shell();
    const all = m.output;
    if (firmware === 'opensbi') {
      assert.match(all, /^OpenSBI v\d+\.\d+/m, 'OpenSBI prints its banner');
      assert.match(all, /^Platform Name\s*: riscv-virtio,qemu$/m, 'OpenSBI reads our device tree');
      assert.match(all, /SBI implementation ID=0x1 /, 'the kernel talks to OpenSBI (implementation ID 1)');
      assert.match(all, /SBI specification v\d+\.\d+ detected/);
    } else {
      assert.ok(!all.includes('OpenSBI'), 'no firmware runs before the kernel');
      assert.match(all, /SBI implementation ID=0x76727473 /, "the kernel talks to virtus's SBI");
      assert.match(all, /SBI specification v2\.0 detected/);
    }
    assert.match(all, /Machine model: riscv-virtio,qemu/);
    assert.match(boot, /ttyS0 at MMIO 0x10000000 .* is a 16550A/);

    assert.match(await m.run('uname -a'), new RegExp(`^Linux virtus ${guest.release.replace(/[+.]/g, '\\$&')} .* riscv64 GNU/Linux\\n$`));
    const cpuinfo = await m.run('cat /proc/cpuinfo');
    assert.match(cpuinfo, /^processor\s*: 0$/m);
    assert.match(cpuinfo, /^isa\s*: rv64imafdc_zicntr_zicsr_zifencei(_\w+)*$/m, 'the ISA string, canonical order');
    assert.match(cpuinfo, /^mmu\s*: sv(39|48)$/m);
    assert.equal(cpuinfo.match(/^processor/gm)?.length, 1, 'one hart');
    // The default command line turns off the timers an idle guest does not need (vmm/spec.ts).
    assert.equal(await m.run('cat /proc/cmdline'), `${DEFAULT_CMDLINE}\n`);
    assert.equal(await m.run('cat /proc/sys/kernel/watchdog /proc/sys/vm/compaction_proactiveness'), '0\n0\n', 'no lockup watchdog, no proactive compaction');

    const before = uartInterrupts(await m.run('cat /proc/interrupts'));
    assert.ok(before > 0, 'the UART has interrupted');
    await m.run('seq 1 200');
    const after = uartInterrupts(await m.run('cat /proc/interrupts'));
    assert.ok(after > before, `UART interrupts counted up while the shell printed (${before} -> ${after})`);

    assert.equal(await m.powerOff(), 0, 'poweroff ends virtus with exit code 0');
    await m.waitForStderr(/^traps: \d+$/m);
    if (firmware === 'builtin') {
      assert.match(m.stderr, /^SBI calls \(hypercalls\): [1-9]\d*$/m);
      assert.match(m.stderr, /^ {2}base\.probe_extension +[1-9]\d*$/m);
    } else {
      // OpenSBI, in the guest's M-mode, answers the kernel's ecalls; virtus only sees the traps.
      assert.match(m.stderr, /^ {2}ecall from S-mode +[1-9]\d*$/m);
    }
    assert.match(m.stderr, /^ {2}uart0 +[1-9]\d*$/m, 'UART accesses are counted');
    assert.match(m.stderr, /^ {2}plic +[1-9]\d*$/m);
    assert.match(m.stderr, /^ {2}syscon +[1-9]\d*$/m, 'poweroff writes the syscon register, as on QEMU');
  });
}
