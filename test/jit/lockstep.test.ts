/**
 * The translator against the reference interpreter, in lockstep: both run the same guest from
 * the same state with the same budgets, and their whole architectural state (registers, pc,
 * CSRs, RAM) must agree at every stop. The hotness threshold is low so that translated code runs
 * from the start.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseElf } from '../../src/machine/elf.ts';
import { Machine } from '../../src/machine/machine.ts';
import { VirtBoard } from '../../src/machine/virt.ts';
import { ensureDefaultGuest } from '../../src/host/node/guest/fetch.ts';
import { lockstep } from '../support/lockstep.ts';
import { buildGuest } from '../support/toolchain.ts';
import { PROGRAMS } from '../cpu/programs.ts';

const JIT = { threshold: 50 };

function bareMetal(elfPath: string, engine: 'jit' | 'interp', jit: { threshold: number; tailCalls?: boolean } = JIT): Machine {
  const elf = parseElf(new Uint8Array(readFileSync(elfPath)), elfPath);
  const m = new Machine({ ramSize: 64 << 20, deterministic: true, engine, jit, console: () => {} });
  for (const s of elf.segments) m.ram.load(s.paddr, s.data);
  m.attachHtif(elf.symbols.get('tohost')!, elf.symbols.get('fromhost') ?? null);
  m.harts[0]!.setPcNum(elf.entry);
  m.harts[0]!.setX(10, 0n);
  return m;
}

describe('lockstep: translator and interpreter agree', () => {
  for (const p of PROGRAMS) {
    it(`on ${p.name}`, () => {
      const elf = buildGuest(p.name, p.sources, { cflags: p.cflags });
      const a = bareMetal(elf, 'jit');
      const b = bareMetal(elf, 'interp');
      const r = lockstep(a, b, 50_000_000, { budget: 97 });
      assert.ok(a.exit && b.exit, 'both programs ran to their end');
      assert.deepEqual(a.exit, b.exit);
      assert.ok(r.translated > 0, 'translated code ran');
    });
  }

  it('without WebAssembly tail calls (regions reach their other functions through the dispatcher)', () => {
    for (const p of PROGRAMS.filter((x) => ['sieve', 'traps', 'paging'].includes(x.name))) {
      const elf = buildGuest(p.name, p.sources, { cflags: p.cflags });
      const a = bareMetal(elf, 'jit', { ...JIT, tailCalls: false });
      const b = bareMetal(elf, 'interp');
      const r = lockstep(a, b, 50_000_000, { budget: 97 });
      assert.ok(a.exit && b.exit, `${p.name}: both programs ran to their end`);
      assert.deepEqual(a.exit, b.exit);
      assert.ok(r.translated > 0, `${p.name}: translated code ran`);
    }
  });

  it('on the first 20 million instructions of the default guest booting Linux', async () => {
    const g = await ensureDefaultGuest();
    const mk = (engine: 'jit' | 'interp'): Machine => {
      const board = new VirtBoard({ ramSize: 512 << 20, deterministic: true, engine, jit: JIT, console: () => {} });
      board.boot({
        kernel: new Uint8Array(readFileSync(g.kernel)), kernelName: g.kernel,
        initrd: new Uint8Array(readFileSync(g.initrd)), append: 'console=ttyS0', firmware: 'builtin',
      });
      return board.machine;
    };
    const jit = mk('jit');
    const r = lockstep(jit, mk('interp'), 20_000_000, { budget: 500, ramEvery: 5000 });
    assert.ok(r.translated > r.instructions * 0.8, `most instructions ran translated (${r.translated} of ${r.instructions})`);
    // New entry points into translated pages were compiled on their own, up to the old code.
    assert.ok(jit.jit!.stats.extensions > 0, 'extensions were compiled');
  });
});
