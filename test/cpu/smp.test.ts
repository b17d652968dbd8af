/**
 * Several harts on one memory, bare metal (`--bios none`: every hart starts at the entry, as
 * on QEMU). Without --deterministic, harts 1..N-1 run in threads of their own (--stats says so). test/guest/smp/counter.c has HARTS harts increment shared counters with amoadd,
 * with LR/SC loops and under a ticket spinlock, millions of times: the totals must be exact,
 * and equal to QEMU's (`-M spike -smp N`, MTTCG: harts in parallel host threads). Then what
 * virtus promises beyond QEMU: a deterministic run prints the same twice (scheduling-dependent
 * values included: SC failures, the order the lock was taken in, the time at the end), and a run saved mid-way and restored
 * prints what the uninterrupted run prints.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildGuest, runQemuSpike, runVirtus } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-smp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const counter = (harts: number): string =>
  buildGuest(`smp-counter${harts}`, ['smp/crt-smp.S', 'smp/counter.c'], { cflags: [`-DHARTS=${harts}`] });

/** The lines every correct machine prints alike (not the scheduling-dependent ones). */
const totals = (out: string): string => out.split('\n').filter((l) => !/^(sc_failures|lock_order|mtime)=/.test(l)).join('\n');

describe('harts sharing memory', () => {
  it('4 harts: amoadd, LR/SC and a ticket lock count exactly, as on QEMU -smp 4', () => {
    const elf = counter(4);
    const q = runQemuSpike(elf, ['-smp', '4']);
    assert.equal(q.status, 0, q.stderr);
    const v = runVirtus(['run', '--bios', 'none', '--smp', '4', '--stats', '--kernel', elf]);
    assert.equal(v.status, 0, v.stderr + v.stdout);
    assert.match(v.stderr, /^ {2}threads of their own +3$/m, 'harts 1-3 ran in threads of their own, in parallel with hart 0');
    // Every thread reads one clock: the time at the end is the run's (less than ten minutes of
    // 10 MHz ticks), not one thread's clock offset by another's origin.
    const mtime = /^mtime=0x([0-9a-f]{16})$/m.exec(v.stdout);
    assert.ok(mtime && parseInt(mtime[1]!, 16) < 600 * 10_000_000, `mtime at the end: ${mtime?.[0]}`);
    assert.match(v.stdout, /^amoadd=0x00000000003d0900$/m, '4 x 1,000,000');
    assert.match(v.stdout, /^lrsc=0x00000000003d0900$/m);
    assert.match(v.stdout, /^locked=0x0000000000001f40$/m, '4 x 2,000');
    assert.match(v.stdout, /^PASS$/m);
    assert.equal(totals(v.stdout), totals(q.stdout));
  });

  it('a store by one hart into code another hart has translated is seen after its FENCE.I, as on QEMU', () => {
    const elf = buildGuest('smp-smc', ['smp/crt-smp.S', 'smp/smc.c']);
    const q = runQemuSpike(elf, ['-smp', '2']);
    assert.equal(q.status, 0, q.stderr);
    for (const engine of ['jit', 'interp']) {
      const v = runVirtus(['run', '--bios', 'none', '--smp', '2', '--engine', engine, '--kernel', elf]);
      assert.equal(v.status, 0, v.stderr + v.stdout);
      assert.equal(v.stdout, q.stdout);
    }
    assert.match(q.stdout, /^after=0x0000000000000002$/m);
  });

  it('a deterministic --smp 2 run prints the same twice, its per-hart counts too, and the same on the interpreter', () => {
    const run = (engine: string) => runVirtus(['run', '--bios', 'none', '--smp', '2', '--deterministic', '--stats', '--engine', engine, '--kernel', counter(2)]);
    const [a, b, c] = [run('jit'), run('jit'), run('interp')];
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /^PASS$/m);
    assert.match(a.stdout, /^mtime=0x[0-9a-f]{16}$/m);
    assert.equal(b.stdout, a.stdout);
    const perHart = (s: string) => s.match(/^ {2}hart\d instructions +\d+$/gm);
    assert.equal(perHart(a.stderr)?.length, 2, a.stderr);
    assert.deepEqual(perHart(b.stderr), perHart(a.stderr));
    // Both engines end slices at the same instructions, so the harts' turns fall alike.
    assert.equal(c.stdout, a.stdout);
    assert.deepEqual(perHart(c.stderr), perHart(a.stderr));
  });

  it('a 2-hart machine saved mid-run and restored prints what the uninterrupted run prints', () => {
    const base = ['run', '--bios', 'none', '--smp', '2', '--deterministic', '--kernel', counter(2)];
    const full = runVirtus(base);
    assert.equal(full.status, 0, full.stderr);
    const file = join(dir, 'smp2.snap');
    // Mid-way through the LR/SC loops (about 125 M instructions in all), in the middle of hart 1's turn.
    const a = runVirtus([...base, '--max-insns', '40150001', '--snapshot-on-exit', file]);
    assert.equal(a.status, 124, a.stderr);
    const b = runVirtus(['run', '--restore', file]);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(a.stdout + b.stdout, full.stdout);
  });
});
