/**
 * The control block of harts running in host threads (machine/hart-threads.ts): words in the
 * machine's shared memory (layout.ts SMP_AREA) that the device thread and every hart's thread
 * read and write with Atomics. Per hart:
 *
 * - a **wake word**: bumped and notified by anything that may concern the hart (an interrupt
 *   line, an IPI, a request, a reply, a stop); the hart sleeps on it (WFI, waiting for a reply);
 * - a **mailbox**: one request at a time from the hart to the device thread (an MMIO access, a
 *   trap into M-mode for the built-in firmware, a watched store), and its reply;
 * - a **request ring** to the hart (drop translated code of a page, flush the TLB or a page of
 *   it, FENCE.I), with many producers: a producer gets a ticket, the hart acknowledges tickets
 *   in order (`done`), and a producer that must wait for its acknowledgement says so in the
 *   hart's `waiters` mask, which the hart wakes when it has caught up;
 * - the IPI bits to fold into `mip` (the hart folds them itself: `mip` is its own to write).
 *
 * Globally: the device thread's doorbell (bumped by every mailbox request), the run word (the
 * device thread stops every hart at an instruction boundary with it), the engine epoch (moved
 * when a reset makes every translation stale), the clock's state (clock.ts) and the HSM
 * "parked" flags.
 */
import { MAX_HARTS, SMP_AREA, SMP_BYTES } from '../cpu/layout.ts';

/** Global words. */
const G_DOORBELL = 0;
const G_RUN = 1;
const G_EPOCH = 2;
const G_HOST_HART = 3;
/** Byte offsets of the clock's doubles and the parked flags. */
const CLOCK_OFF = 64;
const PARKED_OFF = 128;
const HARTS_OFF = 256;

/** Run states (SmpShared.runState). */
export const STOP = 0;
export const RUN = 1;
export const QUIT = 2;

/** Requests one hart sends the device thread (the mailbox's kind word). */
export const enum Req {
  /** args: pa, size; reply: value (NaN as ok = 0). */
  MmioRead = 1,
  /** args: pa, size, value; reply: ok. */
  MmioWrite = 2,
  /** args: cause, interrupt, tvalLo, tvalHi; reply: handled; the tickets to wait for. */
  Trap = 3,
  /** args: pa, size: a store to a PAGE_WATCH page (HTIF). */
  Watch = 4,
}

/** Requests to a hart (the ring's entries). */
export const enum Op {
  /** a: RAM page: drop its translations. */
  DropPage = 1,
  /** Flush the whole TLB. */
  FlushTlb = 2,
  /** a, b: virtual address low and high: flush one page of the TLB. */
  FlushPage = 3,
  /** Nothing to do but acknowledge (a remote FENCE.I: the ring's pages were dropped before). */
  FenceI = 4,
}

const RING = 512;
/** Per-hart words. */
const H_WAKE = 0;
const H_STATE = 1;
const H_MBOX = 2;
const H_KIND = 3;
const H_ARG = 4;
const H_RET = 12;
const H_IPI = 16;
const H_PENDING = 17;
const H_HEAD = 18;
const H_DONE = 19;
const H_OVERFLOW = 20;
const H_WAITERS = 21;
const H_ATTN = 22;
const H_ASLEEP = 23;
const H_TICKETS = 24;
const H_READY = 32;
const H_RING = 64;
const HART_WORDS = H_RING + RING * 4;

/**
 * How long a hart spins for its reply, and the device thread for the next request, before
 * they sleep (ms): a sleep and a wake cost tens of microseconds each way.
 */
export const SPIN_MS = 0.05;

/** Mailbox states. */
const IDLE = 0;
const POSTED = 1;
const REPLIED = 2;

/** Per-hart counters a hart's thread publishes when it stops (--stats): STATS_SLOTS doubles each. */
const STATS_OFF = HARTS_OFF + MAX_HARTS * HART_WORDS * 4;
export const STATS_SLOTS = 64;

if (STATS_OFF + MAX_HARTS * STATS_SLOTS * 8 > SMP_BYTES) throw new Error('smp-shared: the control block does not fit');

