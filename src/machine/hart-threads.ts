/**
 * The device thread of a machine whose harts run in host threads (hart-thread.ts), one thread
 * per hart over the shared memory. This thread keeps every device, the built-in firmware, the
 * clock's writer and the host's I/O; it serves the harts' requests (smp-shared.ts), runs the
 * slice hooks (timers, console input, virtio polling) and sleeps on its doorbell between them:
 * synchronously while harts run (returning to the host's event loop every `yieldMs`), on the
 * event loop when every hart waits, so an idle machine costs no host CPU.
 *
 * It is also what the machine's firmware and migration use to reach the harts: an IPI is a bit
 * the target folds into its own mip; a remote fence is a request in the target's ring that the
 * caller waits for (the hart's thread waits, after its SBI call, for the tickets the call
 * left it); `stopped(f)` stops every hart at an instruction boundary (snapshots, the dirty log).
 */
import { PAGE_CODE, S, type Hart, type HartHooks } from '../cpu/hart.ts';
import { PAGE_SIZE, RAM_BASE } from '../cpu/layout.ts';
import { TIMEBASE_HZ } from './clock.ts';
import { takeHartStats } from './hart-stats.ts';
import { THREAD_SLICE, type HartThreadInit } from './hart-thread.ts';
import type { HartThreadsControl, Machine, MachineExit } from './machine.ts';
import { directHarts, type RemoteHarts } from './sbi/sbi.ts';
import { Op, QUIT, Req, RUN, SPIN_MS, STOP, type RingHandler, type SmpShared } from './smp-shared.ts';
import { COLLECT_AFTER, SweepClock, SWEEP_MS } from './sweep-clock.ts';

/** A hart's thread as the host made it. */
export interface HartThreadHandle {
  /** Ends the thread (after it has returned from runHartThread, or at once). */
  terminate(): void;
}

/** What a host that can run harts in threads gives the run loop (Node: host/node/hart-worker.ts). */
export interface HartThreadStarter {
  /** Starts a thread running runHartThread(init). */
  startHart(init: HartThreadInit): HartThreadHandle;
  /** Monotonic host milliseconds, the same in every thread. */
  hostMs(): number;
}

/** The run loop's side of the host while threads run (runner.ts RunnerHost). */
export interface ThreadLoopHost {
  yield(): Promise<void>;
  sleep(ms: number): Promise<void>;
  wake(): void;
  /** After a sweep: gives what the machine let go of back to the system (runner.ts RunnerHost). */
  collect?(): void;
}

/** The most pages a remote SFENCE.VMA flushes one by one (as sbi.ts); beyond, the whole TLB. */
const RFENCE_PAGES = 64;
/** The longest the device thread waits for a hart's thread to load (ms). */
const READY_MS = 60_000;
/** Hart 0's slices on the interpreter, which does not look at the attention word. */
const INTERP_SLICE = 10_000;
/** The longest the device thread sleeps with nothing due (ms). */
const MAX_IDLE_MS = 1000;

/** True when `m` can run its harts in threads on a host that offers them. */
export function canThread(m: Machine): boolean {
  return m.harts.length > 1 && !m.clock.deterministic && m.gate === null &&
    typeof SharedArrayBuffer !== 'undefined' && m.memory.buffer instanceof SharedArrayBuffer;
}

export class HartThreads implements HartThreadsControl, RemoteHarts {
  private readonly smp: SmpShared;
  private readonly threads: HartThreadHandle[] = [];
  /** The hart whose trap is being served, or -1; and the tickets its call must wait for. */
  private caller = -1;
  private readonly tickets = new Int32Array(8);
  private readonly ret = new Int32Array(2);
  /** Hart 0's ring handler (this thread runs hart 0), and the trap hook it had. */
  private readonly ring0: RingHandler;
  private readonly trap0: HartHooks['machineTrap'];
  private readonly slice0: number;

