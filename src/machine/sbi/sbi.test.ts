import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cause } from '../../cpu/trap.ts';
import { VirtBoard } from '../virt.ts';
import { EID } from './sbi-ids.ts';

/** A board whose hart 0 has just called sbi_set_timer(`deadline`) from S-mode. */
function timerSetTo(deadline: bigint): VirtBoard {
  const board = new VirtBoard({ ramSize: 1 << 20, console: () => {} });
  const h = board.machine.harts[0]!;
  h.setX(17, BigInt(EID.TIME));
  h.setX(16, 0n);
  h.setX(10, deadline);
  board.sbi.handleTrap(h, Cause.EcallS, false);
  return board;
}

describe('the built-in SBI in a snapshot', () => {
  it('keeps a timer deadline, and a deadline of all ones (how Linux stops its timer) as none', () => {
    for (const [deadline, want] of [[123_456_789n, 123_456_789], [0xffff_ffff_ffff_ffffn, Infinity], [1n << 60n, Infinity]] as const) {
      const saved = JSON.parse(JSON.stringify(timerSetTo(deadline).sbi.save())) as unknown;
      const other = new VirtBoard({ ramSize: 1 << 20, console: () => {} });
      other.sbi.restore(saved);
      assert.equal(other.sbi.nextDeadline(), want, `sbi_set_timer(${deadline})`);
    }
  });
});
