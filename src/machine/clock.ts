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
  /**
   * Where the host-driven clock keeps its state (two doubles): shared memory when harts in
   * other threads read the clock (machine/smp-shared.ts). Default: its own.
   */
  state?: Float64Array;
  /**
   * Read `state` as another thread keeps it instead of starting stopped at 0 (a hart's thread):
   * this clock only reads it.
   */
  attach?: boolean;
}

/** Ticks per host millisecond. */
const TICKS_PER_MS = TIMEBASE_HZ / 1000;

export class Clock {
  readonly deterministic: boolean;
  private readonly instret: () => number;
  /** Deterministic mode: ticks added by idle skips, restores and mtime writes. */
  private offset = 0;
  /**
   * Real-time mode: [0] ticks at host time 0 while running (now = host ms x TICKS_PER_MS +
   * [0]); [1] the frozen time while stopped, NaN while running. A reader in another thread
   * reads [1] first: the writer sets [0] before it clears [1].
   */
  private readonly st: Float64Array;
  /** Host milliseconds, monotonic; the same in every thread that reads this clock. */
  private hostMs: () => number = () => performance.now();
  /** Another thread's clock writes the state (ClockOptions.attach). */
  private readonly reader: boolean;

  constructor(o: ClockOptions) {
    this.deterministic = o.deterministic;
    this.instret = o.instret;
    this.st = o.state ?? new Float64Array(2);
    this.reader = o.attach ?? false;
    if (!this.reader) {
      this.st[0] = 0;
      this.st[1] = 0;
    }
  }

  /** Current time in ticks. */
  now(): number {
    if (this.deterministic) return Math.floor(this.instret() / INSNS_PER_TICK) + this.offset;
    const frozen = this.st[1]!;
    if (frozen === frozen) return Math.floor(frozen);
    return Math.floor(this.hostMs() * TICKS_PER_MS + this.st[0]!);
  }

  /**
   * Reads host time from `f` from now on (threads: a source every thread agrees on); the
   * machine's time goes on from where it is.
   */
  useHostTime(f: () => number): void {
    if (this.reader) {
      this.hostMs = f;
      return;
    }
    const running = this.st[1] !== this.st[1];
    this.pause();
    this.hostMs = f;
    if (running) this.resume();
  }

  /** Starts or resumes the host-driven clock. */
  resume(): void {
    const frozen = this.st[1]!;
    if (frozen !== frozen) return;
    this.st[0] = frozen - this.hostMs() * TICKS_PER_MS;
    this.st[1] = NaN;
  }

  /** Freezes the host-driven clock (machine stopped, snapshot in progress). */
  pause(): void {
    if (this.st[1] === this.st[1]) return;
    this.st[1] = this.hostMs() * TICKS_PER_MS + this.st[0]!;
  }

  /** Makes now() return `ticks` (mtime writes, restoring a snapshot). */
  set(ticks: number): void {
    if (this.deterministic) {
      this.offset += ticks - this.now();
      return;
    }
    if (this.st[1] === this.st[1]) this.st[1] = ticks;
    else this.st[0] = this.st[0]! + ticks - this.now();
  }

  /** Deterministic idle: jumps time forward to `ticks` (a WFI with a timer pending). */
  skipTo(ticks: number): void {
    if (ticks > this.now()) this.set(ticks);
  }

  /** Instructions the hart may run before time reaches `ticks` (deterministic mode), at least 1. */
  insnsUntil(ticks: number): number {
    const t = ticks - this.offset;
    const need = t * INSNS_PER_TICK - this.instret();
    return Math.max(1, need);
  }
}
