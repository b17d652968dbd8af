/**
 * The default Linux guest on virtus's translator, virtus's interpreter and QEMU (TCG), one
 * after the other in one run, each with the same kernel, initramfs and console=ttyS0:
 *
 * - boot: host wall-clock time from starting the process to the first shell prompt (QEMU
 *   boots through OpenSBI, fw_dynamic; virtus with its built-in SBI, its default); for the
 *   translator and QEMU the median of three boots, taken in turns (one boot's time on these
 *   shared machines varies by 15%), for the interpreter one boot;
 * - a CPU-bound program inside Linux (test/guest/linux/cpu.c, built for rv64gc with Debian's
 *   riscv64-linux-gnu-gcc, static): the host's wall-clock time of the command in the guest's
 *   shell, best of two runs; the same source built for the host gives the native time.
 *
 * The program reaches the guest as a read-only virtio-blk disk holding the ELF (`cat
 * /dev/vda > /tmp/cpu`): nothing in the guest image changes. Run with `npm run bench -- linux`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../src/host/node/guest/index.ts';
import { Guest } from '../test/support/guest.ts';
import { buildGuest, requireTool, VIRTUS } from '../test/support/toolchain.ts';
import type { Benchmark, Row } from './harness.ts';

/** Repetitions of the program's loop: about a second natively under QEMU's user mode. */
const REPS = 300;
/** Each step may take many minutes on the interpreter. */
const STEP_MS = 60 * 60_000;

interface Result {
  boot: number;
  cpu: number;
  checksum: string;
}

/** Boots that the translator and QEMU each make (their median is reported). */
const BOOTS = 3;

/**
 * Starts a guest, waits for its first shell prompt, runs `session` with the boot's time, and
 * powers the guest off.
 */
async function boot<T>(start: () => Guest, session: (m: Guest, seconds: number) => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const m = start();
  try {
    await m.shell({ timeoutMs: STEP_MS });
    const r = await session(m, (performance.now() - t0) / 1000);
    await m.powerOff(STEP_MS);
    return r;
  } finally {
    m.kill();
  }
}

/** The time of one boot to the first shell prompt. */
function bootTime(start: () => Guest): Promise<number> {
  return boot(start, async (_m, seconds) => seconds);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** One boot, then the program's time inside the guest (best of two runs). */
function measure(start: () => Guest): Promise<Result> {
  return boot(start, async (m, seconds) => {
    await m.run('echo 1 > /proc/sys/kernel/printk; cat /dev/vda > /tmp/cpu && chmod +x /tmp/cpu', STEP_MS);
    let cpu = Infinity;
    let checksum = '';
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      const out = await m.run(`/tmp/cpu ${REPS}`, STEP_MS);
      cpu = Math.min(cpu, (performance.now() - t) / 1000);
      const c = /cpu checksum=(0x[0-9a-f]+)/.exec(out);
      if (!c) throw new Error(`the program printed no checksum:\n${out}`);
      checksum = c[1]!;
    }
    return { boot: seconds, cpu, checksum };
  });
}

function virtus(g: DefaultGuest, disk: string, engine: 'jit' | 'interp'): () => Guest {
  return () => Guest.virtus(['--engine', engine, '--kernel', g.kernel, '--initrd', g.initrd, '--append', 'console=ttyS0', '--drive', `file=${disk},format=raw,readonly=on`]);
}

function qemu(g: DefaultGuest, disk: string): () => Guest {
  return () => Guest.command('qemu-system-riscv64', [
    '-M', 'virt', '-m', '512M', '-smp', '1', '-nographic', '-bios', g.opensbi, '-kernel', g.kernel, '-initrd', g.initrd,
    '-append', 'console=ttyS0', '-drive', `file=${disk},if=none,format=raw,id=d,readonly=on`, '-device', 'virtio-blk-device,drive=d',
  ]);
}

export const bench: Benchmark = {
  name: 'linux',
  altLabel: 'virtus --engine interp',
  async run(): Promise<Row[]> {
    requireTool('qemu-system-riscv64');
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    const elf = buildGuest('linux-cpu', ['linux/cpu.c'], { cc: 'riscv64-linux-gnu-gcc', bare: false, cflags: ['-static'] });
    const dir = mkdtempSync(join(tmpdir(), 'virtus-linux-bench-'));
    try {
      const bin = readFileSync(elf);
      const disk = join(dir, 'cpu.img');
      writeFileSync(disk, Buffer.concat([bin, Buffer.alloc((512 - (bin.length % 512)) % 512)]));
      const native = join(dir, 'cpu-native');
      const cc = spawnSync('cc', ['-O2', '-o', native, join(import.meta.dirname, '../test/guest/linux/cpu.c')], { encoding: 'utf8' });
      if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`);
      let nativeSeconds = Infinity;
      let nativeSum = '';
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        const r = spawnSync(native, [String(REPS)], { encoding: 'utf8' });
        nativeSeconds = Math.min(nativeSeconds, (performance.now() - t) / 1000);
        nativeSum = /checksum=(0x[0-9a-f]+)/.exec(r.stdout)?.[1] ?? '';
      }
      // The first start after a source change rebuilds the command's bundle: not a boot's time.
      spawnSync(process.execPath, [VIRTUS, '--version'], { stdio: 'ignore' });
      process.stderr.write('bench: linux on QEMU...\n');
      const q = await measure(qemu(g, disk));
      process.stderr.write('bench: linux on virtus (translator)...\n');
      const j = await measure(virtus(g, disk, 'jit'));
      const qemuBoots = [q.boot];
      const jitBoots = [j.boot];
      for (let k = 1; k < BOOTS; k++) {
        process.stderr.write(`bench: linux boot ${k + 1} of ${BOOTS} on QEMU and the translator...\n`);
        qemuBoots.push(await bootTime(qemu(g, disk)));
        jitBoots.push(await bootTime(virtus(g, disk, 'jit')));
      }
      const list = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(', ');
      process.stderr.write(`bench: boots (s): QEMU ${list(qemuBoots)}; translator ${list(jitBoots)}\n`);
      q.boot = median(qemuBoots);
      j.boot = median(jitBoots);
      process.stderr.write('bench: linux on virtus (interpreter)...\n');
      const i = await measure(virtus(g, disk, 'interp'));
      for (const [who, r] of [['virtus-jit', j], ['virtus-interp', i], ['native', { checksum: nativeSum }]] as const) {
        if (r.checksum !== q.checksum) throw new Error(`${who} computed ${r.checksum}, QEMU ${q.checksum}`);
      }
      return [
        { name: 'boot to the first shell prompt', unit: 's', better: 'lower', virtus: j.boot, virtusAlt: i.boot, qemu: q.boot, note: `initramfs root; median of ${BOOTS} (interp: 1)` },
        { name: `cpu.c inside Linux (${REPS} reps)`, unit: 's', better: 'lower', virtus: j.cpu, virtusAlt: i.cpu, qemu: q.cpu, native: nativeSeconds, note: `virtus/native ${(j.cpu / nativeSeconds).toFixed(0)}x, qemu/native ${(q.cpu / nativeSeconds).toFixed(0)}x` },
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