  constructor(
    private readonly m: Machine,
    starter: HartThreadStarter,
    /** Host milliseconds of the stretches after which idle harts sweep (sweep-clock.ts). */
    private readonly sweepMs = SWEEP_MS,
  ) {
    this.smp = m.smp;
    this.smp.setRunState(STOP);
    m.clock.useHostTime(() => starter.hostMs());
    m.remote = this;
    m.threads = this;
    m.codeHook = (pa, size) => this.codeWritten(pa, size);
    m.wakeHart = (i) => this.smp.wake(i);
    m.hartThreads = m.harts.length - 1;
    // Hart 0 runs here, between requests: its device accesses are calls, as with one thread
    // (the boot's console output is hart 0's), and the others' requests make it leave its
    // engine at the next block (its attention word is set with the doorbell).
    this.smp.setHostHart(0);
    const h0 = m.harts[0]!;
    const jit0 = m.jits[0] ?? null;
    jit0?.setInbox(this.smp.w, this.smp.attentionIndex(0));
    // The interpreter has no attention check: shorter slices bound the others' wait.
    this.slice0 = jit0 ? THREAD_SLICE : INTERP_SLICE;
    this.ring0 = Object.assign(
      (op: Op, a: number, b: number): void => {
        if (op === Op.DropPage) jit0?.dropPage(a);
        else if (op === Op.FlushTlb) h0.flushTlb();
        else if (op === Op.FlushPage) h0.flushTlbPage(a, b);
      },
      { overflow: () => (jit0?.dropAll(), h0.flushTlb()) },
    );
    const hooks = h0.hooks;
    const trap0 = (this.trap0 = hooks.machineTrap);
    hooks.machineTrap = (h, cause, irq, tvalLo, tvalHi) => {
      if (h !== h0 || !trap0) return trap0?.(h, cause, irq, tvalLo, tvalHi) ?? false;
      this.caller = 0;
      this.tickets.fill(0);
      let handled: boolean;
      try {
        handled = trap0(h, cause, irq, tvalLo, tvalHi);
      } finally {
        this.caller = -1;
      }
      this.waitTickets(this.tickets.slice());
      return handled;
    };
    for (let id = 1; id < m.harts.length; id++) {
      this.threads.push(starter.startHart({
        memory: m.memory, ramSize: m.ram.size, harts: m.harts.length, id, engine: m.engineKind, sweepMs,
        ...(m.jitOptions ? { jit: m.jitOptions } : {}),
      }));
    }
  }

  /**
   * Runs the harts until the guest stops the machine or `stop()` says so; returns with every
   * hart stopped at an instruction boundary.
   */
  async run(host: ThreadLoopHost, stop: () => boolean, yieldMs: number, throttle: () => number = () => 0): Promise<MachineExit | null> {
    const m = this.m;
    const smp = this.smp;
    // Harts already running (firmware and bare boots start them all; a restored machine) wait
    // for their threads with hart 0, so that none of them seems stalled to the others.
    for (let i = 1; i < m.harts.length; i++) if (!m.parked[i]) this.awaitReady(i);
    m.clock.resume();
    smp.setRunState(RUN);
    try {
      let lastYield = performance.now();
      const h0 = m.harts[0]!;
      // Hart 0's translations go when every hart slept through most of a stretch (the others'
      // threads sweep their own, hart-thread.ts).
      const sweeps = new SweepClock(lastYield, this.sweepMs);
      while (!m.exit && !stop()) {
        const seen = smp.doorbell();
        smp.attend(0);
        const served = this.serveAll();
        smp.serve(0, this.ring0);
        m.clint.update();
        m.runSliceHooks();
        for (let i = 1; i < m.harts.length; i++) {
          if (smp.dead(i)) m.stop({ code: 70, reason: 'fatal', message: `internal error: hart ${i}'s thread failed` });
        }
        if (m.exit) break;
        const now = performance.now();
        if (!m.idle(0)) {
          h0.s[S.wfi] = 0;
          h0.checkInterrupts();
          m.engines[0]!.run(this.slice0);
          if (now - lastYield >= yieldMs) {
            await this.yieldOrThrottle(host, stop, now - lastYield, throttle());
            lastYield = performance.now();
          }
          continue;
        }
        const d = m.nextDeadline();
        const due = d === Infinity ? MAX_IDLE_MS : Math.max(0, ((d - m.clock.now()) * 1000) / TIMEBASE_HZ);
        if (m.allIdle()) {
          // Every hart sleeps: so does this thread, on the event loop (host input, a request,
          // a timer or an action wake it).
          const ms = Math.min(due, MAX_IDLE_MS);
          if (ms > 0) {
            await Promise.race([smp.waitDoorbellAsync(seen, ms), host.sleep(ms)]);
            host.wake();
          } else await host.yield();
          sweeps.sleep(performance.now() - now);
          lastYield = performance.now();
          if (sweeps.due(lastYield) && (m.jits[0]?.sweep() ?? 0) >= COLLECT_AFTER) host.collect?.();
          continue;
        }
        const left = yieldMs - (now - lastYield);
        if (left <= 0) {
          await this.yieldOrThrottle(host, stop, now - lastYield, throttle());
          lastYield = performance.now();
          continue;
        }
        if (served) {
          // More requests tend to follow the one just served: spin a moment before sleeping.
          const until = now + SPIN_MS;
          while (smp.doorbell() === seen && performance.now() < until) {}
        }
        if (smp.doorbell() === seen) smp.waitDoorbell(seen, Math.min(left, due));
      }
    } finally {
      this.stopAll();
      m.clock.pause();
    }
    return m.exit;
  }

