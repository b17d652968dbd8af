/**
 * A machine: one WebAssembly.Memory holding hart state and RAM, the harts, the bus with its
 * devices, the clock and the CLINT. Boards (virt.ts) add devices, firmware and the device tree.
 * The machine runs in slices (slice()); runner.ts turns slices into a run with idling and limits.
 */
import { createInterpreter, type Engine } from '../cpu/interp.ts';
import { JitEngine } from '../jit/engine.ts';
import { Hart, PAGE_WATCH, S, type HartHooks } from '../cpu/hart.ts';
import { MIP_MSIP, MIP_MTIP } from '../cpu/csr-numbers.ts';
import { memoryBytes, PAGE_SIZE, RAM_MAX } from '../cpu/layout.ts';
import { Clint } from '../devices/clint/clint.ts';
import type { IrqLine } from '../devices/device.ts';
import { Htif } from '../devices/htif/htif.ts';
import { VirtusError } from '../util/errors.ts';
import { Bus } from './bus.ts';
import { Clock } from './clock.ts';
import { GuestRam } from './ram.ts';

export const CLINT_BASE = 0x0200_0000;

export interface MachineOptions {
  /** Guest RAM in bytes (a multiple of 4 KiB, at most 3 GiB). */
  ramSize: number;
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
  /** Translator settings (tests): the hotness threshold, whether to use tail calls. */
  jit?: { threshold?: number; tailCalls?: boolean };
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
  /** Flags per RAM page, shared by the harts (PAGE_WATCH, PAGE_CODE). */
  readonly pageFlags: Uint8Array;
  readonly console: (bytes: Uint8Array) => void;
  /** Bytes the host's console output can take now (Infinity when it does not say). */
  readonly consoleRoom: () => number;
  /** Set once the guest has stopped the machine. */
  exit: MachineExit | null = null;
  private htif: Htif | null = null;
  /** The translator, when this machine uses it. */
  readonly jit: JitEngine | null = null;
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
    this.pageFlags = new Uint8Array(o.ramSize / PAGE_SIZE);
    this.console = o.console;
    this.consoleRoom = o.consoleRoom ?? (() => Infinity);
    this.clock = new Clock({ deterministic: o.deterministic ?? false, instret: () => this.instret() });
    const hooks: HartHooks = {
      time: () => this.clock.now(),
      ramWatch: (pa, size) => {
        this.htif?.onStore(pa, size);
        this.jit?.codeWritten(pa, size);
      },
      machineTrap: (h, cause, irq) => this.machineTrap?.(h, cause, irq) ?? false,
    };
    const hart = new Hart({ id: 0, memory: this.memory, ramSize: o.ramSize, bus: this.bus, hooks, pageFlags: this.pageFlags });
    this.harts.push(hart);
    if ((o.engine ?? 'interp') === 'jit') {
      this.jit = new JitEngine({ hart, memory: this.memory, harts: this.harts, ...o.jit });
      this.engines.push(this.jit);
      // Device DMA and loaders write RAM behind the harts' backs: translated code there is stale.
      this.ram.onWrite = (pa, len) => this.jit!.codeWritten(pa, len);
    } else {
      this.engines.push(createInterpreter(hart));
    }
    this.clint = new Clint(
      this.clock,
      this.harts.map((h) => mipLine(h, MIP_MSIP)),
      this.harts.map((h) => mipLine(h, MIP_MTIP)),
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
    this.pageFlags[(tohost - this.ram.base) / PAGE_SIZE] |= PAGE_WATCH;
    for (const h of this.harts) h.flushTlb();
  }

  /**
   * Returns every engine to its power-on state (a reboot or reset): translations, jump caches
   * and decode caches made for the old contents of RAM are dropped.
   */
  resetEngines(): void {
    for (const e of this.engines) e.reset();
    for (const h of this.harts) h.flushTlb();
  }

  /** Stops the machine (the first reason wins). */
  stop(e: MachineExit): void {
    if (!this.exit) this.exit = e;
  }

  /**
   * Runs hart 0 for up to `budget` instructions: updates timer lines, runs the slice hooks,
   * takes a pending interrupt, and runs the engine. Returns the instructions retired (0 when
   * the hart waits in WFI, or when its first instruction trapped).
   */
  slice(budget: number): number {
    const h = this.harts[0]!;
    this.clint.update();
    for (const f of this.sliceHooks) f();
    if (h.s[S.wfi]) {
      if (!h.wakeable()) return 0;
      h.s[S.wfi] = 0;
    }
    h.checkInterrupts();
    if (this.clock.deterministic) {
      const d = this.nextDeadline();
      if (d !== Infinity) budget = Math.min(budget, this.clock.insnsUntil(d));
    }
    return this.engines[0]!.run(budget);
  }
}

/** An interrupt line that drives bit `bit` of a hart's device-driven pending lines. */
export function mipLine(h: Hart, bit: number): IrqLine {
  return {
    set(level: boolean) {
      const v = h.s[S.mipLines]!;
      h.s[S.mipLines] = level ? v | bit : v & ~bit;
    },
  };
}