/** What a hart does with the requests of its ring (hart-thread.ts). */
export interface RingHandler {
  (op: Op, a: number, b: number): void;
  /** The ring overflowed: everything it may have asked (drop all translations, flush the TLB). */
  overflow(): void;
}

export class SmpShared {
  /** Every word of the block. */
  readonly w: Int32Array;
  /** The clock's state (clock.ts). */
  readonly clock: Float64Array;
  /** Per-hart "stopped by the firmware" flags (Machine.parked). */
  readonly parked: Uint8Array;

  private readonly memory: WebAssembly.Memory;

  constructor(
    memory: WebAssembly.Memory,
    readonly harts: number,
  ) {
    this.memory = memory;
    this.w = new Int32Array(memory.buffer, SMP_AREA, SMP_BYTES / 4);
    this.clock = new Float64Array(memory.buffer, SMP_AREA + CLOCK_OFF, 2);
    this.parked = new Uint8Array(memory.buffer, SMP_AREA + PARKED_OFF, MAX_HARTS);
  }

  /** Hart `i`'s published counters (hart-thread.ts writes them, the device thread reads them). */
  stats(i: number): Float64Array {
    return new Float64Array(this.memory.buffer, SMP_AREA + STATS_OFF + i * STATS_SLOTS * 8, STATS_SLOTS);
  }

  private at(i: number, word: number): number {
    return HARTS_OFF / 4 + i * HART_WORDS + word;
  }

  // ---- waking ----

  /** Wakes hart `i` (anything that may concern it changed), and asks a running one to look. */
  wake(i: number): void {
    Atomics.store(this.w, this.at(i, H_ATTN), 1);
    const k = this.at(i, H_WAKE);
    Atomics.add(this.w, k, 1);
    Atomics.notify(this.w, k);
    // The device thread's own hart sleeps on the doorbell.
    if (Atomics.load(this.w, G_HOST_HART) === i) this.ring();
  }

  /** The hart the device thread runs itself (hart-threads.ts), or -1. */
  setHostHart(i: number): void {
    Atomics.store(this.w, G_HOST_HART, i);
  }

  /** The value of hart `i`'s wake word, to wait on after checking what it waits for. */
  wakeValue(i: number): number {
    return Atomics.load(this.w, this.at(i, H_WAKE));
  }

  /** Sleeps hart `i` until woken after `seen`, or `ms` pass. */
  sleep(i: number, seen: number, ms: number): void {
    Atomics.wait(this.w, this.at(i, H_WAKE), seen, ms);
  }

  /** The device thread's doorbell value (bumped by every request). */
  doorbell(): number {
    return Atomics.load(this.w, G_DOORBELL);
  }

  /** Rings the device thread's doorbell (and makes the hart it runs leave its engine to answer). */
  ring(): void {
    const hh = Atomics.load(this.w, G_HOST_HART);
    if (hh >= 0) Atomics.store(this.w, this.at(hh, H_ATTN), 1);
    Atomics.add(this.w, G_DOORBELL, 1);
    Atomics.notify(this.w, G_DOORBELL);
  }

  /** Waits on the doorbell (device thread, synchronously) while it reads `seen`, at most `ms`. */
  waitDoorbell(seen: number, ms: number): void {
    Atomics.wait(this.w, G_DOORBELL, seen, ms);
  }

