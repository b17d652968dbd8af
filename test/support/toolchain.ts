/**
 * Test support: building guest programs with Debian's RISC-V cross toolchain at test time
 * (built objects go to build/, never into git), and running virtus and QEMU on them.
 * A missing tool fails the test with the package to install; it never skips silently.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BUILD = join(ROOT, 'build');
export const GUEST_SRC = join(ROOT, 'test/guest');
export const VIRTUS = join(ROOT, 'bin/virtus.mjs');

const PACKAGES: Record<string, string> = {
  'riscv64-unknown-elf-gcc': 'gcc-riscv64-unknown-elf',
  'riscv64-unknown-elf-objdump': 'binutils-riscv64-unknown-elf',
  'riscv64-linux-gnu-gcc': 'gcc-riscv64-linux-gnu',
  'qemu-system-riscv64': 'qemu-system-misc',
  'qemu-riscv64': 'qemu-user',
  dtc: 'device-tree-compiler',
  'qemu-img': 'qemu-utils',
  gcc: 'gcc',
};

/** Throws a clear error when `tool` is not on PATH. */
export function requireTool(tool: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`${tool} is not installed (Debian package ${PACKAGES[tool] ?? tool}); .ci/run installs it`);
  }
}

function newer(out: string, inputs: string[]): boolean {
  if (!existsSync(out)) return false;
  const t = statSync(out).mtimeMs;
  return inputs.every((i) => statSync(i).mtimeMs <= t);
}

export interface BuildOptions {
  /** -march (default rv64gc). */
  march?: string;
  /** Extra compiler flags. */
  cflags?: string[];
  /** Linker script (default test/guest/common/link.ld). */
  ldscript?: string;
  /** Compiler (default riscv64-unknown-elf-gcc). */
  cc?: string;
  /** Link with -nostdlib -nostartfiles (default true). */
  bare?: boolean;
}

/**
 * Builds a guest program from `sources` (paths relative to test/guest) into build/guest/<name>.elf,
 * rebuilding only when a source (or the shared headers) changed. Returns the ELF's path.
 */
export function buildGuest(name: string, sources: string[], o: BuildOptions = {}): string {
  const cc = o.cc ?? 'riscv64-unknown-elf-gcc';
  requireTool(cc);
  const out = join(BUILD, 'guest', `${name}.elf`);
  mkdirSync(dirname(out), { recursive: true });
  const srcs = sources.map((s) => (s.startsWith('/') ? s : join(GUEST_SRC, s)));
  const ld = o.ldscript ?? join(GUEST_SRC, 'common/link.ld');
  const common = join(GUEST_SRC, 'common');
  const deps = [...srcs, ld, ...['test.h', 'harts.h', 'crt.S', 'uart-hex.S'].map((f) => join(common, f)).filter(existsSync)];
  if (newer(out, deps)) return out;
  const bare = o.bare ?? true;
  const tmp = `${out}.${process.pid}.tmp`;
  const args = [
    `-march=${o.march ?? 'rv64gc'}`, '-mabi=lp64d', '-mcmodel=medany', '-O2', '-g',
    '-I', common,
    ...(bare ? ['-nostdlib', '-nostartfiles', '-ffreestanding', '-static', `-T${ld}`] : []),
    ...(o.cflags ?? []),
    ...srcs, '-o', tmp,
  ];
  if (bare) args.push('-lgcc');
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building ${basename(out)} failed:\n${r.stderr}`);
  // Test files run in parallel and may build the same program: each writes its own file and
  // renames it into place, so none runs another's half-written ELF.
  renameSync(tmp, out);
  return out;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the virtus CLI with `args`. */
export function runVirtus(args: string[], o: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(process.execPath, [VIRTUS, ...args], { encoding: 'utf8', timeout: 300_000, ...o });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/**
 * Runs a bare-metal ELF on QEMU's spike machine (HTIF), as the reference. The console
 * goes to a file: QEMU's stdio backend drops output once its stdin pipe reaches end of file.
 */
export function runQemuSpike(elf: string, extra: string[] = []): RunResult {
  requireTool('qemu-system-riscv64');
  const dir = mkdtempSync(join(tmpdir(), 'virtus-qemu-'));
  const out = join(dir, 'console');
  try {
    const r = spawnSync(
      'qemu-system-riscv64',
      ['-M', 'spike', '-bios', 'none', '-kernel', elf, '-display', 'none', '-monitor', 'none', '-serial', `file:${out}`, ...extra],
      { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const stdout = existsSync(out) ? readFileSync(out, 'utf8') : '';
    return { status: r.status, stdout, stderr: String(r.stderr ?? '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Builds a riscv64 Linux user program (Debian's riscv64-linux-gnu-gcc and glibc) from sources
 * in test/guest/exec/ into build/guest/<name>.elf: statically linked unless `dynamic`.
 */
export function buildLinuxProgram(name: string, sources: string[], o: { dynamic?: boolean; cflags?: string[] } = {}): string {
  return buildGuest(name, sources.map((s) => `exec/${s}`), {
    cc: 'riscv64-linux-gnu-gcc', bare: false, cflags: [...(o.dynamic ? [] : ['-static']), ...(o.cflags ?? [])],
  });
}
