/**
 * The translator under `virtus exec`: a CPU-bound program (test/guest/exec/cpu.c, the one
 * `npm run bench -- exec` times) runs in this process over an in-memory host, and prints what
 * qemu-riscv64 prints; its hot loops run inside WebAssembly. The counters say where control
 * went: a jump-cache hit is a return from one region function to the trampoline and a call of
 * another, which a loop must not pay on every iteration.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ExecKernel } from '../../src/exec/kernel.ts';
import { MemExecHost } from '../../src/exec/mem-host.ts';
import type { JitEngine } from '../../src/jit/engine.ts';
import { runQemuUser } from '../support/exec.ts';
import { buildLinuxProgram, requireTool } from '../support/toolchain.ts';

describe('the translator under virtus exec', () => {
  it('keeps a loop found across a page\'s extensions in one module (cpu.c, against qemu-riscv64)', () => {
    requireTool('qemu-riscv64');
    const cpu = buildLinuxProgram('cpu', ['cpu.c']);
    const n = '2000000';
    const out: Uint8Array[] = [];
    const host = new MemExecHost({ read: () => null, write: (_fd, b) => out.push(b) });
    host.mkdirp('/bin');
    host.writeFile('/bin/cpu', new Uint8Array(readFileSync(cpu)), 0o755);
    const kernel = new ExecKernel(host, { memory: 64 << 20 });
    const p = kernel.start({ program: '/bin/cpu', argv: ['cpu', n], envp: [], cwd: '/' });
    const exit = kernel.run();
    const qemu = runQemuUser(cpu, [n]);
    assert.equal(Buffer.concat(out).toString('utf8'), qemu.stdout);
    assert.equal(exit.code, qemu.status);
    // The sieve's inner loop was entered in its middle where slices ended, so its blocks were
    // translated in two extensions of main's page; each iteration used to leave one for the
    // other (4.0 M jump-cache hits in 63 M instructions).
    const stats = (p.machine.engines[0] as JitEngine).stats;
    const insns = p.machine.instret();
    assert.ok(stats.extensions > 0, 'main\'s page was extended');
    assert.ok(stats.jumpCacheHits < insns / 10_000, `${stats.jumpCacheHits} jump-cache hits in ${insns} instructions`);
  });
});
