/**
 * The disk path: inside the default guest (initramfs root), busybox dd writes 64 MiB to a
 * virtio-blk disk with conv=fsync, then reads it back after dropping the page cache; MB/s
 * over the host's wall-clock time of each dd command (the guest's clock is not trusted for
 * this: it need not follow the host's). Three machines with the same kernel and initramfs:
 *
 * - virtus on a temporary qcow2 overlay over an empty qcow2 base (`--drive
 *   file=base.qcow2,overlay=auto`: every write allocates clusters in the overlay);
 * - virtus on a raw image (alt);
 * - QEMU on the same kind of qcow2 base with its own temporary overlay (snapshot=on):
 *
 *   qemu-system-riscv64 -M virt -bios fw_dynamic.bin -kernel Image -initrd initrd.cpio
 *     -drive file=base.qcow2,if=none,format=qcow2,snapshot=on,id=d -device virtio-blk-device,drive=d
 *
 * Run with `npm run bench -- disk`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../src/host/node/guest/index.ts';
import { Guest } from '../test/support/guest.ts';
import { requireTool } from '../test/support/toolchain.ts';
import type { Benchmark, Row } from './harness.ts';

const MIB = 64;
/** Each dd step may take minutes on the interpreter. */
const STEP_MS = 30 * 60_000;

/** Runs a dd command and returns MB/s over the host's wall-clock time of the command. */
async function timed(m: Guest, cmd: string): Promise<number> {
  const t = performance.now();
  const out = await m.run(`${cmd} 2>&1`, STEP_MS);
  const seconds = (performance.now() - t) / 1000;
  if (!new RegExp(`^${MIB}\\+0 records out$`, 'm').test(out)) throw new Error(`dd failed:\n${out}`);
  return (MIB * 1048576) / seconds / 1e6;
}

async function measure(m: Guest): Promise<{ write: number; read: number }> {
  await m.shell({ timeoutMs: STEP_MS });
  await m.run('echo 1 > /proc/sys/kernel/printk', STEP_MS);
  const write = await timed(m, `dd if=/dev/zero of=/dev/vda bs=1M count=${MIB} conv=fsync`);
  await m.run('sync; echo 3 > /proc/sys/vm/drop_caches', STEP_MS);
  const read = await timed(m, `dd if=/dev/vda of=/dev/null bs=1M count=${MIB}`);
  await m.powerOff(STEP_MS);
  return { write, read };
}

/** A fresh sparse raw image of twice the size written. */
function image(dir: string, name: string): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, (2 * MIB) << 20);
  return p;
}

/** A fresh empty qcow2 image of twice the size written (made by qemu-img, the reference). */
function qcow2(dir: string, name: string): string {
  requireTool('qemu-img');
  const p = join(dir, name);
  const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', p, `${2 * MIB}M`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img create: ${r.stderr}`);
  return p;
}

async function onVirtus(g: DefaultGuest, drive: string): Promise<{ write: number; read: number }> {
  const m = Guest.virtus(['--kernel', g.kernel, '--initrd', g.initrd, '--append', 'console=ttyS0', '--drive', drive]);
  try {
    return await measure(m);
  } finally {
    m.kill();
  }
}

async function onQemu(g: DefaultGuest, disk: string): Promise<{ write: number; read: number }> {
  requireTool('qemu-system-riscv64');
  const m = Guest.command('qemu-system-riscv64', [
    '-M', 'virt', '-m', '512M', '-smp', '1', '-nographic', '-bios', g.opensbi, '-kernel', g.kernel, '-initrd', g.initrd,
    '-append', 'console=ttyS0', '-drive', `file=${disk},if=none,format=qcow2,snapshot=on,id=d`, '-device', 'virtio-blk-device,drive=d',
  ]);
  try {
    return await measure(m);
  } finally {
    m.kill();
  }
}

export const bench: Benchmark = {
  name: 'disk',
  altLabel: 'virtus on a raw image',
  async run(): Promise<Row[]> {
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    const dir = mkdtempSync(join(tmpdir(), 'virtus-disk-bench-'));
    try {
      const q = await onQemu(g, qcow2(dir, 'qemu-base.qcow2'));
      const v = await onVirtus(g, `file=${qcow2(dir, 'virtus-base.qcow2')},overlay=auto`);
      const r = await onVirtus(g, `file=${image(dir, 'virtus.img')},format=raw`);
      const note = 'busybox dd, 1 MiB blocks, virtio-blk, initramfs root';
      return [
        { name: `sequential write ${MIB} MiB (conv=fsync), qcow2 overlay`, unit: 'MB/s', better: 'higher', virtus: v.write, virtusAlt: r.write, qemu: q.write, note },
        { name: `sequential read ${MIB} MiB (cache dropped), qcow2 overlay`, unit: 'MB/s', better: 'higher', virtus: v.read, virtusAlt: r.read, qemu: q.read, note },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
