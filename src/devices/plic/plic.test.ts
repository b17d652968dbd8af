import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVirtusError } from '../../util/errors.ts';
import type { IrqLine } from '../device.ts';
import { Plic, PLIC_NDEV, type PlicState } from './plic.ts';

const ENABLE = (ctx: number, w = 0) => 0x2000 + 0x80 * ctx + 4 * w;
const THRESHOLD = (ctx: number) => 0x20_0000 + 0x1000 * ctx;
const CLAIM = (ctx: number) => THRESHOLD(ctx) + 4;

class Line implements IrqLine {
  level = false;
  changes = 0;
  set(l: boolean): void {
    if (l !== this.level) this.changes++;
    this.level = l;
  }
}

/** A PLIC with one hart (contexts 0 = M, 1 = S) and handy accessors. */
function setup(harts = 1) {
  const out = Array.from({ length: 2 * harts }, () => new Line());
  const plic = new Plic(out);
  const w = (off: number, v: number) => plic.write(off, 4, v);
  const r = (off: number) => plic.read(off, 4);
  return { plic, out, w, r };
}

describe('PLIC registers', () => {
  it('has 96 sources; priorities are 3-bit WARL and source 0 is hardwired to 0', () => {
    const { plic, w, r } = setup();
    assert.equal(plic.ndev, PLIC_NDEV);
    w(4 * 10, 0xffff_ffff);
    assert.equal(r(4 * 10), 7);
    w(4 * 10, 5);
    assert.equal(r(4 * 10), 5);
    w(0, 7);
    assert.equal(r(0), 0);
    w(4 * 96, 3);
    assert.equal(r(4 * 96), 3);
    w(4 * 97, 3);
    assert.equal(r(4 * 97), 0);
  });

  it('enable bits exist only for sources 1..ndev', () => {
    const { w, r } = setup();
    w(ENABLE(0, 0), 0xffff_ffff);
    assert.equal(r(ENABLE(0, 0)), 0xffff_fffe);
    w(ENABLE(0, 3), 0xffff_ffff);
    assert.equal(r(ENABLE(0, 3)), 1); // source 96 only
    w(ENABLE(0, 4), 0xffff_ffff);
    assert.equal(r(ENABLE(0, 4)), 0);
    w(ENABLE(2, 0), 0xffff_ffff); // no such context with one hart
    assert.equal(r(ENABLE(2, 0)), 0);
  });

  it('pending bits are read-only and follow the gateway', () => {
    const { plic, w, r } = setup();
    w(0x1000, 0xffff_ffff);
    assert.equal(r(0x1000), 0);
    plic.input(10).set(true);
    assert.equal(r(0x1000), 1 << 10);
    plic.input(33).set(true);
    assert.equal(r(0x1004), 1 << 1);
  });

  it('ignores accesses that are not aligned 32-bit', () => {
    const { plic, w, r } = setup();
    plic.write(4 * 10, 1, 5);
    plic.write(4 * 10 + 1, 4, 5);
    assert.equal(r(4 * 10), 0);
    w(4 * 10, 5);
    assert.equal(plic.read(4 * 10, 1), 0);
    assert.equal(plic.read(4 * 10, 2), 0);
  });

  it('rejects sources that do not exist', () => {
    const { plic } = setup();
    assert.throws(() => plic.input(0), (e) => isVirtusError(e, 'PLIC_CONFIG'));
    assert.throws(() => plic.input(97), (e) => isVirtusError(e, 'PLIC_CONFIG'));
    assert.throws(() => new Plic([], {}), (e) => isVirtusError(e, 'PLIC_CONFIG'));
  });
});

