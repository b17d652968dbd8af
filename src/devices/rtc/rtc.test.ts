import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVirtusError } from '../../util/errors.ts';
import { GoldfishRtc, type RtcState } from './rtc.ts';

const TIME_LOW = 0x00, TIME_HIGH = 0x04, ALARM_LOW = 0x08, ALARM_HIGH = 0x0c, IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14, ALARM_STATUS = 0x18, CLEAR_INTERRUPT = 0x1c;
/** 2024-01-01T00:00:00Z in ns: past 2^53, so exactness matters. */
const T0 = 1_704_067_200_000_000_000n;

function setup(start = T0) {
  const clock = { t: start };
  const line = { level: false, set(l: boolean) { this.level = l; } };
  const rtc = new GoldfishRtc(line, () => clock.t);
  const r = (off: number) => rtc.read(off, 4);
  const w = (off: number, v: number) => rtc.write(off, 4, v);
  const readTime = () => {
    const lo = r(TIME_LOW);
    const hi = r(TIME_HIGH);
    return (BigInt(hi) << 32n) | BigInt(lo);
  };
  const setAlarm = (t: bigint) => {
    w(ALARM_HIGH, Number(t >> 32n));
    w(ALARM_LOW, Number(t & 0xffff_ffffn));
  };
  return { rtc, clock, line, r, w, readTime, setAlarm };
}

describe('goldfish RTC', () => {
  it('reads the source time exactly, in nanoseconds', () => {
    const { readTime, clock } = setup();
    assert.equal(readTime(), T0);
    clock.t += 123_456_789n;
    assert.equal(readTime(), T0 + 123_456_789n);
  });

  it('latches TIME_HIGH when TIME_LOW is read, so a carry between the reads is not seen', () => {
    const { r, clock } = setup(0x1_ffff_fff0n);
    const lo = r(TIME_LOW);
    clock.t = 0x2_0000_0010n; // the low word wraps before the high read
    assert.equal(r(TIME_HIGH), 1);
    assert.equal(lo, 0xffff_fff0);
    r(TIME_LOW);
    assert.equal(r(TIME_HIGH), 2);
  });

  it('sets the clock with TIME_HIGH then TIME_LOW, and keeps running from there', () => {
    const { w, readTime, clock, rtc } = setup();
    const target = 946_684_800_000_000_000n; // 2000-01-01, earlier than the source
    w(TIME_HIGH, Number(target >> 32n));
    w(TIME_LOW, Number(target & 0xffff_ffffn));
    assert.equal(readTime(), target);
    clock.t += 5n;
    assert.equal(rtc.time(), target + 5n);
  });

  it('fires an alarm once due: status clears, the line rises if enabled, CLEAR_INTERRUPT lowers it', () => {
    const { r, w, clock, line, rtc, setAlarm } = setup();
    w(IRQ_ENABLED, 1);
    setAlarm(T0 + 1000n);
    assert.equal(r(ALARM_STATUS), 1);
    assert.equal(rtc.nsUntilAlarm(), 1000);
    assert.equal(r(ALARM_LOW), Number((T0 + 1000n) & 0xffff_ffffn));
    assert.equal(r(ALARM_HIGH), Number((T0 + 1000n) >> 32n));
    clock.t += 999n;
    rtc.poll();
    assert.equal(line.level, false);
    clock.t += 1n;
    assert.equal(rtc.nsUntilAlarm(), 0);
    rtc.poll();
    assert.equal(line.level, true);
    assert.equal(r(ALARM_STATUS), 0);
    assert.equal(rtc.nsUntilAlarm(), Infinity);
    w(CLEAR_INTERRUPT, 1);
    assert.equal(line.level, false);
  });

  it('fires an alarm set in the past at once', () => {
    const { w, line, r, setAlarm } = setup();
    w(IRQ_ENABLED, 1);
    setAlarm(T0 - 1n);
    assert.equal(line.level, true);
    assert.equal(r(ALARM_STATUS), 0);
  });

  it('holds a fired alarm while interrupts are disabled, and raises it when enabled', () => {
    const { w, line, r, setAlarm } = setup();
    setAlarm(T0);
    assert.equal(line.level, false);
    assert.equal(r(IRQ_ENABLED), 0);
    w(IRQ_ENABLED, 1);
    assert.equal(line.level, true);
    w(IRQ_ENABLED, 0);
    assert.equal(line.level, false);
  });

  it('CLEAR_ALARM disarms without firing', () => {
    const { w, r, clock, line, rtc, setAlarm } = setup();
    w(IRQ_ENABLED, 1);
    setAlarm(T0 + 10n);
    w(CLEAR_ALARM, 1);
    assert.equal(r(ALARM_STATUS), 0);
    clock.t += 20n;
    rtc.poll();
    assert.equal(line.level, false);
  });

  it('checks the alarm on register access as well as in poll()', () => {
    const { w, r, clock, setAlarm } = setup();
    w(IRQ_ENABLED, 1);
    setAlarm(T0 + 10n);
    clock.t += 10n;
    assert.equal(r(ALARM_STATUS), 0);
  });

  it('accepts only 32-bit accesses', () => {
    const { rtc } = setup();
    assert.equal(rtc.read(TIME_LOW, 1), 0);
    rtc.write(IRQ_ENABLED, 2, 1);
    assert.equal(rtc.read(IRQ_ENABLED, 4), 0);
  });
});

