/**
 * When an idle machine forgets translations (JitEngine.sweep): wall time is cut into stretches
 * of SWEEP_MS, and a stretch in which the hart (or the machine) slept at least half of the time
 * ends with a sweep. A busy machine never sweeps, and a deterministic one never sleeps, so
 * neither changes; nothing a guest sees depends on it. The round-robin run loop (runner.ts),
 * the device thread for hart 0 (hart-threads.ts) and each hart's own thread (hart-thread.ts)
 * keep one each.
 */

/** Host milliseconds of a stretch (the default; RunOptions.sweepMs changes it for tests). */
export const SWEEP_MS = 5000;
/** Translations a sweep must drop for the host to be asked to collect at once. */
export const COLLECT_AFTER = 32;

export class SweepClock {
  private start: number;
  private slept = 0;

  constructor(
    now: number,
    /** Host milliseconds of a stretch. */
    readonly ms = SWEEP_MS,
  ) {
    this.start = now;
  }

  /** The run slept `ms` of the current stretch. */
  sleep(ms: number): void {
    this.slept += ms;
  }

  /** At `now`: true when a stretch ended in which the run mostly slept (sweep now). */
  due(now: number): boolean {
    const length = now - this.start;
    if (length < this.ms) return false;
    const idle = this.slept >= length / 2;
    this.start = now;
    this.slept = 0;
    return idle;
  }
}