describe('PLIC interrupt flow', () => {
  it('notifies a context only when priority > threshold and the source is enabled', () => {
    const { plic, out, w } = setup();
    plic.input(10).set(true);
    assert.equal(out[1]!.level, false, 'priority 0 never interrupts');
    w(4 * 10, 1);
    assert.equal(out[1]!.level, false, 'not enabled');
    w(ENABLE(1), 1 << 10);
    assert.equal(out[1]!.level, true);
    assert.equal(out[0]!.level, false, 'the M context has its own enables');
    w(THRESHOLD(1), 1);
    assert.equal(out[1]!.level, false, 'priority must exceed the threshold');
    w(4 * 10, 2);
    assert.equal(out[1]!.level, true);
    w(ENABLE(1), 0);
    assert.equal(out[1]!.level, false);
  });

  it('claims the highest priority, lowest id first, regardless of threshold', () => {
    const { plic, out, w, r } = setup();
    for (const id of [3, 5, 7]) {
      w(4 * id, id === 7 ? 2 : 4);
      plic.input(id).set(true);
    }
    w(ENABLE(0), (1 << 3) | (1 << 5) | (1 << 7));
    w(THRESHOLD(0), 7);
    assert.equal(out[0]!.level, false);
    assert.equal(r(CLAIM(0)), 3, 'equal priority: the lower id wins');
    assert.equal(r(CLAIM(0)), 5);
    assert.equal(r(CLAIM(0)), 7);
    assert.equal(r(CLAIM(0)), 0, 'nothing left');
    assert.equal(r(0x1000), 0, 'claims clear pending bits');
  });

  it('gateway: a claimed source is not pending again until completed, then re-samples the level', () => {
    const { plic, out, w, r } = setup();
    const src = plic.input(10);
    w(4 * 10, 1);
    w(ENABLE(1), 1 << 10);
    src.set(true);
    assert.equal(r(CLAIM(1)), 10);
    assert.equal(out[1]!.level, false);
    src.set(false);
    src.set(true); // a new assertion while claimed is held back
    assert.equal(r(0x1000), 0);
    assert.equal(out[1]!.level, false);
    w(CLAIM(1), 10); // complete: still asserted, so a new request
    assert.equal(r(0x1000), 1 << 10);
    assert.equal(out[1]!.level, true);
    assert.equal(r(CLAIM(1)), 10);
    src.set(false);
    w(CLAIM(1), 10); // complete with the line low: nothing pending
    assert.equal(r(0x1000), 0);
    assert.equal(out[1]!.level, false);
    src.set(true);
    assert.equal(r(0x1000), 1 << 10, 'after completion a new assertion is a new request');
  });

  it('a deasserted level does not retract a forwarded request', () => {
    const { plic, out, w, r } = setup();
    w(4 * 10, 1);
    w(ENABLE(1), 1 << 10);
    plic.input(10).set(true);
    plic.input(10).set(false);
    assert.equal(out[1]!.level, true);
    assert.equal(r(CLAIM(1)), 10);
  });

  it('ignores completions of sources not enabled for the context', () => {
    const { plic, w, r } = setup();
    w(4 * 10, 1);
    w(ENABLE(1), 1 << 10);
    const src = plic.input(10);
    src.set(true);
    assert.equal(r(CLAIM(1)), 10);
    w(CLAIM(0), 10); // context 0 does not enable source 10
    assert.equal(r(0x1000), 0, 'still claimed');
    w(ENABLE(1), 0);
    w(CLAIM(1), 10); // disabled now: ignored too
    assert.equal(r(0x1000), 0);
    w(ENABLE(1), 1 << 10);
    w(CLAIM(1), 10);
    assert.equal(r(0x1000), 1 << 10);
    w(CLAIM(1), 0); // id 0 and ids past ndev are ignored
    w(CLAIM(1), 500);
  });

  it('multicasts to every context that enables a source; the first claim wins', () => {
    const { plic, out, w, r } = setup(2);
    w(4 * 1, 1);
    w(ENABLE(1), 2);
    w(ENABLE(3), 2);
    plic.input(1).set(true);
    assert.deepEqual(out.map((l) => l.level), [false, true, false, true]);
    assert.equal(r(CLAIM(3)), 1);
    assert.deepEqual(out.map((l) => l.level), [false, false, false, false]);
    assert.equal(r(CLAIM(1)), 0);
  });

  it('drives an output only when its level changes', () => {
    const { plic, out, w } = setup();
    w(4 * 10, 1);
    w(4 * 11, 1);
    w(ENABLE(1), (1 << 10) | (1 << 11));
    plic.input(10).set(true);
    plic.input(11).set(true);
    w(4 * 10, 2);
    assert.equal(out[1]!.changes, 1);
  });

  it('reset clears registers; a still-asserted source requests again', () => {
    const { plic, out, w, r } = setup();
    w(4 * 10, 1);
    w(ENABLE(1), 1 << 10);
    plic.input(10).set(true);
    r(CLAIM(1));
    plic.reset();
    assert.equal(r(4 * 10), 0);
    assert.equal(r(ENABLE(1)), 0);
    assert.equal(r(0x1000), 1 << 10);
    assert.equal(out[1]!.level, false);
  });
});

