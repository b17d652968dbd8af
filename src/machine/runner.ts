/**
 * Runs a machine until it stops: slices of guest execution, idling while every hart waits for an
 * interrupt (sleeping on the host clock, or skipping time in deterministic mode), an optional
 * instruction limit, and regular returns to the host event loop so I/O is served.
 * Host specifics (how to sleep and yield) are injected; nothing here imports Node or the DOM.
 */
import { TIMEBASE_HZ } from './clock.ts';
import { canThread, HartThreads, type HartThreadStarter } from './hart-threads.ts';
import { COLLECT_AFTER, SweepClock } from './sweep-clock.ts';
import type { Machine, MachineExit } from './machine.ts';

export interface RunnerHost {
  /** Lets the host's event loop run (pending I/O, timers). */
  yield(): Promise<void>;
  /** Sleeps up to `ms` milliseconds, or until wake() is called. */
  sleep(ms: number): Promise<void>;
  /** Ends a sleep now: host input arrived, or the machine must stop idling (a pause, a quit). */
  wake(): void;
  /**
   * Optional: gives memory the machine let go of back to the system now (a garbage collection,
   * the allocator's free pages), after a sweep dropped translations.
   */
  collect?(): void;
  /**
   * Present when the host can run harts in threads of their own (Node's worker_threads): a
   * machine with several harts on shared memory, not deterministic, then runs each hart in
   * its own thread (hart-threads.ts); otherwise they take turns on this one.
   */
  readonly threads?: HartThreadStarter;
}

export interface RunOptions {
  /** Stop after exactly this many instructions (total). */
  maxInsns?: number;
  /** Instructions per slice (upper bound). */
  sliceInsns?: number;
  /** Host milliseconds between returns to the event loop. */
  yieldMs?: number;
  /**
   * True while the host cannot take more console output (optional): the guest does not run
   * until it can. A deterministic machine waits this way instead of letting its devices see
   * the host's pace, which would make what the guest does depend on how fast it is read.
   */
  outputFull?: () => boolean;
  /** Host milliseconds of the stretches after which an idle machine sweeps its translations (default SWEEP_MS). */
  sweepMs?: number;
}

/** The longest idle sleep between two looks at the machine (ms). */
const MAX_IDLE_MS = 1000;

export { SWEEP_MS } from './sweep-clock.ts';

/** Exit code for a run stopped by --max-insns (as timeout(1) uses for a reached limit). */
export const EXIT_MAX_INSNS = 124;

export class Runner {
  private stopRequested = false;
  /** The harts' threads, once the machine runs them so (null: round-robin on this thread). */
  private threaded: HartThreads | null = null;
  /**
   * Percent of wall time the guest idles (auto-converge during a migration, as QEMU's
   * cpu-throttle): after each stretch of running it sleeps that stretch × t / (100 − t).
   * Guest time is virtual, so a throttled guest sees nothing but a slower host.
   */
  throttle = 0;

  constructor(
    readonly machine: Machine,
    private readonly host: RunnerHost,
  ) {}

  /** The stretches of wall time after which an idle machine sweeps its translations. */
  private sweeps = new SweepClock(0);

  /** Asks the run loop to return at the next slice boundary (for stop/quit). */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** Runs until the guest stops the machine, the limit is reached, or requestStop(). */
  async run(o: RunOptions = {}): Promise<MachineExit | null> {
    const m = this.machine;
    const slice = o.sliceInsns ?? 1_000_000;
    const yieldMs = o.yieldMs ?? 10;
    const max = o.maxInsns ?? Infinity;
    this.stopRequested = false;
    // An exact instruction limit needs the harts' turns on one thread.
    if (!this.threaded && this.host.threads && o.maxInsns === undefined && canThread(m)) {
      this.threaded = new HartThreads(m, this.host.threads, o.sweepMs);
    }
    if (this.threaded) return this.runThreads(this.threaded, yieldMs);
    m.clock.resume();
    try {
      let lastYield = performance.now();
      this.sweeps = new SweepClock(lastYield, o.sweepMs);
      while (!m.exit && !this.stopRequested) {
        const done = m.instret();
        if (done >= max) {
          m.stop({ code: EXIT_MAX_INSNS, reason: 'max-insns', message: `stopped after ${max} instructions (--max-insns)` });
          break;
        }
        if (o.outputFull?.()) {
          await this.host.sleep(50); // woken when the host's output drains
          lastYield = performance.now();
          continue;
        }
        const n = m.slice(Math.min(slice, max - done));
        if (n === 0 && this.isIdle()) {
          const d = m.nextDeadline();
          if (m.clock.deterministic) {
            if (d === Infinity) {
              m.stop({ code: 1, reason: 'fatal', message: 'the guest waits for an interrupt that can never arrive' });
              break;
            }
            m.clock.skipTo(d);
            continue;
          }
          // Until the next timer: whatever else can wake the guest (input, frames, an action)
          // calls wake(). The cap only bounds what a source that forgot to costs.
          const ms = d === Infinity ? MAX_IDLE_MS : Math.max(0, ((d - m.clock.now()) * 1000) / TIMEBASE_HZ);
          const before = performance.now();
          await this.host.sleep(Math.min(ms, MAX_IDLE_MS));
          lastYield = performance.now();
          this.sweeps.sleep(lastYield - before);
          this.endStretch(lastYield);
          continue;
        }
        const now = performance.now();
        if (now - lastYield >= yieldMs) {
          if (this.throttle > 0) await this.idle(((now - lastYield) * this.throttle) / (100 - this.throttle));
          else await this.host.yield();
          lastYield = performance.now();
          this.endStretch(lastYield);
        }
      }
    } finally {
      m.clock.pause();
    }
    return m.exit;
  }

  /** At the end of a stretch in which the machine mostly slept, sweeps its translations. */
  private endStretch(now: number): void {
    if (this.sweeps.due(now) && this.machine.sweepTranslations() >= COLLECT_AFTER) this.host.collect?.();
  }

  /** The run with harts in threads; a machine that stopped for good ends them. */
  private async runThreads(t: HartThreads, yieldMs: number): Promise<MachineExit | null> {
    const exit = await t.run(this.host, () => this.stopRequested, yieldMs, () => this.throttle);
    if (exit && exit.reason !== 'reboot') {
      t.quit();
      this.threaded = null;
    }
    return exit;
  }

  /** Sleeps `ms` for the throttle (woken early only to stop). */
  private async idle(ms: number): Promise<void> {
    const until = performance.now() + ms;
    for (let left = ms; left > 0 && !this.stopRequested; left = until - performance.now()) await this.host.sleep(left);
  }

  private isIdle(): boolean {
    return this.machine.allIdle();
  }
}
