/**
 * The translator's sweep: a machine that idles forgets the translations it did not run
 * (JitEngine.sweep, called by the runner), and code that runs again is translated again. The
 * program (sweep.S) runs hot code, waits half a second in WFI, runs it again, then rewrites it
 * and runs it once more; QEMU's virt board running the same program is the reference.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PAGE_CODE } from '../../src/cpu/hart.ts';
import { SWEEP_AGE } from '../../src/jit/engine.ts';
import { Runner } from '../../src/machine/runner.ts';
import { collectStats } from '../../src/machine/stats.ts';
import { VirtBoard } from '../../src/machine/virt.ts';
import { NodeRunnerHost } from '../../src/host/node/runner-host.ts';
import { buildGuest, requireTool } from '../support/toolchain.ts';

const elf = (): string => buildGuest('jit-sweep', [join(import.meta.dirname, 'sweep.S')]);
const smpElf = (): string => buildGuest('jit-sweep-smp', [join(import.meta.dirname, 'sweep-smp.S')]);

function qemuOutput(path: string, harts = 1): string {
  requireTool('qemu-system-riscv64');
  const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-smp', String(harts), '-bios', 'none', '-kernel', path, '-nographic', '-monitor', 'none', '-serial', 'stdio'], {
    encoding: 'utf8', timeout: 60_000, input: '',
  });
  assert.equal(q.status, 0, q.stderr);
  return q.stdout;
}

/** Runs the program on the host clock through the runner, which sweeps every `sweepMs` of mostly idle time. */
async function run(path: string, engine: 'jit' | 'interp', sweepMs?: number, harts = 1): Promise<{ out: string; board: VirtBoard }> {
  let out = '';
  const board = new VirtBoard({
    ramSize: 64 << 20, engine, jit: { threshold: 5000 }, harts,
    console: (b) => (out += Buffer.from(b).toString('latin1')),
  });
  board.boot({ kernel: new Uint8Array(readFileSync(path)), kernelName: path, firmware: 'none' });
  // An instruction limit keeps the harts' turns on one thread: a machine with several harts
  // runs them in threads without one.
  const exit = await new Runner(board.machine, new NodeRunnerHost()).run({ ...(harts === 1 ? { maxInsns: 100_000_000 } : {}), ...(sweepMs ? { sweepMs } : {}) });
  assert.deepEqual({ reason: exit?.reason, code: exit?.code }, { reason: 'poweroff', code: 0 });
  return { out, board };
}

describe('the translator forgets what an idle machine does not run', () => {
  it('hot code swept while the guest waits is translated again, and rewritten code runs as rewritten', async () => {
    const path = elf();
    const want = qemuOutput(path);
    assert.match(want, /^run 1 [0-9a-f]{16}\nrun 2 [0-9a-f]{16}\nrun 3 [0-9a-f]{16}\n$/);
    const { out, board } = await run(path, 'jit', 50);
    assert.equal(out, want);
    const stats = board.machine.jit!.stats;
    // Phase 1 translated the loop's page and work()'s; the wait swept both; phases 2 and 3
    // translated them again (phase 3's store dropped work()'s translation once more).
    assert.ok(stats.swept >= 2, `translations swept: ${stats.swept}`);
    assert.ok(stats.regionsCompiled >= 5, `regions compiled: ${stats.regionsCompiled}`);
    assert.equal((await run(path, 'interp', 50)).out, want);
  });

  it('a sweep keeps what ran in the last SWEEP_AGE sweeps and drops the rest', async () => {
    const path = elf();
    // Without sweeps (the default stretch is far longer than this run): two translations made once.
    const { board } = await run(path, 'jit');
    const m = board.machine;
    const jit = m.jit!;
    assert.equal(jit.stats.swept, 0);
    const compiled = jit.stats.regionsCompiled;
    assert.ok(compiled >= 2, `regions compiled: ${compiled}`);
    // Everything ran since the engine started: the first sweep keeps it, and so do the next
    // SWEEP_AGE - 1, which find it unused; the one after drops it.
    assert.equal(m.sweepTranslations(), 0);
    for (let i = 1; i < SWEEP_AGE; i++) assert.equal(m.sweepTranslations(), 0, `sweep ${i + 1}`);
    assert.ok(m.sweepTranslations() >= 2);
    assert.equal(m.sweepTranslations(), 0, 'nothing is left to drop');
    assert.ok(m.pageFlags.some((f) => f & PAGE_CODE), 'the pages stay flagged: stores to them still drop whatever is made again');
  });

  it('a hart in a thread of its own sweeps what it translated while it sleeps', async () => {
    const path = smpElf();
    const want = qemuOutput(path, 2);
    assert.match(want, /^hot [0-9a-f]{16}\ndone\n$/);
    const { out, board } = await run(path, 'jit', 50, 2);
    assert.equal(out, want);
    const m = board.machine;
    assert.equal(m.hartThreads, 1, 'hart 1 ran in a thread of its own');
    // Hart 0 ran a few hundred instructions: what was translated and swept is hart 1's loop.
    const jit = collectStats(board).jit!;
    assert.ok(jit.regionsCompiled! >= 1, `regions compiled: ${jit.regionsCompiled}`);
    assert.ok(jit.swept! >= 1, `translations swept: ${jit.swept}`);
  });
});
