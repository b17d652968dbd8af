/**
 * One hart in its own host thread (a worker): its Hart over the machine's shared memory, its
 * own engine (interpreter or translator, with its own regions, trampoline and jump cache), and
 * everything else reached through the control block (smp-shared.ts):
 *
 * - device accesses, traps into M-mode (the built-in firmware) and stores to watched pages are
 *   requests to the device thread (hart-threads.ts), which owns every device; the hart waits
 *   for the answer, serving its own request ring meanwhile;
 * - a store into a page of translated code drops the page here and posts a drop to every other
 *   hart's ring before the store completes; they serve their rings between regions, at every
 *   slice, at FENCE.I and while they wait;
 * - WFI sleeps on the wake word (Atomics.wait) until an interrupt line, an IPI or a request
 *   wakes it, or until its own Sstc timer is due; a hart stopped by the firmware sleeps there
 *   until hart_start.
 *
 * Core code: the host gives the thread (host/node/hart-worker.ts) and a clock every thread
 * agrees on.
 */
import { createInterpreter, type Engine } from '../cpu/interp.ts';
import { Hart, PAGE_CODE, PAGE_WATCH, S, type HartHooks, type PhysBus } from '../cpu/hart.ts';
import { PAGE_FLAGS, PAGE_SIZE, RAM_BASE } from '../cpu/layout.ts';
import { JitEngine } from '../jit/engine.ts';
import { Clock, TIMEBASE_HZ } from './clock.ts';
import { publishHartStats } from './hart-stats.ts';
import { Op, QUIT, Req, SmpShared, STOP, type RingHandler } from './smp-shared.ts';
import { COLLECT_AFTER, SweepClock } from './sweep-clock.ts';

/** Instructions a hart runs between two looks at its control words (stop, requests, IPIs). */
export const THREAD_SLICE = 100_000;
/** The longest a hart sleeps in WFI before it looks again (ms). */
const MAX_SLEEP_MS = 1000;

/** What a hart's thread is given (structured-clonable: the memory is shared). */
export interface HartThreadInit {
  memory: WebAssembly.Memory;
  ramSize: number;
  /** Harts of the machine, and this one's id. */
  harts: number;
  id: number;
  engine: 'jit' | 'interp';
  jit?: { threshold?: number; tailCalls?: boolean; exact?: boolean };
  /** Host milliseconds of the stretches after which the idle hart sweeps its translations (sweep-clock.ts). */
  sweepMs?: number;
}

/** What the host gives a hart's thread. */
export interface HartThreadHost {
  /** Monotonic host milliseconds, the same in every thread (the device thread's clock reads it too). */
  hostMs(): number;
  /** After a sweep: frees what this thread let go of (a garbage collection of its own heap). */
  collect?(): void;
}

/**
 * The Hart objects of a hart's thread: its own hart, which takes up the state its block holds,
 * and views of the others (the translator scrubs their write TLB entries for a page that gets
 * code), which write nothing: their owners may be filling their TLBs at that moment.
 */
export function threadHarts(init: HartThreadInit, bus: PhysBus, hooks: HartHooks): Hart[] {
  const flags = new Uint8Array(init.memory.buffer, PAGE_FLAGS, init.ramSize / PAGE_SIZE);
  const all: Hart[] = [];
  for (let i = 0; i < init.harts; i++) {
    all.push(new Hart({ id: i, memory: init.memory, ramSize: init.ramSize, bus, pageFlags: flags, attach: i === init.id, peer: i !== init.id, hooks }));
  }
  return all;
}

/** Runs hart `init.id` until the device thread says quit. */
export function runHartThread(init: HartThreadInit, host: HartThreadHost): void {
  try {
    new HartThread(init, host).run();
  } catch (e) {
    // The device thread must not wait for this hart: it stops the machine.
    new SmpShared(init.memory, init.harts).setDead(init.id);
    throw e;
  }
}

