/**
 * The built-in SBI against an S-mode test kernel (test/guest/sbi/calls.c) through
 * `virtus run`: timers through the TIME extension and legacy set_timer with Sstc on, DBCN
 * writes bounded and checked against RAM, and calls to extensions that do not exist, which
 * --stats counts under one name instead of one line each.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildGuest, runVirtus } from '../support/toolchain.ts';

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
});
