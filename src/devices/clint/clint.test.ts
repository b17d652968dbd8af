import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Clock, INSNS_PER_TICK } from '../../machine/clock.ts';
import { isVirtusError } from '../../util/errors.ts';
import { Clint, type ClintState } from './clint.ts';

function setup(harts = 2) {
  let insns = 0;
  const clock = new Clock({ deterministic: true, instret: () => insns });
  const line = () => ({ level: false, set(l: boolean) { this.level = l; } });
  const soft = Array.from({ length: harts }, line);
  const timer = Array.from({ length: harts }, line);
  const clint = new Clint(clock, soft, timer);
  const advance = (ticks: number) => { insns += ticks * INSNS_PER_TICK; clint.update(); };
  return { clint, soft, timer, advance };
}

describe('CLINT', () => {
  it('drives MSIP from msip and MTIP from mtime >= mtimecmp', () => {
    const { clint, soft, timer, advance } = setup();
    clint.write(4, 4, 1);
    assert.deepEqual(soft.map((l) => l.level), [false, true]);
    clint.write(0x4000, 4, 100);
    clint.write(0x4004, 4, 0);
    assert.equal(timer[0]!.level, false);
    assert.equal(clint.nextDeadline(), 100);
    advance(100);
    assert.equal(timer[0]!.level, true);
    assert.equal(timer[1]!.level, false, 'hart 1 keeps its reset mtimecmp of 2^64-1');
  });
});

describe('CLINT time at the edges of its range', () => {
  // Found by the MMIO guest fuzzer (test/guest/fuzz/mmio.c): mtime written near 2^64 made the
  // machine's time inexact (even negative, after a write of one half).
  it('keeps mtime far below 2^53 ticks, where time is exact: writes wrap at 52 bits', () => {
    const { clint } = setup();
    const mtime = () => clint.read(0xbff8, 4) + clint.read(0xbffc, 4) * 2 ** 32;
    clint.write(0xbff8, 4, 0);
    clint.write(0xbffc, 4, 0xffff_ffff);
    assert.equal(mtime(), 0xf_ffff_0000_0000);
    clint.write(0xbff8, 4, 0xffff_f000);
    assert.equal(mtime(), 0xf_ffff_ffff_f000);
    clint.write(0xbff8, 4, 5);
    clint.write(0xbffc, 4, 0);
    assert.equal(mtime(), 5, 'each half lands exactly');
  });
});

describe('CLINT save/restore', () => {
  function busy() {
    const s = setup();
    s.clint.write(0, 4, 1);
    s.clint.write(0x4008, 4, 0x89ab_cdef);
    s.clint.write(0x400c, 4, 0x0123_4567);
    s.clint.write(0x4000, 4, 5);
    s.clint.write(0x4004, 4, 0);
    return s;
  }

  it('saves 64-bit mtimecmp values exactly and round-trips through JSON', () => {
    const a = busy();
    const saved = JSON.parse(JSON.stringify(a.clint.save())) as ClintState;
    assert.deepEqual(saved, { msip: [1, 0], mtimecmp: ['5', String(0x0123_4567_89ab_cdefn)] });
    assert.equal(setup().clint.save().mtimecmp[0], '18446744073709551615', 'the reset value survives');
    const b = setup();
    b.clint.restore(saved);
    assert.deepEqual(b.clint.save(), saved);
    assert.equal(b.soft[0]!.level, true);
    assert.equal(b.clint.read(0x400c, 4), 0x0123_4567);
    b.advance(5);
    assert.equal(b.timer[0]!.level, true);
  });

  const corruptions: Array<[string, (s: ClintState) => unknown, RegExp]> = [
    ['msip of the wrong length', (s) => ({ ...s, msip: [0] }), /msip must be an array of 2/],
    ['msip of 2', (s) => ({ ...s, msip: [2, 0] }), /msip\[0\] must be an integer from 0 to 1/],
    ['mtimecmp as numbers', (s) => ({ ...s, mtimecmp: [5, 6] }), /mtimecmp\[0\] must be a decimal string/],
    ['mtimecmp past 64 bits', (s) => ({ ...s, mtimecmp: ['5', '18446744073709551616'] }), /mtimecmp\[1\]/],
    ['an unknown field', (s) => ({ ...s, mtime: '0' }), /unknown field "mtime"/],
  ];
  for (const [what, corrupt, message] of corruptions) {
    it(`rejects a state with ${what}`, () => {
      const b = setup();
      const before = b.clint.save();
      assert.throws(
        () => b.clint.restore(corrupt(busy().clint.save())),
        (e) => isVirtusError(e, 'BAD_STATE') && e.message.startsWith('clint: ') && message.test(e.message),
      );
      assert.deepEqual(b.clint.save(), before);
    });
  }
});
