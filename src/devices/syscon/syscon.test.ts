import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVirtusError } from '../../util/errors.ts';
import { Syscon } from './syscon.ts';

function setup() {
  const events: string[] = [];
  const syscon = new Syscon({
    poweroff: (code, failed) => events.push(`poweroff ${code}${failed ? ' failed' : ''}`),
    reboot: () => events.push('reboot'),
  });
  return { syscon, events };
}

describe('sifive,test finisher', () => {
  it('powers off on 0x5555, fails with the code in bits 31:16 on 0x3333, reboots on 0x7777', () => {
    const { syscon, events } = setup();
    syscon.write(0, 4, 0x5555);
    syscon.write(0, 4, (42 << 16) | 0x3333);
    syscon.write(0, 4, 0xffff_3333 | 0);
    syscon.write(0, 4, 0x7777);
    assert.deepEqual(events, ['poweroff 0', 'poweroff 42 failed', 'poweroff 65535 failed', 'reboot']);
  });

  it('ignores other values, other offsets and byte writes; reads 0', () => {
    const { syscon, events } = setup();
    syscon.write(0, 4, 0x1234);
    syscon.write(0, 4, 0x5556);
    syscon.write(4, 4, 0x5555);
    syscon.write(0, 1, 0x55);
    assert.deepEqual(events, []);
    assert.equal(syscon.read(0, 4), 0);
  });

  it('takes a 16-bit store of the command half (code 0)', () => {
    const { syscon, events } = setup();
    syscon.write(0, 2, 0x3333);
    assert.deepEqual(events, ['poweroff 0 failed']);
  });

  it('saves an empty state and rejects anything else', () => {
    const { syscon } = setup();
    assert.deepEqual(JSON.parse(JSON.stringify(syscon.save())), {});
    syscon.restore({});
    assert.throws(() => syscon.restore({ x: 1 }), (e) => isVirtusError(e, 'BAD_STATE') && /syscon: state has an unknown field "x"/.test(e.message));
    assert.throws(() => syscon.restore('x'), (e) => isVirtusError(e, 'BAD_STATE') && /syscon: state must be an object/.test(e.message));
  });
});
