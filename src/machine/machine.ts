/**
 * A machine: one WebAssembly.Memory holding hart state and RAM, the harts, the bus with its
 * devices, the clock and the CLINT. Boards (virt.ts) add devices, firmware and the device tree.
 * The machine runs in slices (slice()); runner.ts turns slices into a run with idling and limits.
 */
import { createInterpreter, type Engine } from '../cpu/interp.ts';
import { JitEngine } from '../jit/engine.ts';
import { Hart, PAGE_WATCH, S, type HartHooks, type PageGate } from '../cpu/hart.ts';
import { MIP_MSIP, MIP_MTIP } from '../cpu/csr-numbers.ts';
import { MAX_HARTS, memoryBytes, PAGE_SIZE, pageFlagsView, RAM_MAX } from '../cpu/layout.ts';
import { Clint } from '../devices/clint/clint.ts';
import type { IrqLine } from '../devices/device.ts';
import { Htif } from '../devices/htif/htif.ts';
import { VirtusError } from '../util/errors.ts';
import { Bus } from './bus.ts';
import { Clock } from './clock.ts';
import { GuestRam } from './ram.ts';
import { directHarts, type RemoteHarts } from './sbi/sbi.ts';
import { SmpShared } from './smp-shared.ts';

export const CLINT_BASE = 0x0200_0000;
/**
 * The most instructions one hart runs before the next hart's turn, with several harts. A hart
 * spinning on a lock or waiting for another hart's answer wastes its turn; a short turn makes
 * that cheap, a long one keeps the engines' entry costs low (measured on Linux boots: see
 * docs/architecture.md).
 */
export const SMP_QUANTUM = 100_000;

export interface MachineOptions {
  /** Guest RAM in bytes (a multiple of 4 KiB, at most 3 GiB). */
  ramSize: number;
  /** Harts (1 to MAX_HARTS, default 1): each has its own block, TLB and engine. */
  harts?: number;
  /** Time from the instruction count instead of the host clock. */
  deterministic?: boolean;
  /** Where guest console output goes. */
  console: (bytes: Uint8Array) => void;
  /** Bytes the host can take now (optional): at 0 the guest's console output waits. */
  consoleRoom?: () => number;
  /**
   * Create the memory `shared: true` (default), so harts can later run in workers. A browser
   * page that is not cross-origin isolated cannot create shared memory: pass false there.
   */
  sharedMemory?: boolean;
  /** How guest code runs: interpreted (default) or translated to WebAssembly. */
  engine?: 'jit' | 'interp';
  /**
   * Translator settings (tests): the hotness threshold, whether to use tail calls, whether a
   * run uses its whole budget (JitOptions.exact; default: when the machine is deterministic).
   */
  jit?: { threshold?: number; tailCalls?: boolean; exact?: boolean };
}

/**
 * What a machine whose harts run in host threads (hart-threads.ts) changes in it: how the
 * firmware reaches other harts, where code invalidation goes, how harts are stopped.
 */
export interface HartThreadsControl {
  /** Runs `f` with every hart stopped at an instruction boundary (as between slices on one thread). */
  stopped<T>(f: () => T): T;
}

/** Why a machine stopped. */
export interface MachineExit {
  code: number;
  reason: 'exit' | 'poweroff' | 'reboot' | 'max-insns' | 'fatal';
  message?: string;
}

export class Machine {
  readonly memory: WebAssembly.Memory;
  readonly ram: GuestRam;
  readonly bus = new Bus();
  readonly clock: Clock;
  readonly harts: Hart[] = [];
  readonly engines: Engine[] = [];
  readonly clint: Clint;
  /** Flags per RAM page, shared by the harts (PAGE_WATCH, PAGE_CODE): in the memory (layout.ts PAGE_FLAGS). */
  readonly pageFlags: Uint8Array;
  /** The control block for harts in host threads (smp-shared.ts). */
  readonly smp: SmpShared;
  /**
   * How the firmware acts on other harts (IPIs, remote fences, starting them): directly while
   * one thread runs every hart, through their request rings when they run in threads.
   */
  remote: RemoteHarts = directHarts;
  /** Set while the harts run in host threads (hart-threads.ts). */
  threads: HartThreadsControl | null = null;
  /** With threads: where stores into translated code and DMA go instead of the local engines. */
  codeHook: ((pa: number, size: number) => void) | null = null;
  /** Harts that have run in host threads of their own (hart 0 runs on the machine's thread), for --stats. */
  hartThreads = 0;
  /** With threads: wakes hart `i`'s thread (an interrupt line changed). */
  wakeHart: ((i: number) => void) | null = null;
  readonly console: (bytes: Uint8Array) => void;
  /** Bytes the host's console output can take now (Infinity when it does not say). */
  readonly consoleRoom: () => number;
  /** Post-copy: the pages still to come (null: all of RAM is here). */
  get gate(): PageGate | null {
    return this.ram.gate;
  }

