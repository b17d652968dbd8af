/**
 * The machine's notion of time: what the guest's `time` CSR and CLINT mtime read. Time is
 * virtual. Interactive runs follow the host clock (frozen while the machine is paused);
 * deterministic runs derive time from the retired-instruction count alone, so two runs of the
 * same guest see the same times and produce the same output.
 */

/** Timer ticks per second (QEMU virt's timebase-frequency). */
export const TIMEBASE_HZ = 10_000_000;
/** In deterministic mode, instructions per timer tick (a 100 MIPS virtual hart). */
export const INSNS_PER_TICK = 10;

export interface ClockOptions {
  deterministic: boolean;
  /** Instructions retired by the machine so far (deterministic time source). */
  instret: () => number;
}

export class Clock {
  readonly deterministic: boolean;
  private readonly instret: () => number;
  /** Ticks added by idle skips (deterministic) or by restores and mtime writes. */
  private offset = 0;
  /** Host ms at which the current running period began, or -1 while paused. */
  private runningSince = -1;
  /** Ticks accumulated before the current running period (real-time mode). */
  private banked = 0;

  constructor(o: ClockOptions) {
    this.deterministic = o.deterministic;
    this.instret = o.instret;
  }

  /** Current time in ticks. */
  now(): number {
    if (this.deterministic) return Math.floor(this.instret() / INSNS_PER_TICK) + this.offset;
    const running = this.runningSince < 0 ? 0 : (performance.now() - this.runningSince) * (TIMEBASE_HZ / 1000);
    return Math.floor(this.banked + running) + this.offset;
  }

  /** Starts or resumes the host-driven clock. */
  resume(): void {
    if (this.runningSince < 0) this.runningSince = performance.now();
  }

  /** Freezes the host-driven clock (machine stopped, snapshot in progress). */
  pause(): void {
    if (this.runningSince < 0) return;
    this.banked += (performance.now() - this.runningSince) * (TIMEBASE_HZ / 1000);
    this.runningSince = -1;
  }

  /** Makes now() return `ticks` (mtime writes, restoring a snapshot). */
  set(ticks: number): void {
    this.offset += ticks - this.now();
  }

  /** Deterministic idle: jumps time forward to `ticks` (a WFI with a timer pending). */
  skipTo(ticks: number): void {
    const now = this.now();
    if (ticks > now) this.offset += ticks - now;
  }

  /** Instructions the hart may run before time reaches `ticks` (deterministic mode), at least 1. */
  insnsUntil(ticks: number): number {
    const t = ticks - this.offset;
    const need = t * INSNS_PER_TICK - this.instret();
    return Math.max(1, need);
  }
}
