/**
 * Test support for `virtus exec`: runs a riscv64 Linux program under virtus and under Debian's
 * qemu-riscv64 (the reference) the same way, each in a fresh copy of the same working
 * directory, and returns what each printed and how each ended.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, VIRTUS } from './toolchain.ts';

/** How a process ended and what it printed. */
export interface ProcessRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecRunOptions {
  /** Prepares the (empty, temporary) working directory before the run. */
  setup?: (dir: string) => void;
  /** Extra environment. */
  env?: Record<string, string>;
  /** virtus exec flags before the program. */
  virtusFlags?: string[];
  /** qemu-riscv64 flags before the program. */
  qemuFlags?: string[];
  input?: string;
}

function run(cmd: string, args: string[], o: ExecRunOptions): ProcessRun {
  const dir = mkdtempSync(join(tmpdir(), 'virtus-exec-'));
  try {
    o.setup?.(dir);
    const r = spawnSync(cmd, args, {
      cwd: dir, encoding: 'utf8', timeout: 120_000, input: o.input ?? '',
      env: { ...process.env, ...o.env },
    });
    return { status: r.status, signal: r.signal, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `program args` under `virtus exec`. */
export function runVirtusExec(program: string, args: string[] = [], o: ExecRunOptions = {}): ProcessRun {
  return run(process.execPath, [VIRTUS, 'exec', ...(o.virtusFlags ?? []), program, ...args], o);
}

/** Runs `program args` under qemu-riscv64. */
export function runQemuUser(program: string, args: string[] = [], o: ExecRunOptions = {}): ProcessRun {
  requireTool('qemu-riscv64');
  // By its full path: a test may give the program a PATH without it.
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-riscv64'], { encoding: 'utf8' }).stdout.trim();
  return run(qemu, [...(o.qemuFlags ?? []), program, ...args], o);
}