  /**
   * Post-copy (migrate-postcopy.ts): every hart and every device access to RAM outside the
   * TLB asks `g` first; null once all of RAM has arrived. Missing pages must have no TLB
   * entries (a received machine has none until it runs).
   */
  setGate(g: PageGate | null): void {
    this.ram.gate = g;
    for (const h of this.harts) h.gate = g;
  }

  /** How guest code runs, and the translator's settings (harts in threads make their engines alike). */
  readonly engineKind: 'jit' | 'interp';
  readonly jitOptions: { threshold?: number; tailCalls?: boolean; exact?: boolean } | undefined;
  /** Set once the guest has stopped the machine. */
  exit: MachineExit | null = null;
  private htif: Htif | null = null;
  /** Hart 0's translator, when this machine uses the translator. */
  readonly jit: JitEngine | null = null;
  /** Each hart's translator (empty when the machine interprets), in hart order. */
  readonly jits: JitEngine[] = [];
  /**
   * Nonzero for a hart the firmware holds stopped (SBI HSM STOPPED): it is not scheduled and
   * cannot be woken by interrupts, only by another hart's hart_start.
   */
  readonly parked: Uint8Array;
  /** The hart whose turn it is (round-robin, in hart order), and what is left of its quantum. */
  private turn = 0;
  private left = SMP_QUANTUM;
  /** The hart that ran last, or -1: another hart running in between ends its reservation. */
  private lastRan = -1;
  /** Extra hook for traps into M-mode (the built-in SBI firmware installs one). */
  machineTrap: HartHooks['machineTrap'];
  /** Other sources of timer deadlines (Sstc, SBI timers), in ticks. */
  private readonly deadlineSources: Array<() => number> = [];
  /** Work done at every slice boundary (timers firing, console input reaching devices). */
  private readonly sliceHooks: Array<() => void> = [];