class HartThread {
  private readonly smp: SmpShared;
  private readonly h: Hart;
  private readonly engine: Engine;
  private readonly jit: JitEngine | null;
  private readonly clock: Clock;
  private readonly flags: Uint8Array;
  private readonly id: number;
  private readonly ring: RingHandler;
  private epoch: number;
  private readonly sweeps: SweepClock;

  constructor(
    init: HartThreadInit,
    private readonly host: HartThreadHost,
  ) {
    const { memory, id } = init;
    this.id = id;
    this.smp = new SmpShared(memory, init.harts);
    this.flags = new Uint8Array(memory.buffer, PAGE_FLAGS, init.ramSize / PAGE_SIZE);
    this.clock = new Clock({ deterministic: false, instret: () => 0, state: this.smp.clock, attach: true });
    this.clock.useHostTime(() => host.hostMs());
    const smp = this.smp;
    const serve = this.serveVoid;
    const args = new Int32Array(4);
    const bus: PhysBus = {
      read: (pa, size) => {
        args[0] = pa | 0;
        args[1] = size;
        const v = smp.call(id, Req.MmioRead, args.subarray(0, 2), serve);
        return smp.reply(id, 1) ? v : NaN;
      },
      write: (pa, size, value) => {
        args[0] = pa | 0;
        args[1] = size;
        args[2] = value | 0;
        return smp.call(id, Req.MmioWrite, args.subarray(0, 3), serve) !== 0;
      },
    };
    const all = threadHarts(init, bus, {
      time: () => this.clock.now(),
      ramWatch: (pa, size) => this.stored(pa, size),
      machineTrap: (_h, cause, irq, tvalLo, tvalHi) => this.trap(cause, irq, tvalLo, tvalHi),
      fenceI: () => this.serve(),
    });
    this.h = all[id]!;
    if (init.engine === 'jit') {
      // A hart in a thread never runs deterministically: its slices may end early (JitOptions.exact).
      this.jit = new JitEngine({ hart: this.h, memory, harts: all, exact: false, ...init.jit });
      this.jit.setInbox(smp.w, smp.attentionIndex(id));
      this.engine = this.jit;
    } else {
      this.jit = null;
      this.engine = createInterpreter(this.h);
    }
    const h = this.h;
    const jit = this.jit;
    this.ring = Object.assign(
      (op: Op, a: number, b: number): void => {
        if (op === Op.DropPage) jit?.dropPage(a);
        else if (op === Op.FlushTlb) h.flushTlb();
        else if (op === Op.FlushPage) h.flushTlbPage(a, b);
      },
      { overflow: () => (jit?.dropAll(), h.flushTlb()) },
    );
    this.epoch = smp.epoch();
    this.sweeps = new SweepClock(performance.now(), init.sweepMs);
  }

  private readonly serveVoid = (): void => {
    this.serve();
  };

  /** Serves this hart's ring; true when it held anything (FENCE.I then makes the engine look again). */
  private serve(): boolean {
    const w = this.smp.w;
    if (w[this.smp.pendingIndex(this.id)] === 0) return false;
    this.smp.serve(this.id, this.ring);
    return true;
  }

  /**
   * A store to a flagged RAM page: HTIF's watched page goes to the device thread; a page of
   * translated code is dropped here and in every other hart before the store completes.
   */
  private stored(pa: number, size: number): void {
    const first = Math.floor((pa - RAM_BASE) / PAGE_SIZE);
    const last = Math.floor((pa - RAM_BASE + size - 1) / PAGE_SIZE);
    for (let p = first; p <= last; p++) {
      const f = this.flags[p]!;
      if (f & PAGE_WATCH) {
        this.smp.call(this.id, Req.Watch, [pa | 0, size], this.serveVoid);
      }
      if (f & PAGE_CODE) {
        Atomics.and(this.flags, p, ~PAGE_CODE);
        this.jit?.dropPage(p);
        for (let t = 0; t < this.smp.harts; t++) if (t !== this.id) this.smp.post(t, Op.DropPage, p);
      }
    }
  }