describe('goldfish RTC save/restore', () => {
  function busy() {
    const s = setup();
    s.w(TIME_HIGH, 0x1234);
    s.w(TIME_LOW, 0x5678);
    s.readTime();
    s.w(IRQ_ENABLED, 1);
    s.setAlarm(0x1234_0000_9999n);
    return s;
  }

  it('round-trips through JSON with exact 64-bit values and a negative offset', () => {
    const a = busy();
    const saved = JSON.parse(JSON.stringify(a.rtc.save())) as RtcState;
    const b = setup();
    b.rtc.restore(saved);
    assert.deepEqual(b.rtc.save(), a.rtc.save());
    assert.equal(b.rtc.time(), a.rtc.time());
    assert.equal(b.r(ALARM_STATUS), 1);
    b.clock.t += 0x9999n - 0x5678n;
    b.rtc.poll();
    assert.equal(b.line.level, true);
  });

  it('drives the line from the restored state', () => {
    const a = setup();
    a.w(IRQ_ENABLED, 1);
    a.setAlarm(T0);
    const b = setup();
    b.rtc.restore(a.rtc.save());
    assert.equal(b.line.level, true);
  });

  const corruptions: Array<[string, (s: RtcState) => unknown, RegExp]> = [
    ['an array', () => [], /state must be an object, got an array/],
    ['a missing field', ({ alarm: _a, ...rest }) => rest, /no field "alarm"/],
    ['an unknown field', (s) => ({ ...s, bogus: true }), /unknown field "bogus"/],
    ['offset as a number', (s) => ({ ...s, offset: 5 }), /offset must be a decimal string/],
    ['offset past 64 bits', (s) => ({ ...s, offset: '18446744073709551616' }), /offset must be a decimal string/],
    ['alarm in hex', (s) => ({ ...s, alarm: '0x10' }), /alarm must be a decimal string/],
    ['alarm negative', (s) => ({ ...s, alarm: '-1' }), /alarm must be a decimal string/],
    ['timeHighLatch too big', (s) => ({ ...s, timeHighLatch: 2 ** 32 }), /timeHighLatch must be an integer from 0 to 4294967295/],
    ['timeHighWrite negative', (s) => ({ ...s, timeHighWrite: -1 }), /timeHighWrite must be/],
    ['alarmArmed a string', (s) => ({ ...s, alarmArmed: 'yes' }), /alarmArmed must be true or false/],
    ['irqEnabled null', (s) => ({ ...s, irqEnabled: null }), /irqEnabled must be true or false, got null/],
    ['irqPending a number', (s) => ({ ...s, irqPending: 0 }), /irqPending must be true or false/],
  ];
  for (const [what, corrupt, message] of corruptions) {
    it(`rejects a state with ${what}`, () => {
      const b = setup();
      const before = b.rtc.save();
      assert.throws(
        () => b.rtc.restore(corrupt(busy().rtc.save())),
        (e) => isVirtusError(e, 'BAD_STATE') && e.message.startsWith('rtc: ') && message.test(e.message),
      );
      assert.deepEqual(b.rtc.save(), before);
    });
  }
});