  /** The same without blocking the thread (a promise that settles on a ring or after `ms`). */
  waitDoorbellAsync(seen: number, ms: number): Promise<unknown> {
    const wa = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: unknown } }).waitAsync;
    const r = wa(this.w, G_DOORBELL, seen, ms);
    return r.async ? (r.value as Promise<unknown>) : Promise.resolve(r.value);
  }

  // ---- running and stopping ----

  /** What the harts should do: run (RUN), stop at an instruction boundary (STOP), or end their threads (QUIT). */
  runState(): number {
    return Atomics.load(this.w, G_RUN);
  }

  /** Tells every hart what to do (runState) and wakes them. */
  setRunState(st: number): void {
    Atomics.store(this.w, G_RUN, st);
    for (let i = 0; i < this.harts; i++) this.wake(i);
  }

  /** A hart says it has stopped (1) at an instruction boundary, or runs again (0). */
  setStopped(i: number, stopped: boolean): void {
    Atomics.store(this.w, this.at(i, H_STATE), stopped ? 1 : 0);
    this.ring();
  }

  /** True when hart `i` stands at an instruction boundary (or its thread has failed). */
  stopped(i: number): boolean {
    return Atomics.load(this.w, this.at(i, H_STATE)) !== 0;
  }

  /** Hart `i`'s thread is up (it has loaded and built its hart and engine). */
  setReady(i: number): void {
    Atomics.store(this.w, this.at(i, H_READY), 1);
    this.ring();
  }

  ready(i: number): boolean {
    return Atomics.load(this.w, this.at(i, H_READY)) === 1;
  }

  /** Hart `i`'s thread failed (an internal error): it will never run or answer again. */
  setDead(i: number): void {
    Atomics.store(this.w, this.at(i, H_STATE), 2);
    this.ring();
  }

  dead(i: number): boolean {
    return Atomics.load(this.w, this.at(i, H_STATE)) === 2;
  }

  /** The engine epoch: moved when every translation became stale (a machine reset). */
  epoch(): number {
    return Atomics.load(this.w, G_EPOCH);
  }

  bumpEpoch(): void {
    Atomics.add(this.w, G_EPOCH, 1);
  }

  // ---- the mailbox, hart side ----

  /**
   * Posts request `kind` from hart `i` and waits for the reply, running `serve` (the hart's own
   * ring) while it waits: a hart waiting here may be the one another waits for. Returns the
   * first reply word; `reply(k)` reads the others.
   */
  call(i: number, kind: Req, args: ArrayLike<number>, serve: () => void): number {
    const w = this.w;
    const box = this.at(i, H_MBOX);
    w[this.at(i, H_KIND)] = kind;
    for (let k = 0; k < args.length; k++) w[this.at(i, H_ARG + k)] = args[k]!;
    Atomics.store(w, box, POSTED);
    this.ring();
    // The device thread answers a burst of requests (a console line: an MMIO access per byte)
    // while it still spins after the last: a reply within SPIN_MS needs no sleep and no wake.
    const until = performance.now() + SPIN_MS;
    while (Atomics.load(w, box) !== REPLIED && performance.now() < until) {}
    for (;;) {
      const seen = this.wakeValue(i);
      if (Atomics.load(w, box) === REPLIED) break;
      serve();
      if (Atomics.load(w, box) === REPLIED) break;
      this.sleep(i, seen, 100);
    }
    Atomics.store(w, box, IDLE);
    return w[this.at(i, H_RET)]!;
  }

  /** Reply word `k` of hart `i`'s last request. */
  reply(i: number, k: number): number {
    return this.w[this.at(i, H_RET + k)]!;
  }

  /** The ticket of target hart `t` that hart `i`'s last request waits for (0: none). */
  ticket(i: number, t: number): number {
    return this.w[this.at(i, H_TICKETS + t)]!;
  }

  // ---- the mailbox, device side ----

  /** The request hart `i` has posted (its kind), or 0. */
  posted(i: number): number {
    return Atomics.load(this.w, this.at(i, H_MBOX)) === POSTED ? this.w[this.at(i, H_KIND)]! : 0;
  }

  arg(i: number, k: number): number {
    return this.w[this.at(i, H_ARG + k)]!;
  }

  /** Answers hart `i`'s request with `ret` and the tickets it must wait for. */
  answer(i: number, ret: ArrayLike<number>, tickets: ArrayLike<number> | null): void {
    const w = this.w;
    for (let k = 0; k < ret.length; k++) w[this.at(i, H_RET + k)] = ret[k]!;
    for (let t = 0; t < MAX_HARTS; t++) w[this.at(i, H_TICKETS + t)] = tickets?.[t] ?? 0;
    Atomics.store(w, this.at(i, H_MBOX), REPLIED);
    this.wake(i);
  }

  // ---- IPIs ----

  /** Sets `bits` (SSIP) for hart `i` to fold into its mip, and wakes it. */
  raise(i: number, bits: number): void {
    Atomics.or(this.w, this.at(i, H_IPI), bits);
    this.wake(i);
  }

  /** The IPI bits hart `i` has not folded yet, taken. */
  takeRaised(i: number): number {
    const k = this.at(i, H_IPI);
    return Atomics.load(this.w, k) === 0 ? 0 : Atomics.exchange(this.w, k, 0);
  }

  // ---- request rings ----

  /** Queues request `op` for hart `t` and wakes it; returns the ticket its acknowledgement reaches. */
  post(t: number, op: Op, a = 0, b = 0): number {
    const w = this.w;
    const n = Atomics.add(w, this.at(t, H_HEAD), 1);
    if (n - Atomics.load(w, this.at(t, H_DONE)) >= RING) {
      // Full: the hart does everything a request may ask when it next looks.
      Atomics.store(w, this.at(t, H_OVERFLOW), 1);
      // The slot is not written; its ticket is acknowledged with the overflow.
      Atomics.store(w, this.at(t, H_RING + (n % RING) * 4), -1);
    } else {
      const e = this.at(t, H_RING + (n % RING) * 4);
      w[e + 1] = a;
      w[e + 2] = b;
      Atomics.store(w, e, op);
    }
    Atomics.store(w, this.at(t, H_PENDING), 1);
    this.wake(t);
    return n + 1;
  }

  /** Index of hart `i`'s "requests pending" word in `w`. */
  pendingIndex(i: number): number {
    return this.at(i, H_PENDING);
  }

  /**
   * Index of hart `i`'s attention word in `w`: set by every wake; its engine leaves run() when
   * it sees it set (between regions, and at every block of translated code).
   */
  attentionIndex(i: number): number {
    return this.at(i, H_ATTN);
  }

  /** Hart `i` is looking at everything now: clears its attention word. */
  attend(i: number): void {
    Atomics.store(this.w, this.at(i, H_ATTN), 0);
  }

  /**
   * True when hart `t` has acknowledged `ticket`, or sleeps (WFI, stopped by the firmware or
   * the device thread): a sleeping hart serves its ring before it runs another instruction,
   * and a request posted before this look is in the ring it will serve (the hart marks itself
   * awake before it serves), so what was asked is done before the hart can tell.
   */
  acked(t: number, ticket: number): boolean {
    return Atomics.load(this.w, this.at(t, H_DONE)) - ticket >= 0 || Atomics.load(this.w, this.at(t, H_ASLEEP)) !== 0;
  }

  /** Hart `i` sleeps (1) without running guest code, or is awake again (0: it serves its ring next). */
  setAsleep(i: number, asleep: boolean): void {
    Atomics.store(this.w, this.at(i, H_ASLEEP), asleep ? 1 : 0);
  }

  /** Hart `i` will wait for hart `t`'s acknowledgements: `t` wakes it when it has caught up. */
  awaitAcks(i: number, t: number): void {
    Atomics.or(this.w, this.at(t, H_WAITERS), 1 << i);
    this.wake(t);
  }

  /** Hart `i` serves its ring: every request posted so far, in order, then wakes its waiters. */
  serve(i: number, f: RingHandler): void {
    const w = this.w;
    const pend = this.at(i, H_PENDING);
    if (Atomics.load(w, pend) === 0) return;
    Atomics.store(w, pend, 0);
    const head = Atomics.load(w, this.at(i, H_HEAD));
    let done = Atomics.load(w, this.at(i, H_DONE));
    if (Atomics.exchange(w, this.at(i, H_OVERFLOW), 0) !== 0) {
      f.overflow();
      for (; done !== head; done++) Atomics.store(w, this.at(i, H_RING + (done % RING) * 4), 0);
    }
    for (; done !== head; done++) {
      const e = this.at(i, H_RING + (done % RING) * 4);
      const op = Atomics.load(w, e);
      if (op === 0) {
        // Reserved but not written yet: look again at the next check.
        Atomics.store(w, pend, 1);
        break;
      }
      if (op > 0) f(op as Op, w[e + 1]!, w[e + 2]!);
      Atomics.store(w, e, 0);
    }
    Atomics.store(w, this.at(i, H_DONE), done);
    const waiters = Atomics.exchange(w, this.at(i, H_WAITERS), 0);
    for (let k = 0; k < this.harts; k++) if (waiters & (1 << k)) this.wake(k);
  }
}
