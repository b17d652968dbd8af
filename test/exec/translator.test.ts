/**
 * The translator under `virtus exec`: programs run in this process over an in-memory host and
 * print what qemu-riscv64 prints; their hot loops run inside WebAssembly. The counters say
 * where control went: a jump-cache hit is a return from one region function to the
 * trampoline and a call of another, which a loop must not pay on every iteration, and a slow
 * path is an instruction translated code handed to the interpreter.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ExecKernel } from '../../src/exec/kernel.ts';
import { MemExecHost } from '../../src/exec/mem-host.ts';
import type { JitEngine, JitStats } from '../../src/jit/engine.ts';
import { runQemuUser } from '../support/exec.ts';
import { buildLinuxProgram, requireTool } from '../support/toolchain.ts';

/** Runs `program` with `args` in this process and checks its output against qemu-riscv64's; returns its translator's counters. */
function runAgainstQemu(program: string, args: string[]): { stats: JitStats; insns: number } {
  requireTool('qemu-riscv64');
  const out: Uint8Array[] = [];
  const host = new MemExecHost({ read: () => null, write: (_fd, b) => out.push(b) });
  host.mkdirp('/bin');
  host.writeFile('/bin/prog', new Uint8Array(readFileSync(program)), 0o755);
  const kernel = new ExecKernel(host, { memory: 64 << 20 });
  const p = kernel.start({ program: '/bin/prog', argv: ['prog', ...args], envp: [], cwd: '/' });
  const exit = kernel.run();
  const qemu = runQemuUser(program, args);
  assert.equal(Buffer.concat(out).toString('utf8'), qemu.stdout);
  assert.equal(exit.code, qemu.status);
  return { stats: (p.machine.engines[0] as JitEngine).stats, insns: p.machine.instret() };
}

describe('the translator under virtus exec', () => {
  it('keeps a loop found across a page\'s extensions in one module (cpu.c, against qemu-riscv64)', () => {
    const { stats, insns } = runAgainstQemu(buildLinuxProgram('cpu', ['cpu.c']), ['2000000']);
    // The sieve's inner loop was entered in its middle where slices ended, so its blocks were
    // translated in two extensions of main's page; each iteration used to leave one for the
    // other (4.0 M jump-cache hits in 63 M instructions).
    assert.ok(stats.extensions > 0, 'main\'s page was extended');
    assert.ok(stats.jumpCacheHits < insns / 10_000, `${stats.jumpCacheHits} jump-cache hits in ${insns} instructions`);
  });

  it('stores floating-point registers inline (fpstore.c, against qemu-riscv64)', () => {
    const n = 200_000;
    const { stats } = runAgainstQemu(buildLinuxProgram('fpstore', ['fpstore.c']), [String(n)]);
    // FSD and FSW once took the slow path every time: their FS guard (mstatus.FS, not 0 or 1)
    // was and-ed with the TLB probe's 1, which made 0.
    assert.ok(stats.slowPaths < n / 100, `${stats.slowPaths} slow paths for ${2 * n} floating-point stores`);
  });
});