  /**
   * Returns to the event loop after a stretch of `ran` ms; with a throttle of `t` percent
   * (auto-converge, runner.ts), stops every hart for ran × t / (100 − t) ms first.
   */
  private async yieldOrThrottle(host: ThreadLoopHost, stop: () => boolean, ran: number, t: number): Promise<void> {
    if (t <= 0) return host.yield();
    this.stopAll();
    const until = performance.now() + (ran * t) / (100 - t);
    for (let left = until - performance.now(); left > 0 && !stop(); left = until - performance.now()) await host.sleep(left);
    this.smp.setRunState(RUN);
  }

  /**
   * Ends the harts' threads (the machine is done) and gives the harts back to this thread: the
   * firmware acts on them directly again, and their derived state is rebuilt.
   */
  quit(): void {
    this.smp.setRunState(QUIT);
    for (const t of this.threads) t.terminate();
    const m = this.m;
    m.remote = directHarts;
    m.threads = null;
    m.codeHook = null;
    m.wakeHart = null;
    m.harts[0]!.hooks.machineTrap = this.trap0;
    this.smp.setHostHart(-1);
    for (const h of m.harts) h.stateChanged();
  }

  stopped<T>(f: () => T): T {
    const was = this.smp.runState() === RUN;
    this.stopAll();
    try {
      return f();
    } finally {
      if (was) this.smp.setRunState(RUN);
    }
  }

  /**
   * Waits, on this thread, until every target of hart 0's SBI call has acknowledged it,
   * serving the other harts' requests and hart 0's own ring meanwhile (a target may be waiting
   * for either).
   */
  private waitTickets(tickets: Int32Array): void {
    const smp = this.smp;
    for (let t = 1; t < this.m.harts.length; t++) {
      const ticket = tickets[t]!;
      if (ticket === 0) continue;
      while (!smp.acked(t, ticket)) {
        const seen = smp.doorbell();
        smp.awaitAcks(0, t);
        this.serveAll();
        smp.serve(0, this.ring0);
        if (smp.acked(t, ticket)) break;
        smp.waitDoorbell(seen, 5);
      }
    }
    if (tickets[0] !== 0) smp.serve(0, this.ring0);
  }

  /** Stops every hart at an instruction boundary, serving their requests until they all have. */
  private stopAll(): void {
    const smp = this.smp;
    if (smp.runState() !== STOP) smp.setRunState(STOP);
    for (;;) {
      const seen = smp.doorbell();
      this.serveAll();
      smp.serve(0, this.ring0);
      let all = true;
      for (let i = 1; i < this.m.harts.length; i++) if (!smp.stopped(i)) all = false;
      if (all) {
        for (let i = 1; i < this.m.harts.length; i++) takeHartStats(smp.stats(i), this.m.harts[i]!, this.m.jits[i]?.stats ?? null);
        return;
      }
      smp.waitDoorbell(seen, 5);
    }
  }

