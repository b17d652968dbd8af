/**
 * Where the translator ends a run that its budget cuts short (JitOptions.exact). A deterministic
 * machine's runs use their whole budget: the interpreter finishes the block the budget cuts,
 * and the next run starts inside a translated block. Any other machine's runs end at the
 * boundary of that block, so the next one starts where translated code does: slices as short
 * as a hart thread's cost no interpreted instructions and no extra translations. The program
 * (sweep.S: hot loops, a wait, code rewritten) runs in slices of a prime number of
 * instructions, and prints what QEMU prints either way.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Runner } from '../../src/machine/runner.ts';
import { VirtBoard } from '../../src/machine/virt.ts';
import { NodeRunnerHost } from '../../src/host/node/runner-host.ts';
import type { JitStats } from '../../src/jit/engine.ts';
import { buildGuest, requireTool } from '../support/toolchain.ts';

const elf = (): string => buildGuest('jit-sweep', [join(import.meta.dirname, 'sweep.S')]);

/** Runs the program in slices of `slice` instructions; returns its output and hart 0's translator counters. */
async function run(path: string, slice: number, exact?: boolean): Promise<{ out: string; stats: JitStats }> {
  let out = '';
  const board = new VirtBoard({
    ramSize: 64 << 20, engine: 'jit', jit: { threshold: 5000, ...(exact === undefined ? {} : { exact }) },
    console: (b) => (out += Buffer.from(b).toString('latin1')),
  });
  board.boot({ kernel: new Uint8Array(readFileSync(path)), kernelName: path, firmware: 'none' });
  const exit = await new Runner(board.machine, new NodeRunnerHost()).run({ maxInsns: 100_000_000, sliceInsns: slice });
  assert.deepEqual({ reason: exit?.reason, code: exit?.code }, { reason: 'poweroff', code: 0 });
  return { out, stats: board.machine.jit!.stats };
}

describe('runs cut short by their budget', () => {
  it('end at a block boundary unless the machine is deterministic', async () => {
    const path = elf();
    requireTool('qemu-system-riscv64');
    const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-bios', 'none', '-kernel', path, '-nographic', '-monitor', 'none', '-serial', 'stdio'], {
      encoding: 'utf8', timeout: 60_000, input: '',
    });
    assert.equal(q.status, 0, q.stderr);
    assert.match(q.stdout, /^run 1 [0-9a-f]{16}\nrun 2 [0-9a-f]{16}\nrun 3 [0-9a-f]{16}\n$/);

    const slice = 1009;
    const whole = await run(path, 1_000_000);
    const early = await run(path, slice);
    const exact = await run(path, slice, true);
    for (const r of [whole, early, exact]) assert.equal(r.out, q.stdout);
    // Ending early interprets no more than one long slice does: only the cold code before each
    // translation (and after the rewrite).
    assert.ok(early.stats.interpretedInsns <= whole.stats.interpretedInsns * 1.1,
      `interpreted: ${early.stats.interpretedInsns} in slices of ${slice}, ${whole.stats.interpretedInsns} in one`);
    assert.equal(early.stats.extensions, whole.stats.extensions, 'no extensions for entry points the slices made');
    // The exact runs finish the cut block in the interpreter, and enter translations mid-block.
    assert.ok(exact.stats.interpretedInsns > 1.5 * whole.stats.interpretedInsns,
      `interpreted: ${exact.stats.interpretedInsns} in exact slices of ${slice}, ${whole.stats.interpretedInsns} in one`);
    assert.ok(exact.stats.extensions > whole.stats.extensions, `extensions: ${exact.stats.extensions} against ${whole.stats.extensions}`);
  });
});