describe('PLIC save/restore', () => {
  function busy() {
    const s = setup(2);
    s.w(4 * 10, 3);
    s.w(4 * 11, 2);
    s.w(4 * 40, 1);
    s.w(ENABLE(1), (1 << 10) | (1 << 11));
    s.w(ENABLE(2, 1), 1 << 8);
    s.w(THRESHOLD(3), 1);
    s.plic.input(10).set(true);
    s.plic.input(11).set(true);
    s.plic.input(40).set(true);
    s.r(CLAIM(1)); // 10 claimed, 11 and 40 pending
    return s;
  }

  it('round-trips through JSON and drives the outputs of the restored state', () => {
    const a = busy();
    const saved = JSON.parse(JSON.stringify(a.plic.save())) as PlicState;
    const b = setup(2);
    b.plic.restore(saved);
    assert.deepEqual(b.plic.save(), a.plic.save());
    assert.deepEqual(b.out.map((l) => l.level), a.out.map((l) => l.level));
    assert.equal(b.r(CLAIM(1)), 11);
    b.w(CLAIM(1), 10);
    assert.equal(b.r(0x1000), 1 << 10, 'the restored claimed source completes and re-samples its level');
  });

  const corruptions: Array<[string, (s: PlicState) => unknown, RegExp]> = [
    ['not an object', () => 42, /state must be an object/],
    ['an unknown field', (s) => ({ ...s, x: 1 }), /unknown field "x"/],
    ['absent field', ({ threshold: _t, ...rest }) => rest, /no field "threshold"/],
    ['priority too long', (s) => ({ ...s, priority: [...s.priority, 0] }), /priority must be an array of 97/],
    ['priority out of range', (s) => ({ ...s, priority: s.priority.map((p, i) => (i === 10 ? 8 : p)) }), /priority\[10\] must be an integer from 0 to 7/],
    ['priority of source 0', (s) => ({ ...s, priority: s.priority.map((p, i) => (i === 0 ? 1 : p)) }), /priority\[0\] must be 0/],
    ['pending bit 0', (s) => ({ ...s, pending: [1, 0, 0, 0] }), /pending\[0\] has bits for sources that do not exist/],
    ['pending past ndev', (s) => ({ ...s, pending: [0, 0, 0, 2] }), /pending\[3\]/],
    ['claimed not a number', (s) => ({ ...s, claimed: ['1', 0, 0, 0] }), /claimed\[0\] must be an integer/],
    ['level fractional', (s) => ({ ...s, level: [0.5, 0, 0, 0] }), /level\[0\] must be an integer/],
    ['enable wrong length', (s) => ({ ...s, enable: s.enable.slice(1) }), /enable must be an array of 16/],
    ['threshold too big', (s) => ({ ...s, threshold: [0, 0, 0, 9] }), /threshold\[3\] must be an integer from 0 to 7/],
    ['pending and claimed', (s) => ({ ...s, pending: [1 << 10, 0, 0, 0], claimed: [1 << 10, 0, 0, 0] }), /overlap/],
  ];
  for (const [what, corrupt, message] of corruptions) {
    it(`rejects a state with ${what}`, () => {
      const a = busy();
      const b = setup(2);
      const before = b.plic.save();
      assert.throws(
        () => b.plic.restore(corrupt(a.plic.save())),
        (e) => isVirtusError(e, 'BAD_STATE') && /^plic: /.test(e.message) && message.test(e.message),
      );
      assert.deepEqual(b.plic.save(), before, 'a rejected restore changes nothing');
    });
  }
});
