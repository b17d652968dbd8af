/**
 * Harts in parallel host threads over one shared memory (test/support/parallel-harts.ts: hart
 * 0 in this thread, the others in worker threads, each with its own engine), on both engines:
 * test/guest/smp/counter.c's amoadd, LR/SC and ticket-lock counts must be exact, as on QEMU;
 * test/guest/smp/litmus.c's forbidden outcomes of MP and SB with fences (RVWMO) must never
 * appear, as on QEMU's -smp 2 (MTTCG); test/guest/smp/tear.c's loads of a doubleword another
 * hart keeps storing must never see half of each of two stores. VIRTUS_LITMUS_ITERS sets the rounds of each litmus test
 * (default 100,000; 1,000,000 for a longer hunt).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runParallel } from '../support/parallel-harts.ts';
import { buildGuest, runQemuSpike } from '../support/toolchain.ts';

const ITERS = Number(process.env.VIRTUS_LITMUS_ITERS ?? 100_000);
const counter = () => buildGuest('smp-counter2', ['smp/crt-smp.S', 'smp/counter.c'], { cflags: ['-DHARTS=2'] });
const tear = () => buildGuest('smp-tear', ['smp/crt-smp.S', 'smp/tear.c']);
const litmus = () => buildGuest(`smp-litmus-${ITERS}`, ['smp/crt-smp.S', 'smp/litmus.c'], { cflags: [`-DITERS=${ITERS}`] });
/** The lines every correct machine prints alike. */
const totals = (out: string): string => out.split('\n').filter((l) => !/^(sc_failures|lock_order|mtime)=/.test(l)).join('\n');

describe('harts in parallel threads', () => {
  const q = runQemuSpike(counter(), ['-smp', '2']);
  for (const engine of ['interp', 'jit'] as const) {
    it(`2 harts on the ${engine === 'jit' ? 'translator' : 'interpreter'}: amoadd, LR/SC and a ticket lock count exactly, as on QEMU -smp 2`, async () => {
      assert.equal(q.status, 0, q.stderr);
      const r = await runParallel(counter(), 2, engine);
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /^amoadd=0x00000000001e8480$/m, '2 x 1,000,000');
      assert.match(r.stdout, /^lrsc=0x00000000001e8480$/m);
      assert.match(r.stdout, /^locked=0x0000000000000fa0$/m, '2 x 2,000');
      assert.equal(totals(r.stdout), totals(q.stdout));
      // At least one instruction per iteration of its amoadd and LR/SC loops (its spinning varies).
      assert.ok(r.insns[1]! > 2_000_000, `hart 1 ran in its thread (${r.insns[1]} instructions)`);
    });
  }

  const ql = runQemuSpike(litmus(), ['-smp', '2']);
  for (const engine of ['interp', 'jit'] as const) {
    it(`litmus MP+fences and SB+fences, ${ITERS} rounds each on the ${engine === 'jit' ? 'translator' : 'interpreter'}: no forbidden outcome, as on QEMU -smp 2`, async () => {
      assert.equal(ql.status, 0, ql.stderr);
      assert.match(ql.stdout, /^mp_forbidden=0x0{16}\nsb_forbidden=0x0{16}$/m, ql.stdout);
      const r = await runParallel(litmus(), 2, engine, 120_000);
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /^mp_forbidden=0x0{16}\nsb_forbidden=0x0{16}$/m, r.stdout);
      assert.match(r.stdout, /^PASS$/m);
    });
  }

  const qt = runQemuSpike(tear(), ['-smp', '2']);
  for (const engine of ['interp', 'jit'] as const) {
    it(`an aligned doubleword stored by one hart is loaded whole by the other, on the ${engine === 'jit' ? 'translator' : 'interpreter'}, as on QEMU -smp 2`, async () => {
      assert.equal(qt.status, 0, qt.stderr);
      assert.match(qt.stdout, /^torn=0x0{16}$/m, qt.stdout);
      const r = await runParallel(tear(), 2, engine, 120_000);
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /^torn=0x0{16}\nPASS$/m, 'two 32-bit halves were seen (85 times in one run before the interpreter copied doublewords whole)');
    });
  }
});
