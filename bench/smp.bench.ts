/**
 * Several harts: the default Linux guest with 1 and 2 harts on virtus (its built-in SBI) and
 * with 2 on QEMU (OpenSBI; MTTCG, one host thread per hart), one after the other:
 *
 * - boot: host wall-clock time from starting the process to the first shell prompt;
 * - a parallel workload: 4 processes of the CPU-bound program (test/guest/linux/cpu.c, as
 *   in linux.bench.ts) started together, host wall-clock time until the last one ends.
 *
 * virtus runs harts 1..N-1 in threads of their own and hart 0 on the machine's thread
 * (docs/architecture.md, "Harts in threads"): the rows say how the speedup from 1 to 2 harts
 * and the boot compare with QEMU's threads.
 * Run with `npm run bench -- smp`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../src/host/node/guest/index.ts';
import { Guest } from '../test/support/guest.ts';
import { buildGuest, requireTool, VIRTUS } from '../test/support/toolchain.ts';
import { spawnSync } from 'node:child_process';
import type { Benchmark, Row } from './harness.ts';

/** Repetitions of the program's loop in each of the 4 processes. */
const REPS = 200;
const PROCESSES = 4;
const STEP_MS = 60 * 60_000;

interface Result {
  boot: number;
  parallel: number;
}

/** One boot, then the 4 processes at once. */
async function measure(start: () => Guest): Promise<Result> {
  const t0 = performance.now();
  const m = start();
  try {
    await m.shell({ timeoutMs: STEP_MS });
    const boot = (performance.now() - t0) / 1000;
    await m.run('echo 1 > /proc/sys/kernel/printk; cat /dev/vda > /tmp/cpu && chmod +x /tmp/cpu', STEP_MS);
    const t = performance.now();
    const out = await m.run(`for i in ${Array.from({ length: PROCESSES }, (_, i) => i + 1).join(' ')}; do /tmp/cpu ${REPS} & done; wait`, STEP_MS);
    const parallel = (performance.now() - t) / 1000;
    const sums = out.match(/cpu checksum=0x[0-9a-f]+/g) ?? [];
    if (sums.length !== PROCESSES || new Set(sums).size !== 1) throw new Error(`the processes printed:\n${out}`);
    await m.powerOff(STEP_MS);
    return { boot, parallel };
  } finally {
    m.kill();
  }
}

function virtus(g: DefaultGuest, disk: string, harts: number): () => Guest {
  return () => Guest.virtus(['--smp', String(harts), '--kernel', g.kernel, '--initrd', g.initrd, '--append', 'console=ttyS0', '--drive', `file=${disk},format=raw,readonly=on`]);
}

function qemu(g: DefaultGuest, disk: string, harts: number): () => Guest {
  return () => Guest.command('qemu-system-riscv64', [
    '-M', 'virt', '-m', '512M', '-smp', String(harts), '-nographic', '-bios', g.opensbi, '-kernel', g.kernel, '-initrd', g.initrd,
    '-append', 'console=ttyS0', '-drive', `file=${disk},if=none,format=raw,id=d,readonly=on`, '-device', 'virtio-blk-device,drive=d',
  ]);
}

export const bench: Benchmark = {
  name: 'smp',
  altLabel: 'virtus --smp 1',
  async run(): Promise<Row[]> {
    requireTool('qemu-system-riscv64');
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    const elf = buildGuest('linux-cpu', ['linux/cpu.c'], { cc: 'riscv64-linux-gnu-gcc', bare: false, cflags: ['-static'] });
    const dir = mkdtempSync(join(tmpdir(), 'virtus-smp-bench-'));
    try {
      const bin = readFileSync(elf);
      const disk = join(dir, 'cpu.img');
      writeFileSync(disk, Buffer.concat([bin, Buffer.alloc((512 - (bin.length % 512)) % 512)]));
      // The first start after a source change rebuilds the command's bundle: not a boot's time.
      spawnSync(process.execPath, [VIRTUS, '--version'], { stdio: 'ignore' });
      process.stderr.write('bench: smp on QEMU -smp 1 and 2...\n');
      const q1 = await measure(qemu(g, disk, 1));
      const q2 = await measure(qemu(g, disk, 2));
      process.stderr.write('bench: smp on virtus --smp 1 and 2...\n');
      const v1 = await measure(virtus(g, disk, 1));
      const v2 = await measure(virtus(g, disk, 2));
      return [
        { name: 'boot with 2 harts', unit: 's', better: 'lower', virtus: v2.boot, virtusAlt: v1.boot, qemu: q2.boot, note: `QEMU -smp 1 ${q1.boot.toFixed(2)} s` },
        {
          name: `${PROCESSES} x cpu.c (${REPS} reps) with 2 harts`, unit: 's', better: 'lower', virtus: v2.parallel, virtusAlt: v1.parallel, qemu: q2.parallel,
          note: `speedup 1 -> 2 harts: virtus ${(v1.parallel / v2.parallel).toFixed(2)}x, QEMU ${(q1.parallel / q2.parallel).toFixed(2)}x`,
        },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
