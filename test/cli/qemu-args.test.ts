/**
 * QEMU's command line on virtus: the same `qemu-system-riscv64 -M virt ...` arguments run
 * through `virtus run` and through Debian's QEMU 7.2, compared where the difference would
 * show: the console, the exit code of a program that ends through the test finisher, the
 * disk after a run that writes it (and after one with -snapshot, untouched), the device
 * tree's memory and harts. QEMU options virtus lacks are one line naming the option, exit 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildGuest, requireTool, runVirtus, type RunResult } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-qemu-args-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CMDLINE = buildGuest('vmm-cmdline', ['common/crt.S', 'vmm/cmdline.c']);
const REBOOT = buildGuest('cli-reboot', ['cli/reboot.S']);

/** Runs QEMU with `args`; stdin is empty (the programs read nothing). */
function runQemu(args: string[]): RunResult {
  requireTool('qemu-system-riscv64');
  const r = spawnSync('qemu-system-riscv64', args, { encoding: 'utf8', timeout: 120_000, input: '' });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** A 1 MiB raw disk holding a label in sector 0; one copy for each machine. */
function disks(name: string): { qemu: string; virtus: string; pristine: Uint8Array } {
  const pristine = new Uint8Array(1 << 20);
  pristine.set(new TextEncoder().encode('VIRTUS-CMDLINE-0'));
  const paths = { qemu: join(dir, `${name}-qemu.img`), virtus: join(dir, `${name}-virtus.img`) };
  for (const p of Object.values(paths)) writeFileSync(p, pristine);
  return { ...paths, pristine };
}

/** Runs `line(disk)` on both; checks they printed and exited alike; returns virtus's result. */
function both(line: (disk: 'qemu' | 'virtus') => string[]): RunResult {
  const q = runQemu(line('qemu'));
  const v = runVirtus(['run', ...line('virtus')], { input: '' });
  assert.equal(v.stdout, q.stdout, `the console: virtus ${JSON.stringify(v.stdout)}, QEMU ${JSON.stringify(q.stdout)}\n${v.stderr}`);
  assert.equal(v.status, q.status, `the exit code (QEMU's stderr: ${q.stderr}; virtus's: ${v.stderr})`);
  return v;
}

const BASE = ['-M', 'virt', '-m', '256M', '-nographic', '-bios', 'none'];
const PRINTED = 'hello from the virt board\ndisk in slot 7\nsector 0: VIRTUS-CMDLINE-0\nsector 1 written and read back\n';
const WRITTEN = Uint8Array.from({ length: 512 }, (_, i) => (i * 7 + 3) & 0xff);

describe('QEMU command lines run on virtus as on qemu-system-riscv64', () => {
  it('-M virt -m 256M -nographic -bios none -kernel prog.elf -smp 1: the program and its exit code (the test finisher)', () => {
    const r = both(() => [...BASE, '-kernel', CMDLINE, '-smp', '1']);
    assert.equal(r.stdout, 'hello from the virt board\nno disk\n');
    assert.equal(r.status, 42);
  });

  it('-drive if=none,id=d0 -device virtio-blk-device,drive=d0: the same disk in the same slot, written the same', () => {
    const d = disks('rw');
    const r = both((m) => [...BASE, '-kernel', CMDLINE, '-drive', `file=${d[m]},format=raw,if=none,id=d0`, '-device', 'virtio-blk-device,drive=d0']);
    assert.equal(r.stdout, PRINTED);
    assert.equal(r.status, 42);
    const [q, v] = [readFileSync(d.qemu), readFileSync(d.virtus)];
    assert.deepEqual(new Uint8Array(v.subarray(512, 1024)), WRITTEN);
    assert.ok(q.equals(v), 'both disks hold the same bytes');
  });

  it('-snapshot: the guest writes, the disk stays as it was', () => {
    const d = disks('snap');
    const r = both((m) => [...BASE, '-kernel', CMDLINE, '-snapshot', '-drive', `file=${d[m]},format=raw,if=none,id=d0`, '-device', 'virtio-blk-device,drive=d0']);
    assert.equal(r.stdout, PRINTED, 'the guest read back what it wrote');
    for (const m of ['qemu', 'virtus'] as const) assert.deepEqual(new Uint8Array(readFileSync(d[m])), d.pristine, `${m}'s disk is untouched`);
  });

  it('-serial mon:stdio and -no-reboot: the guest reboots once without it, and ends at its reboot with it', () => {
    const line = ['-machine', 'virt', '-m', '256M', '-display', 'none', '-serial', 'mon:stdio', '-bios', 'none', '-kernel', REBOOT];
    assert.equal(both(() => line).stdout, 'boot 1\nboot 2\n');
    const r = both(() => [...line, '-no-reboot']);
    assert.equal(r.stdout, 'boot 1\n');
    assert.equal(r.status, 0);
  });

  it('-M virt,dumpdtb=FILE: the device tree, with the memory -m gives and the harts -smp gives, each with its interrupt contexts', () => {
    const dts = (m: string): string => {
      const file = join(dir, `${m}.dtb`);
      const line = ['-M', `virt,dumpdtb=${file}`, '-m', '256M', '-smp', '4', '-nographic', '-bios', 'none', '-kernel', CMDLINE];
      const r = m === 'qemu' ? runQemu(line) : runVirtus(['run', ...line]);
      assert.equal(r.status, 0, r.stderr);
      requireTool('dtc');
      const t = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', file], { encoding: 'utf8' });
      assert.equal(t.status, 0, t.stderr);
      return t.stdout;
    };
    const [q, v] = [dts('qemu'), dts('virtus')];
    const memory = (s: string) => /memory@80000000 \{[^}]*reg = <([^>]*)>/.exec(s)?.[1];
    const harts = (s: string) => s.match(/^\t\tcpu@\d+ \{/gm)?.length;
    assert.equal(memory(v), memory(q));
    assert.equal(memory(v), '0x00 0x80000000 0x00 0x10000000');
    assert.equal(harts(v), harts(q));
    assert.equal(harts(v), 4);
    // Per hart, the interrupts each controller takes from it (phandles differ): the PLIC's M
    // (11) and S (9) external contexts, the CLINT's software (3) and timer (7) interrupts.
    const irqs = (s: string, node: string) => {
      const cells = new RegExp(`${node}@[0-9a-f]+ \\{[^}]*interrupts-extended = <([^>]*)>`).exec(s)?.[1]?.split(' ');
      return cells?.filter((_, i) => i % 2 === 1).map(Number);
    };
    for (const node of ['plic', 'clint']) {
      assert.deepEqual(irqs(v, node), irqs(q, node), node);
      assert.equal(irqs(v, node)?.length, 8, node);
    }
  });

  it('-accel tcg, -M virt,accel=tcg, -monitor none and -cpu properties the hart has are what virtus does', () => {
    for (const extra of [['-accel', 'tcg,thread=single'], ['-M', 'virt,accel=tcg'], ['-monitor', 'none'], ['-cpu', 'rv64,c=true,sstc=on,v=false']]) {
      assert.equal(both(() => [...BASE, '-kernel', CMDLINE, ...extra]).status, 42);
    }
  });
});

describe('QEMU options virtus lacks: one line naming the option, exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [['-enable-kvm'], /^virtus: run: virtus does not have QEMU's -enable-kvm: /],
    [['-accel', 'kvm'], /^virtus: run: virtus does not have QEMU's -accel kvm: /],
    [['-vga', 'std'], /^virtus: run: virtus does not have QEMU's -vga: the virt board has no display/],
    [['-device', 'virtio-blk-pci,drive=d0'], /^virtus: run: -device virtio-blk-pci: the virt board has no PCI here/],
    [['-cpu', 'sifive-u54'], /^virtus: run: -cpu sifive-u54: virtus's hart is rv64 \(RV64GC\)$/],
    [['-cpu', 'rv64,h=true'], /^virtus: run: -cpu rv64,h=true: virtus's hart has no h$/],
    [['-cpu', 'rv64,c=off'], /^virtus: run: -cpu rv64,c=off: virtus's hart always has c$/],
    [['-no-shutdown'], /^virtus: run: virtus does not have QEMU's -no-shutdown: /],
    [['-monitor', 'stdio'], /^virtus: run: virtus does not have QEMU's -monitor: /],
    [['-M', 'spike'], /^virtus: run: -M spike: virtus has QEMU's virt board only$/],
    [['-machine', 'virt,aia=aplic-imsic'], /^virtus: run: -M virt,aia=aplic-imsic: virtus has the PLIC, not the AIA/],
    [['-M', 'virt,dumpdtb'], /^virtus: run: -M virt,dumpdtb: dumpdtb= needs a file name$/],
    [['-M', 'virt,acpi=on'], /^virtus: run: -M virt,acpi=on: virtus's virt board has no option 'acpi'$/],
    [['-smp', '9'], /^virtus: run: --smp 9: expected a number of harts from 1 to 8$/],
  ];
  for (const [extra, pattern] of cases) {
    it(extra.join(' '), () => {
      const r = runVirtus(['run', ...BASE, '-kernel', CMDLINE, ...extra], { input: '' });
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, pattern);
    });
  }
});