  /** Serves every posted request. */
  private serveAll(): number {
    let n = 0;
    const smp = this.smp;
    const m = this.m;
    const ret = this.ret;
    for (let i = 0; i < m.harts.length; i++) {
      const kind = smp.posted(i);
      if (kind === 0) continue;
      n++;
      switch (kind) {
        case Req.MmioRead: {
          const v = m.bus.read(smp.arg(i, 0) >>> 0, smp.arg(i, 1) as 1 | 2 | 4);
          ret[0] = v === v ? v | 0 : 0;
          ret[1] = v === v ? 1 : 0;
          smp.answer(i, ret, null);
          break;
        }
        case Req.MmioWrite:
          ret[0] = m.bus.write(smp.arg(i, 0) >>> 0, smp.arg(i, 1) as 1 | 2 | 4, smp.arg(i, 2)) ? 1 : 0;
          smp.answer(i, ret.subarray(0, 1), null);
          break;
        case Req.Trap: {
          this.caller = i;
          this.tickets.fill(0);
          try {
            const handled = m.machineTrap?.(m.harts[i]!, smp.arg(i, 0), smp.arg(i, 1) !== 0, smp.arg(i, 2), smp.arg(i, 3)) ?? false;
            ret[0] = handled ? 1 : 0;
          } finally {
            this.caller = -1;
          }
          smp.answer(i, ret.subarray(0, 1), this.tickets);
          break;
        }
        case Req.Watch:
          m.watched(smp.arg(i, 0) >>> 0, smp.arg(i, 1));
          smp.answer(i, ret.subarray(0, 0), null);
          break;
        default:
          smp.answer(i, ret.subarray(0, 0), null);
      }
    }
    return n;
  }

  /** Hart 0, DMA or a loader wrote RAM: every hart drops its translations of the pages touched. */
  private codeWritten(pa: number, size: number): void {
    const flags = this.m.pageFlags;
    const first = Math.max(0, Math.floor((pa - RAM_BASE) / PAGE_SIZE));
    const last = Math.min(flags.length - 1, Math.floor((pa - RAM_BASE + size - 1) / PAGE_SIZE));
    for (let p = first; p <= last; p++) {
      if (!(flags[p]! & PAGE_CODE)) continue;
      Atomics.and(flags, p, ~PAGE_CODE);
      this.m.jits[0]?.dropPage(p); // hart 0 runs on this thread: before the writer goes on
      for (let t = 1; t < this.m.harts.length; t++) this.smp.post(t, Op.DropPage, p);
    }
  }

  // ---- RemoteHarts: the firmware's view ----

  raise(t: Hart, bits: number): void {
    // The caller waits for this answer: its mip is this thread's to write until then; hart 0's
    // always is.
    if (t.id === this.caller || t.id === 0) Atomics.or(t.s, S.mip, bits);
    else this.smp.raise(t.id, bits);
  }

  sfenceVma(t: Hart, start: number, size: number): void {
    if (size === 0 || size > RFENCE_PAGES * PAGE_SIZE) {
      this.tickets[t.id] = this.smp.post(t.id, Op.FlushTlb);
      return;
    }
    for (let va = start - (start % PAGE_SIZE); va < start + size; va += PAGE_SIZE) {
      this.tickets[t.id] = this.smp.post(t.id, Op.FlushPage, va % 0x1_0000_0000 | 0, Math.floor(va / 0x1_0000_0000) | 0);
    }
  }

  fenceI(t: Hart): void {
    this.tickets[t.id] = this.smp.post(t.id, Op.FenceI);
  }

  started(t: Hart): void {
    // A kernel gives a started hart a second to come online: its thread must be there to run it.
    this.awaitReady(t.id);
    this.smp.wake(t.id);
  }

  /**
   * Waits (serving the others' requests) until hart `i`'s thread has loaded, or has failed, or
   * READY_MS have passed: a thread loads this program first, which takes most of a second.
   */
  private awaitReady(i: number): void {
    const smp = this.smp;
    const until = performance.now() + READY_MS;
    while (i > 0 && !smp.ready(i) && !smp.dead(i) && performance.now() < until) {
      const seen = smp.doorbell();
      this.serveAll();
      if (!smp.ready(i)) smp.waitDoorbell(seen, 10);
    }
  }
}
