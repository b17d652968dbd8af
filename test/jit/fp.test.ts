/**
 * The translator's floating-point fast paths against the reference interpreter, in lockstep
 * (as lockstep.test.ts): the FPU's own test programs, the FP benchmark, and fp-paths.c, which
 * drives each fast path and each of its fallbacks (NX clear, frm and static rm other than RNE,
 * zero/subnormal/infinite/NaN results, sNaN operands, singles that are not NaN-boxed, FS Off,
 * Initial and Clean) from hot loops, so they run translated.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseElf } from '../../src/machine/elf.ts';
import { Machine } from '../../src/machine/machine.ts';
import { lockstep } from '../support/lockstep.ts';
import { buildGuest, ROOT } from '../support/toolchain.ts';

const JIT = { threshold: 50 };
const TRAP = ['common/crt.S', 'common/trap.S', 'common/trap.c'];

const PROGRAMS = [
  { name: 'jit-fp-paths', sources: [...TRAP, join(ROOT, 'test/jit/fp-paths.c')] },
  { name: 'fpu-arith', sources: ['common/crt.S', 'fpu/arith.c'] },
  { name: 'fpu-state', sources: [...TRAP, 'fpu/state.c'] },
  { name: 'bench-fp-1', sources: ['common/crt.S', 'bench/fp.c'], cflags: ['-DREPS=1'] },
];

function bareMetal(elfPath: string, engine: 'jit' | 'interp'): { m: Machine; out: string[] } {
  const elf = parseElf(new Uint8Array(readFileSync(elfPath)), elfPath);
  const out: string[] = [];
  const m = new Machine({ ramSize: 64 << 20, deterministic: true, engine, jit: JIT, console: (s) => out.push(new TextDecoder().decode(s)) });
  for (const s of elf.segments) m.ram.load(s.paddr, s.data);
  m.attachHtif(elf.symbols.get('tohost')!, elf.symbols.get('fromhost') ?? null);
  m.harts[0]!.setPcNum(elf.entry);
  m.harts[0]!.setX(10, 0n);
  return { m, out };
}

describe('lockstep: floating point in the translator', () => {
  for (const p of PROGRAMS) {
    it(`on ${p.name}`, (t) => {
      // The engine reports a region that fails to compile and interprets its page instead.
      const errors: string[] = [];
      t.mock.method(console, 'error', (msg: unknown) => errors.push(String(msg)));
      const elf = buildGuest(p.name, p.sources, { cflags: p.cflags });
      const a = bareMetal(elf, 'jit');
      const b = bareMetal(elf, 'interp');
      const r = lockstep(a.m, b.m, 200_000_000, { budget: 397 });
      assert.ok(a.m.exit && b.m.exit, 'both programs ran to their end');
      assert.deepEqual(a.m.exit, b.m.exit);
      assert.equal(a.m.exit.code, 0, a.out.join(''));
      assert.ok(r.translated > 0, 'translated code ran');
      assert.deepEqual(errors, [], 'every region compiled');
    });
  }
});
