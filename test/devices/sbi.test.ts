/**
 * The built-in SBI against an S-mode test kernel (test/guest/sbi/calls.c) through
 * `virtus run`: timers through the TIME extension and legacy set_timer with Sstc on, DBCN
 * writes bounded and checked against RAM, and calls to extensions that do not exist, which
 * --stats counts under one name instead of one line each. Hart state management and IPIs on
 * two harts (test/guest/sbi/hsm.c) answer as OpenSBI does, on QEMU and on virtus.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ensureDefaultGuest } from '../../src/host/node/guest/index.ts';
import { buildGuest, GUEST_SRC, requireTool, runVirtus } from '../support/toolchain.ts';

describe('built-in SBI', () => {
  it('serves timers, bounds DBCN and keeps its counters bounded (--deterministic)', () => {
    const elf = buildGuest('sbi-calls', ['common/crt-s.S', 'sbi/calls.c']);
    const r = runVirtus(['run', '--kernel', elf, '--memory', '64M', '--deterministic', '--stats'], { timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^sbi: ok$/m);
    assert.match(r.stdout, /^dbcn_write_count=0x0+10000$/m, 'one DBCN write passes on 64 KiB');
    const section = r.stderr.split('\n');
    const at = section.findIndex((l) => l.startsWith('SBI calls'));
    const lines = section.slice(at + 1).filter((l, i, a) => i < a.findIndex((x) => !x.startsWith('  ')));
    assert.ok(lines.length <= 12, `SBI counters:\n${lines.join('\n')}`);
    assert.match(r.stderr, /^ {2}unknown extension +1000$/m);
  });

  it('HSM and IPI on 2 harts answer as OpenSBI does (QEMU -smp 2 and virtus --bios opensbi)', async () => {
    const elf = buildGuest('sbi-hsm', ['common/crt-s.S', 'sbi/hsm.c'], { ldscript: join(GUEST_SRC, 'sbi/link-s.ld') });
    const g = await ensureDefaultGuest();
    requireTool('qemu-system-riscv64');
    // One TCG thread takes the harts in turn: with a thread per hart, a loaded host can leave
    // hart 1 inside OpenSBI's own start-up for the whole of the program's bounded waits.
    const q = spawnSync('qemu-system-riscv64', ['-M', 'virt', '-m', '64M', '-smp', '2', '-accel', 'tcg,thread=single', '-nographic', '-bios', g.opensbi, '-kernel', elf], { encoding: 'utf8', timeout: 60_000, input: '' });
    assert.equal(q.status, 0, q.stdout + q.stderr);
    const lines = (s: string) => s.replace(/\r/g, '').split('\n').filter((l) => /^[a-z_0-9]+=0x/.test(l)).join('\n');
    const want = lines(q.stdout);
    assert.match(want, /^status_while_suspended=0x0+4$/m);
    assert.match(want, /^starts=0x0+2$/m);
    for (const bios of [[], ['--bios', 'opensbi']]) {
      const v = runVirtus(['run', '--smp', '2', '--memory', '64M', '--kernel', elf, ...bios], { timeout: 60_000 });
      assert.equal(v.status, 0, v.stdout + v.stderr);
      assert.equal(lines(v.stdout), want, bios.length ? 'OpenSBI on virtus' : 'the built-in SBI');
    }
  });
});
