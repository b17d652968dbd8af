/**
 * The CLINT (SiFive core-local interruptor, the layout of the RISC-V ACLINT MSWI and MTIMER
 * devices that QEMU's virt board uses): per-hart msip at 0x0000, mtimecmp at 0x4000, and mtime
 * at 0xbff8. It drives each hart's machine software (MSIP) and timer (MTIP) interrupt lines.
 *
 * The machine counts time in doubles, exact below 2^53 ticks (28.5 years at 10 MHz), and never
 * skips to a deadline beyond (machine.ts). So that a guest cannot make time inexact, a value
 * written to mtime is taken modulo 2^52: time stays exact for at least 14 years after a write.
 */
import type { Device, IrqLine } from '../device.ts';
import { StateReader, u64State, type Stateful } from '../state.ts';

/** The machine's time as the CLINT's mtime shows it, in timer ticks (the machine's Clock implements it). */
export interface MachineTime {
  now(): number;
  /** Makes now() return `ticks` (a write to mtime). */
  set(ticks: number): void;
}

export const CLINT_SIZE = 0x10000;
const MTIMECMP = 0x4000;
const MTIME = 0xbff8;

/**
 * Saved CLINT state, per hart. mtimecmp values are decimal strings: they are 64-bit and the
 * reset value 2^64-1 has no exact Number. mtime is the machine clock's, saved with it.
 */
export interface ClintState {
  msip: number[];
  mtimecmp: string[];
}

export class Clint implements Device, Stateful<ClintState> {
  readonly name = 'clint';
  readonly size = CLINT_SIZE;
  private readonly msip: number[];
  /** mtimecmp per hart as Numbers (2^64-1 rounds up to 2^64: "never"). */
  private readonly mtimecmp: number[];
  private readonly cmpLo: number[];
  private readonly cmpHi: number[];

  constructor(
    private readonly clock: MachineTime,
    private readonly softLines: IrqLine[],
    private readonly timerLines: IrqLine[],
  ) {
    const n = softLines.length;
    this.msip = new Array<number>(n).fill(0);
    this.cmpLo = new Array<number>(n).fill(-1);
    this.cmpHi = new Array<number>(n).fill(-1);
    this.mtimecmp = new Array<number>(n).fill(2 ** 64);
  }

  reset(): void {
    this.msip.fill(0);
    this.cmpLo.fill(-1);
    this.cmpHi.fill(-1);
    this.mtimecmp.fill(2 ** 64);
    for (const l of this.softLines) l.set(false);
    this.update();
  }

  read(offset: number, width: 1 | 2 | 4): number {
    if (width !== 4) return 0;
    if (offset < MTIMECMP) {
      // msip registers from offset 0
      const i = offset >>> 2;
      return i < this.msip.length ? this.msip[i]! : 0;
    }
    if (offset >= MTIMECMP && offset < MTIMECMP + 8 * this.msip.length) {
      const i = (offset - MTIMECMP) >>> 3;
      return offset & 4 ? this.cmpHi[i]! >>> 0 : this.cmpLo[i]! >>> 0;
    }
    if (offset === MTIME || offset === MTIME + 4) {
      const t = this.clock.now();
      return offset === MTIME ? t % 0x1_0000_0000 : Math.floor(t / 0x1_0000_0000) % 0x1_0000_0000;
    }
    return 0;
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    if (width !== 4) return;
    if (offset < MTIMECMP) {
      const i = offset >>> 2;
      if (i < this.msip.length) {
        this.msip[i] = value & 1;
        this.softLines[i]!.set((value & 1) === 1);
      }
      return;
    }
    if (offset >= MTIMECMP && offset < MTIMECMP + 8 * this.msip.length) {
      const i = (offset - MTIMECMP) >>> 3;
      if (offset & 4) this.cmpHi[i] = value | 0;
      else this.cmpLo[i] = value | 0;
      this.mtimecmp[i] = (this.cmpHi[i]! >>> 0) * 0x1_0000_0000 + (this.cmpLo[i]! >>> 0);
      this.update();
      return;
    }
    if (offset === MTIME || offset === MTIME + 4) {
      const t = this.clock.now();
      const lo = offset === MTIME ? value >>> 0 : t % 0x1_0000_0000;
      const hi = offset === MTIME ? Math.floor(t / 0x1_0000_0000) : value >>> 0;
      this.clock.set((hi % 0x10_0000) * 0x1_0000_0000 + lo);
      this.update();
    }
  }

  /** Recomputes each hart's MTIP from the current time (level: mtime >= mtimecmp). */
  update(): void {
    const now = this.clock.now();
    for (let i = 0; i < this.timerLines.length; i++) this.timerLines[i]!.set(now >= this.mtimecmp[i]!);
  }

  /** Earliest mtimecmp in the future (ticks), or Infinity. */
  nextDeadline(): number {
    const now = this.clock.now();
    let d = Infinity;
    for (const c of this.mtimecmp) if (c > now && c < d) d = c;
    return d;
  }

  /** Number of harts served (one msip and one mtimecmp each). */
  get harts(): number {
    return this.msip.length;
  }

  save(): ClintState {
    return {
      msip: [...this.msip],
      mtimecmp: this.cmpLo.map((lo, i) => u64State((BigInt(this.cmpHi[i]! >>> 0) << 32n) | BigInt(lo >>> 0))),
    };
  }

  restore(state: unknown): void {
    const r = new StateReader('clint', state, ['msip', 'mtimecmp']);
    const msip = r.uintArray('msip', this.harts, 1);
    const cmp = r.u64Array('mtimecmp', this.harts);
    for (let i = 0; i < this.harts; i++) {
      this.msip[i] = msip[i]!;
      this.softLines[i]!.set(msip[i] === 1);
      this.cmpLo[i] = Number(cmp[i]! & 0xffff_ffffn) | 0;
      this.cmpHi[i] = Number(cmp[i]! >> 32n) | 0;
      this.mtimecmp[i] = (this.cmpHi[i]! >>> 0) * 0x1_0000_0000 + (this.cmpLo[i]! >>> 0);
    }
    this.update();
  }
}