  constructor(o: MachineOptions) {
    if (!Number.isInteger(o.ramSize) || o.ramSize <= 0 || o.ramSize % PAGE_SIZE !== 0 || o.ramSize > RAM_MAX) {
      throw new VirtusError('BAD_MEMORY', `memory size must be a multiple of 4 KiB between 4 KiB and 3 GiB`);
    }
    const pages = Math.ceil(memoryBytes(o.ramSize) / 65536);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: o.sharedMemory ?? true });
    this.ram = new GuestRam(this.memory, o.ramSize);
    this.pageFlags = pageFlagsView(this.memory, o.ramSize);
    this.console = o.console;
    this.consoleRoom = o.consoleRoom ?? (() => Infinity);
    const n = o.harts ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > MAX_HARTS) {
      throw new VirtusError('BAD_HARTS', `a machine has 1 to ${MAX_HARTS} harts, not ${n}`);
    }
    this.smp = new SmpShared(this.memory, n);
    this.clock = new Clock({ deterministic: o.deterministic ?? false, instret: () => this.instret(), state: this.smp.clock });
    const hooks: HartHooks = {
      time: () => this.clock.now(),
      ramWatch: (pa, size) => {
        this.htif?.onStore(pa, size);
        this.codeWritten(pa, size);
      },
      machineTrap: (h, cause, irq, tvalLo, tvalHi) => this.machineTrap?.(h, cause, irq, tvalLo, tvalHi) ?? false,
    };
    for (let id = 0; id < n; id++) {
      this.harts.push(new Hart({ id, memory: this.memory, ramSize: o.ramSize, bus: this.bus, hooks, pageFlags: this.pageFlags }));
    }
    this.parked = this.smp.parked.subarray(0, n);
    this.engineKind = o.engine ?? 'interp';
    this.jitOptions = o.jit;
    if ((o.engine ?? 'interp') === 'jit') {
      for (const hart of this.harts) {
        // Only a deterministic run needs its slices cut at exact instruction counts.
        this.jits.push(new JitEngine({ hart, memory: this.memory, harts: this.harts, peers: this.jits, exact: this.clock.deterministic, ...o.jit }));
      }
      this.jit = this.jits[0]!;
      this.engines.push(...this.jits);
      // Device DMA and loaders write RAM behind the harts' backs: translated code there is stale.
      this.ram.onWrite = (pa, len) => this.codeWritten(pa, len);
    } else {
      for (const hart of this.harts) this.engines.push(createInterpreter(hart));
    }
    this.clint = new Clint(
      this.clock,
      this.harts.map((h) => mipLine(h, MIP_MSIP, () => this.wakeHart?.(h.id))),
      this.harts.map((h) => mipLine(h, MIP_MTIP, () => this.wakeHart?.(h.id))),
    );
    this.bus.map(CLINT_BASE, this.clint);
    this.deadlineSources.push(() => this.clint.nextDeadline());
    this.deadlineSources.push(() => {
      // Sstc: a hart's stimecmp is a deadline while STCE is on.
      let d = Infinity;
      for (const h of this.harts) if (h.s[S.menvcfg + 1]! < 0) d = Math.min(d, h.getNum('stimecmp'));
      return d > this.clock.now() ? d : Infinity;
    });
  }

  /** Instructions retired by all harts. */
  instret(): number {
    let n = 0;
    for (const h of this.harts) n += h.getNum('minstret');
    return n;
  }

  /** Adds a source of future timer deadlines (in ticks; Infinity for none). */
  addDeadlineSource(f: () => number): void {
    this.deadlineSources.push(f);
  }

  /** Adds work to do at every slice boundary, before interrupts are checked. */
  addSliceHook(f: () => void): void {
    this.sliceHooks.push(f);
  }

  /** The next tick at which a timer will fire, or Infinity. */
  nextDeadline(): number {
    let d = Infinity;
    for (const f of this.deadlineSources) d = Math.min(d, f());
    return d < 2 ** 53 ? d : Infinity; // time beyond is inexact: deadlines there are never reached (clint.ts)
  }

  /** Runs the slice hooks (timers, console input, virtio polling) outside slice() (hart-threads.ts). */
  runSliceHooks(): void {
    for (const f of this.sliceHooks) f();
  }

  /** A store to a watched RAM page (HTIF's tohost) from a hart in another thread. */
  watched(pa: number, size: number): void {
    this.htif?.onStore(pa, size);
  }

  /** Serves HTIF at the `tohost` (and `fromhost`) RAM locations. */
  attachHtif(tohost: number, fromhost: number | null): void {
    for (const [name, at] of [['tohost', tohost], ['fromhost', fromhost]] as const) {
      if (at !== null && (!this.ram.contains(at, 8) || at % 8)) {
        throw new VirtusError('HTIF_RANGE', `the program's ${name} symbol (0x${at.toString(16)}) is not an aligned 8-byte location in RAM`);
      }
    }
    this.htif = new Htif(this.ram, tohost, fromhost, {
      output: (b) => this.console(b),
      exit: (code) => this.stop({ code, reason: 'exit' }),
    });
    Atomics.or(this.pageFlags, (tohost - this.ram.base) / PAGE_SIZE, PAGE_WATCH);
    for (const h of this.harts) h.flushTlb();
  }

  /**
   * Returns every engine to its power-on state (a reboot or reset): translations, jump caches
   * and decode caches made for the old contents of RAM are dropped.
   */
  resetEngines(): void {
    for (const e of this.engines) e.reset();
    for (const h of this.harts) h.flushTlb();
    this.smp.bumpEpoch(); // the harts' threads reset theirs before they run again
  }

  /**
   * Runs `f` with every hart at an instruction boundary: at once on one thread (this is called
   * between slices), after stopping them when they run in threads.
   */
  atBoundary<T>(f: () => T): T {
    return this.threads ? this.threads.stopped(f) : f();
  }

  /**
   * Drops the translations no hart has run since the last call (JitEngine.sweep), between
   * slices; returns how many went.
   */
  sweepTranslations(): number {
    let n = 0;
    for (const j of this.jits) n += j.sweep();
    return n;
  }

  /** Stops the machine (the first reason wins). */
  stop(e: MachineExit): void {
    if (!this.exit) this.exit = e;
  }

  /**
   * Guest physical [pa, pa + size) was written (a store by any hart, device DMA, a loader):
   * every hart's translations of the pages it touched are dropped before the writer goes on.
   */
  codeWritten(pa: number, size: number): void {
    if (this.codeHook) this.codeHook(pa, size);
    else this.jit?.codeWritten(pa, size);
  }

  /** True when hart `i` cannot run now: stopped by the firmware, or waiting in WFI with nothing to wake it. */
  idle(i: number): boolean {
    const h = this.harts[i]!;
    return this.parked[i] !== 0 || (h.s[S.wfi] !== 0 && !h.wakeable());
  }

  /** True when no hart can run until time passes or a device or the host acts. */
  allIdle(): boolean {
    for (let i = 0; i < this.harts.length; i++) if (!this.idle(i)) return false;
    return true;
  }

  /** The hart the next slice runs (the one whose turn it is, or the next in hart order that can run), or -1. */
  nextHart(): number {
    const n = this.harts.length;
    for (let k = 0; k < n; k++) {
      const i = (this.turn + k) % n;
      if (!this.idle(i)) return i;
    }
    return -1;
  }

  /**
   * Runs one hart for up to `budget` instructions: updates timer lines, runs the slice hooks,
   * picks the hart whose turn it is, takes its pending interrupt, and runs its engine. Returns
   * the instructions retired (0 when every hart waits, or when the first instruction trapped).
   *
   * Harts take turns in hart order, SMP_QUANTUM instructions each; a hart that waits (WFI, or
   * stopped by the firmware) gives up the rest of its turn. Turns depend on instruction counts
   * and architectural state only, never on where a slice was cut (a limit, a deadline, a pause
   * for a snapshot), so a deterministic run repeats, and a restored one goes on as the
   * uninterrupted run would.
   *
   * One hart runs at a time, so every instruction, AMO and LR/SC pair of a slice is atomic
   * with respect to the other harts. A hart's LR reservation does not survive another hart's
   * turn: a store by that hart may have written the reserved granule (Unprivileged 14.2 lets
   * a reservation be lost; turns are long, so a constrained LR/SC loop still succeeds).
   */
  slice(budget: number): number {
    this.clint.update();
    for (const f of this.sliceHooks) f();
    const i = this.nextHart();
    if (i < 0) return 0;
    const h = this.harts[i]!;
    if (i !== this.turn) {
      this.turn = i;
      this.left = SMP_QUANTUM;
    }
    if (this.lastRan !== i) {
      if (this.lastRan >= 0) h.s[S.resValid] = 0;
      this.lastRan = i;
    }
    h.s[S.wfi] = 0;
    h.checkInterrupts();
    const smp = this.harts.length > 1;
    if (smp) budget = Math.min(budget, this.left);
    if (this.clock.deterministic) {
      const d = this.nextDeadline();
      if (d !== Infinity) budget = Math.min(budget, this.clock.insnsUntil(d));
    }
    const n = this.engines[i]!.run(budget);
    if (smp) {
      this.left -= n;
      if (this.left <= 0) {
        this.turn = (i + 1) % this.harts.length;
        this.left = SMP_QUANTUM;
      }
    }
    return n;
  }

  /** Where the harts' turns stand (saved with the harts, so a restored machine goes on in the same order). */
  schedule(): { turn: number; left: number; lastRan: number } {
    return { turn: this.turn, left: this.left, lastRan: this.lastRan };
  }

  /** Sets where the turns stand (a restore; the caller checks the values). */
  setSchedule(s: { turn: number; left: number; lastRan: number }): void {
    this.turn = s.turn;
    this.left = s.left;
    this.lastRan = s.lastRan;
  }
}

/**
 * An interrupt line that drives bit `bit` of a hart's device-driven pending lines. The update is
 * atomic (the hart may run in another thread), and `wake` tells the hart when the line rises.
 */
export function mipLine(h: Hart, bit: number, wake?: () => void): IrqLine {
  return {
    set(level: boolean) {
      if (level) {
        if ((Atomics.or(h.s, S.mipLines, bit) & bit) === 0) wake?.();
      } else if (h.s[S.mipLines]! & bit) {
        Atomics.and(h.s, S.mipLines, ~bit);
      }
    },
  };
}