  /** A trap into M-mode: the device thread's firmware takes it; then the fences it asked are waited for. */
  private trap(cause: number, irq: boolean, tvalLo: number, tvalHi: number): boolean {
    const smp = this.smp;
    const id = this.id;
    const handled = smp.call(id, Req.Trap, [cause, irq ? 1 : 0, tvalLo, tvalHi], this.serveVoid) !== 0;
    for (let t = 0; t < smp.harts; t++) {
      const ticket = smp.ticket(id, t);
      if (ticket === 0) continue;
      // The target acknowledges in its own time; this hart serves its ring meanwhile, so two
      // harts fencing each other do not wait for ever.
      while (!smp.acked(t, ticket)) {
        const seen = smp.wakeValue(id);
        smp.awaitAcks(id, t);
        this.serve();
        if (smp.acked(t, ticket)) break;
        smp.sleep(id, seen, 10);
      }
    }
    return handled;
  }

  run(): void {
    const smp = this.smp;
    const id = this.id;
    const h = this.h;
    const s = h.s;
    smp.setReady(id);
    for (;;) {
      const seen = smp.wakeValue(id);
      smp.attend(id);
      this.serve();
      const state = smp.runState();
      if (state === QUIT) return;
      if (state === STOP) {
        this.stop();
        continue;
      }
      if (smp.parked[id]) {
        this.sleep(seen, MAX_SLEEP_MS);
        if (!smp.parked[id]) h.stateChanged(); // hart_start wrote its state from the device thread
        continue;
      }
      const raised = smp.takeRaised(id);
      if (raised) Atomics.or(s, S.mip, raised);
      if (s[S.wfi] !== 0 && !h.wakeable()) {
        const before = performance.now();
        // At least once a stretch it looks again, so that an idle hart sweeps once a stretch.
        this.sleep(seen, Math.min(this.sleepMs(), this.sweeps.ms));
        const now = performance.now();
        this.sweeps.sleep(now - before);
        // Between runs of the engine: an idle hart forgets the translations it no longer runs.
        if (this.sweeps.due(now) && (this.jit?.sweep() ?? 0) >= COLLECT_AFTER) this.host.collect?.();
        continue;
      }
      s[S.wfi] = 0;
      h.checkInterrupts();
      this.engine.run(THREAD_SLICE);
    }
  }

  /**
   * Sleeps until woken after `seen` or `ms` pass, marked asleep meanwhile: a fence asked of a
   * sleeping hart needs no answer (smp-shared.ts acked), as it serves its ring first thing.
   */
  private sleep(seen: number, ms: number): void {
    this.smp.setAsleep(this.id, true);
    this.smp.sleep(this.id, seen, ms);
    this.smp.setAsleep(this.id, false);
  }

  /** Until this hart's Sstc timer is due (other timers are the device thread's: they wake it). */
  private sleepMs(): number {
    const h = this.h;
    if (h.s[S.menvcfg + 1]! >= 0) return MAX_SLEEP_MS;
    const left = h.getNum('stimecmp') - this.clock.now();
    return Math.max(0, Math.min(MAX_SLEEP_MS, (left * 1000) / TIMEBASE_HZ));
  }

  /** Stopped at an instruction boundary until the device thread lets the harts run again. */
  private stop(): void {
    const smp = this.smp;
    const id = this.id;
    publishHartStats(smp.stats(id), this.h, this.jit?.stats ?? null);
    smp.setStopped(id, true);
    for (;;) {
      const seen = smp.wakeValue(id);
      this.serve();
      if (smp.runState() !== STOP) break;
      this.sleep(seen, MAX_SLEEP_MS);
    }
    smp.setStopped(id, false);
    // The device thread may have rewritten this hart while it stood (a restore, a reset, a
    // reboot that made every translation stale).
    if (smp.epoch() !== this.epoch) {
      this.epoch = smp.epoch();
      this.engine.reset();
    }
    this.h.stateChanged();
  }
}
