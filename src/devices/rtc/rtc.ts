/**
 * The goldfish real-time clock (Android's goldfish virtual platform, "GOLDFISH-VIRTUAL-HARDWARE"),
 * as on QEMU's virt board at 0x0010_1000: 64-bit nanoseconds since the Unix epoch and one alarm.
 * 32-bit registers:
 *
 *   0x00 TIME_LOW         R: samples the time, returns bits 31:0 and latches bits 63:32 for TIME_HIGH
 *                         W: sets the time to (value written to TIME_HIGH) << 32 | value (QEMU's
 *                            extension, which Linux's rtc-goldfish uses to set the clock)
 *   0x04 TIME_HIGH        R: the latched bits 63:32   W: high half for the next TIME_LOW write
 *   0x08 ALARM_LOW        W: sets bits 31:0 of the alarm and arms it   R: bits 31:0
 *   0x0c ALARM_HIGH       W/R: bits 63:32 of the alarm
 *   0x10 IRQ_ENABLED      W/R: bit 0 lets a fired alarm raise the interrupt line
 *   0x14 CLEAR_ALARM      W: disarms the alarm
 *   0x18 ALARM_STATUS     R: 1 while the alarm is armed
 *   0x1c CLEAR_INTERRUPT  W: lowers the interrupt (acknowledges a fired alarm)
 *
 * Time comes from an injected source, so the board decides between host time and a
 * deterministic clock. The device has no timer of its own: it checks the alarm on every access
 * and in poll(), which the board calls when nsUntilAlarm() says the alarm is due.
 */
import type { Device, IrqLine } from '../device.ts';
import { StateReader, u64State, type Stateful } from '../state.ts';

export const RTC_SIZE = 0x1000;
const TIME_LOW = 0x00;
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08;
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18;
const CLEAR_INTERRUPT = 0x1c;
const U32 = 0xffff_ffffn;

/** Saved RTC state. 64-bit values are decimal strings. */
export interface RtcState {
  /** Guest time minus source time in ns, as a 64-bit two's-complement value (the guest may set the clock back). */
  offset: string;
  /** TIME_HIGH as latched by the last TIME_LOW read. */
  timeHighLatch: number;
  /** Last value written to TIME_HIGH. */
  timeHighWrite: number;
  /** The alarm time in ns since the epoch. */
  alarm: string;
  alarmArmed: boolean;
  irqEnabled: boolean;
  /** An alarm fired and was not yet acknowledged with CLEAR_INTERRUPT. */
  irqPending: boolean;
}

export class GoldfishRtc implements Device, Stateful<RtcState> {
  readonly name = 'rtc';
  readonly size = RTC_SIZE;
  private offset = 0n;
  private timeHighLatch = 0;
  private timeHighWrite = 0;
  private alarm = 0n;
  private alarmArmed = false;
  private irqEnabled = false;
  private irqPending = false;

  /** `now` returns the source time: nanoseconds since the Unix epoch. */
  constructor(
    private readonly irq: IrqLine,
    private readonly now: () => bigint,
  ) {}

  reset(): void {
    // The clock keeps running across a reset (it is battery-backed); the alarm logic does not.
    this.timeHighLatch = this.timeHighWrite = 0;
    this.alarm = 0n;
    this.alarmArmed = this.irqEnabled = this.irqPending = false;
    this.update();
  }

  /** The guest's current time in ns since the epoch. */
  time(): bigint {
    return BigInt.asUintN(64, this.now() + this.offset);
  }

  /** Nanoseconds until the armed alarm is due (0 when due), or Infinity when none is armed. */
  nsUntilAlarm(): number {
    if (!this.alarmArmed) return Infinity;
    const d = this.alarm - this.time();
    return d > 0n ? Number(d) : 0;
  }

  /** Fires the alarm if it is due. */
  poll(): void {
    if (this.alarmArmed && this.time() >= this.alarm) {
      this.alarmArmed = false;
      this.irqPending = true;
      this.update();
    }
  }

  read(offset: number, width: 1 | 2 | 4): number {
    if (width !== 4) return 0;
    this.poll();
    switch (offset) {
      case TIME_LOW: {
        const t = this.time();
        this.timeHighLatch = Number(t >> 32n);
        return Number(t & U32);
      }
      case TIME_HIGH:
        return this.timeHighLatch;
      case ALARM_LOW:
        return Number(this.alarm & U32);
      case ALARM_HIGH:
        return Number(this.alarm >> 32n);
      case IRQ_ENABLED:
        return this.irqEnabled ? 1 : 0;
      case ALARM_STATUS:
        return this.alarmArmed ? 1 : 0;
      default:
        return 0;
    }
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    if (width !== 4) return;
    const v = BigInt(value >>> 0);
    switch (offset) {
      case TIME_LOW: {
        const t = (BigInt(this.timeHighWrite) << 32n) | v;
        this.offset = BigInt.asIntN(64, t - this.now());
        break;
      }
      case TIME_HIGH:
        this.timeHighWrite = value >>> 0;
        break;
      case ALARM_LOW:
        this.alarm = (this.alarm & (U32 << 32n)) | v;
        this.alarmArmed = true;
        break;
      case ALARM_HIGH:
        this.alarm = (v << 32n) | (this.alarm & U32);
        break;
      case IRQ_ENABLED:
        this.irqEnabled = (value & 1) === 1;
        break;
      case CLEAR_ALARM:
        this.alarmArmed = false;
        break;
      case CLEAR_INTERRUPT:
        this.irqPending = false;
        break;
      default:
        return;
    }
    this.poll(); // an alarm set in the past fires at once
    this.update();
  }

  private update(): void {
    this.irq.set(this.irqPending && this.irqEnabled);
  }

  save(): RtcState {
    return {
      offset: u64State(this.offset),
      timeHighLatch: this.timeHighLatch,
      timeHighWrite: this.timeHighWrite,
      alarm: u64State(this.alarm),
      alarmArmed: this.alarmArmed,
      irqEnabled: this.irqEnabled,
      irqPending: this.irqPending,
    };
  }

  restore(state: unknown): void {
    const r = new StateReader('rtc', state, [
      'offset', 'timeHighLatch', 'timeHighWrite', 'alarm', 'alarmArmed', 'irqEnabled', 'irqPending',
    ]);
    const s = {
      offset: BigInt.asIntN(64, r.u64('offset')),
      timeHighLatch: r.uint('timeHighLatch', 0xffff_ffff),
      timeHighWrite: r.uint('timeHighWrite', 0xffff_ffff),
      alarm: r.u64('alarm'),
      alarmArmed: r.bool('alarmArmed'),
      irqEnabled: r.bool('irqEnabled'),
      irqPending: r.bool('irqPending'),
    };
    this.offset = s.offset;
    this.timeHighLatch = s.timeHighLatch;
    this.timeHighWrite = s.timeHighWrite;
    this.alarm = s.alarm;
    this.alarmArmed = s.alarmArmed;
    this.irqEnabled = s.irqEnabled;
    this.irqPending = s.irqPending;
    this.update();
  }
}
