/**
 * `virtus exec` against qemu-riscv64 (and the host, natively, where the program builds for it),
 * each a separate process timed from spawn to exit, median of three:
 *
 * - a CPU-bound program (test/guest/exec/cpu.c: sieve, hash loop, floating point), statically
 *   linked, on the translator (virtus) and the interpreter (alt);
 * - start-up: a static hello world (test/guest/exec/hello.c), the whole process;
 * - a system-call-heavy loop: stat() of one file 10^5 times (test/guest/exec/statloop.c);
 * - busybox `gzip -9` of 16 MiB of text (Debian's riscv64 busybox-static).
 *
 * Run with `npm run bench -- exec`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot, ensureDefaultGuest, stderrProgress } from '../src/host/node/guest/index.ts';
import { BUILD, buildLinuxProgram, requireTool, VIRTUS } from '../test/support/toolchain.ts';
import { medianMs, type Benchmark, type Row } from './harness.ts';

function timed(cmd: string, args: string[], cwd: string): Promise<number> {
  return medianMs(3, () => {
    const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  });
}

const virtus = (args: string[], cwd: string, engine = 'jit') => timed(process.execPath, [VIRTUS, 'exec', '--engine', engine, ...args], cwd);
const qemu = (args: string[], cwd: string) => timed('qemu-riscv64', args, cwd);

export const bench: Benchmark = {
  name: 'exec',
  altLabel: 'virtus exec --engine interp',
  async run(): Promise<Row[]> {
    requireTool('qemu-riscv64');
    const dir = mkdtempSync(join(tmpdir(), 'virtus-bench-exec-'));
    try {
      const rows: Row[] = [];
      const cpu = buildLinuxProgram('cpu', ['cpu.c']);
      const n = '100000000';
      const native = join(BUILD, 'guest', 'cpu-native');
      spawnSync('gcc', ['-O2', join(BUILD, '..', 'test/guest/exec/cpu.c'), '-o', native]);
      rows.push({
        name: `CPU-bound (cpu.c ${n})`, unit: 's', better: 'lower',
        virtus: (await virtus([cpu, n], dir)) / 1000,
        virtusAlt: (await virtus([cpu, '20000000'], dir, 'interp')) / 1000 * 5,
        qemu: (await qemu([cpu, n], dir)) / 1000,
        native: (await timed(native, [n], dir)) / 1000,
        note: 'alt: a fifth of the work, times 5',
      });
      const hello = buildLinuxProgram('hello', ['hello.c']);
      rows.push({
        name: 'start-up: static hello world', unit: 'ms', better: 'lower',
        virtus: await virtus([hello], dir), virtusAlt: await virtus([hello], dir, 'interp'), qemu: await qemu([hello], dir),
        note: 'whole process, Node start-up included',
      });
      const stat = buildLinuxProgram('statloop', ['statloop.c']);
      writeFileSync(join(dir, 'file'), 'x');
      rows.push({
        name: 'stat() x 10^5', unit: 's', better: 'lower',
        virtus: (await virtus([stat, 'file', '100000'], dir)) / 1000, qemu: (await qemu([stat, 'file', '100000'], dir)) / 1000,
      });
      const guest = await ensureDefaultGuest({ progress: stderrProgress() });
      const bb = join(dir, 'bb');
      spawnSync('dpkg-deb', ['-x', join(cacheRoot(), 'debs', guest.manifest.packages.busybox.file), bb]);
      const busybox = join(bb, 'usr/bin/busybox');
      const lines: string[] = [];
      for (let i = 0, size = 0; size < 16 << 20; i++) {
        const l = `${i} the quick brown fox ${(i * 2654435761) % 1000003} jumps over the lazy dog\n`;
        lines.push(l);
        size += l.length;
      }
      writeFileSync(join(dir, 'text'), lines.join(''));
      rows.push({
        name: 'busybox gzip -9 of 16 MiB', unit: 's', better: 'lower',
        virtus: (await virtus([busybox, 'gzip', '-9', '-c', '-k', 'text'], dir)) / 1000,
        qemu: (await qemu([busybox, 'gzip', '-9', '-c', '-k', 'text'], dir)) / 1000,
        native: (await timed('gzip', ['-9', '-c', '-k', 'text'], dir)) / 1000,
        note: 'native: the host\'s GNU gzip',
      });
      return rows;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
