/**
 * The platform-level interrupt controller as on QEMU's virt board (SiFive PLIC layout, RISC-V
 * PLIC spec 1.0.0): sources 1..ndev, each with a priority and a gateway; contexts 2 per hart
 * (machine then supervisor), each with enables, a threshold and a claim/complete register.
 * Inputs are level-triggered IrqLines from devices; each context drives one output IrqLine
 * (the board wires it to the hart's MEIP or SEIP).
 *
 * Memory map (PLIC spec "Memory Map"):
 *   0x000000 + 4*src        priority of source src (source 0 does not exist)
 *   0x001000 + 4*w          pending bits of sources 32w..32w+31 (read-only)
 *   0x002000 + 0x80*ctx     enable bits of context ctx, 32 sources per word
 *   0x200000 + 0x1000*ctx   priority threshold of ctx; +4: claim (read) / complete (write)
 */
import type { Device, IrqLine } from '../device.ts';
import { StateReader, type Stateful } from '../state.ts';
import { VirtusError } from '../../util/errors.ts';

/** QEMU virt's PLIC window: room for the contexts of 512 harts, whatever the hart count. */
export const PLIC_SIZE = 0x60_0000;
/** Sources QEMU 7.2's virt board declares (`riscv,ndev`): ids 1..96. */
export const PLIC_NDEV = 96;
/** QEMU virt implements 3 priority bits: priorities and thresholds are 0..7. */
export const PLIC_MAX_PRIORITY = 7;
/** Supervisor and machine external interrupt numbers, for `interrupts-extended` (Priv. spec 3.1.9). */
export const IRQ_S_EXT = 9;
export const IRQ_M_EXT = 11;

const PENDING = 0x1000;
const ENABLE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT = 0x20_0000;
const CONTEXT_STRIDE = 0x1000;
/** The spec's limits: 1023 sources and 15872 contexts. */
const MAX_SOURCES = 1023;
const MAX_CONTEXTS = 15872;

export interface PlicOptions {
  /** Number of sources (ids 1..ndev); default PLIC_NDEV. */
  ndev?: number;
}

/** Saved PLIC state: per source, per context, and the gateways' view of the input levels. */
export interface PlicState {
  /** Priority of each source id 0..ndev (entry 0 is always 0). */
  priority: number[];
  /** Pending bits (IP), 32 sources per word. */
  pending: number[];
  /** Sources claimed and not yet completed (their gateway holds further requests). */
  claimed: number[];
  /** Input levels as last driven by the devices. */
  level: number[];
  /** Enable bits, `words` per context, context after context. */
  enable: number[];
  threshold: number[];
}

export class Plic implements Device, Stateful<PlicState> {
  readonly name = 'plic';
  readonly size = PLIC_SIZE;
  readonly ndev: number;
  /** Number of contexts (two per hart: M, then S). */
  readonly contexts: number;
  /** 32-bit words per bit array (sources 0..ndev). */
  private readonly words: number;
  /** Bits that exist in each word of a bit array (source 0 and ids above ndev are hardwired 0). */
  private readonly valid: Uint32Array;
  private readonly priority: Uint32Array;
  private readonly pending: Uint32Array;
  private readonly claimed: Uint32Array;
  private readonly level: Uint32Array;
  private readonly enable: Uint32Array;
  private readonly threshold: Uint32Array;
  /** Level each output line was last driven to (-1: never). */
  private readonly driven: Int8Array;

  /** `outputs` are the contexts' lines in context order: hart 0 M, hart 0 S, hart 1 M, ... */
  constructor(
    private readonly outputs: readonly IrqLine[],
    o: PlicOptions = {},
  ) {
    const ndev = o.ndev ?? PLIC_NDEV;
    if (!Number.isInteger(ndev) || ndev < 1 || ndev > MAX_SOURCES) {
      throw new VirtusError('PLIC_CONFIG', `PLIC sources must number 1 to ${MAX_SOURCES}, not ${ndev}`);
    }
    if (outputs.length < 1 || outputs.length > MAX_CONTEXTS) {
      throw new VirtusError('PLIC_CONFIG', `PLIC contexts must number 1 to ${MAX_CONTEXTS}, not ${outputs.length}`);
    }
    this.ndev = ndev;
    this.contexts = outputs.length;
    this.words = (ndev + 32) >>> 5;
    this.valid = new Uint32Array(this.words);
    for (let id = 1; id <= ndev; id++) this.valid[id >>> 5] |= 1 << (id & 31);
    this.priority = new Uint32Array(ndev + 1);
    this.pending = new Uint32Array(this.words);
    this.claimed = new Uint32Array(this.words);
    this.level = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.words * this.contexts);
    this.threshold = new Uint32Array(this.contexts);
    this.driven = new Int8Array(this.contexts).fill(-1);
  }

  /** The input line of source `id` (1..ndev), for a device to drive. */
  input(id: number): IrqLine {
    if (!Number.isInteger(id) || id < 1 || id > this.ndev) {
      throw new VirtusError('PLIC_CONFIG', `PLIC source ${id} does not exist (sources are 1 to ${this.ndev})`);
    }
    return { set: (lvl: boolean) => this.setLevel(id, lvl) };
  }

  /**
   * A device drives source `id` to `lvl`. PLIC spec "Interrupt Gateways": the first assertion
   * becomes a request (IP set) unless one is pending or the source is claimed; a deassertion
   * does not retract a request already forwarded.
   */
  setLevel(id: number, lvl: boolean): void {
    const w = id >>> 5;
    const bit = 1 << (id & 31);
    if (lvl) {
      this.level[w] |= bit;
      if ((this.claimed[w]! & bit) === 0 && (this.pending[w]! & bit) === 0) {
        this.pending[w] |= bit;
        this.update();
      }
    } else {
      this.level[w] &= ~bit;
    }
  }

  reset(): void {
    this.priority.fill(0);
    this.pending.fill(0);
    this.claimed.fill(0);
    this.enable.fill(0);
    this.threshold.fill(0);
    // Input levels belong to the devices; a source still asserted requests again.
    for (let w = 0; w < this.words; w++) this.pending[w] = this.level[w]!;
    this.update();
  }

  read(offset: number, width: 1 | 2 | 4): number {
    // PLIC spec "Memory Map": 32-bit registers, accessed with LW/SW only.
    if (width !== 4 || offset & 3) return 0;
    if (offset < PENDING) {
      const id = offset >>> 2;
      return id <= this.ndev ? this.priority[id]! : 0;
    }
    if (offset < ENABLE) {
      const w = (offset - PENDING) >>> 2;
      return w < this.words ? this.pending[w]! >>> 0 : 0;
    }
    if (offset < CONTEXT) {
      const ctx = Math.floor((offset - ENABLE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE) % ENABLE_STRIDE) >>> 2;
      return ctx < this.contexts && w < this.words ? this.enable[ctx * this.words + w]! >>> 0 : 0;
    }
    const ctx = Math.floor((offset - CONTEXT) / CONTEXT_STRIDE);
    if (ctx >= this.contexts) return 0;
    const reg = (offset - CONTEXT) % CONTEXT_STRIDE;
    if (reg === 0) return this.threshold[ctx]!;
    if (reg === 4) return this.claim(ctx);
    return 0;
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    if (width !== 4 || offset & 3) return;
    if (offset < PENDING) {
      const id = offset >>> 2;
      if (id >= 1 && id <= this.ndev) {
        // PLIC spec "Interrupt Priorities": WARL; the 3 implemented bits keep their values.
        this.priority[id] = value & PLIC_MAX_PRIORITY;
        this.update();
      }
      return;
    }
    if (offset < ENABLE) return; // pending bits are read-only
    if (offset < CONTEXT) {
      const ctx = Math.floor((offset - ENABLE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE) % ENABLE_STRIDE) >>> 2;
      if (ctx < this.contexts && w < this.words) {
        this.enable[ctx * this.words + w] = value & this.valid[w]!;
        this.update();
      }
      return;
    }
    const ctx = Math.floor((offset - CONTEXT) / CONTEXT_STRIDE);
    if (ctx >= this.contexts) return;
    const reg = (offset - CONTEXT) % CONTEXT_STRIDE;
    if (reg === 0) {
      this.threshold[ctx] = value & PLIC_MAX_PRIORITY; // WARL, as priorities
      this.update();
    } else if (reg === 4) {
      this.complete(ctx, value >>> 0);
    }
  }

  /**
   * The highest-priority pending source enabled for `ctx` with nonzero priority (ties: lowest
   * id), or 0. The threshold does not apply to claims (PLIC spec "Interrupt Claim Process").
   */
  private best(ctx: number, threshold: number): number {
    let best = 0;
    let bestPrio = threshold;
    const base = ctx * this.words;
    for (let w = 0; w < this.words; w++) {
      let bits = this.pending[w]! & this.enable[base + w]!;
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const id = (w << 5) | b;
        const p = this.priority[id]!;
        if (p > bestPrio) {
          bestPrio = p;
          best = id;
        }
      }
    }
    return best;
  }

  /** Claim: returns the best source and clears its pending bit; its gateway now waits for completion. */
  private claim(ctx: number): number {
    const id = this.best(ctx, 0);
    if (id !== 0) {
      const w = id >>> 5;
      const bit = 1 << (id & 31);
      this.pending[w] &= ~bit;
      this.claimed[w] |= bit;
      this.update();
    }
    return id;
  }

  /**
   * Completion (PLIC spec "Interrupt Completion"): ignored unless `id` is a source enabled for
   * `ctx`. The gateway then forwards a new request if the level is still asserted.
   */
  private complete(ctx: number, id: number): void {
    if (id < 1 || id > this.ndev) return;
    const w = id >>> 5;
    const bit = 1 << (id & 31);
    if ((this.enable[ctx * this.words + w]! & bit) === 0) return;
    this.claimed[w] &= ~bit;
    if (this.level[w]! & bit) this.pending[w] |= bit;
    this.update();
  }

  /** Drives each context's line: some enabled pending source has priority above its threshold. */
  private update(): void {
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      const lvl = this.best(ctx, this.threshold[ctx]!) !== 0 ? 1 : 0;
      if (this.driven[ctx] !== lvl) {
        this.driven[ctx] = lvl;
        this.outputs[ctx]!.set(lvl === 1);
      }
    }
  }

  save(): PlicState {
    const u = (a: Uint32Array): number[] => Array.from(a, (x) => x >>> 0);
    return {
      priority: u(this.priority),
      pending: u(this.pending),
      claimed: u(this.claimed),
      level: u(this.level),
      enable: u(this.enable),
      threshold: u(this.threshold),
    };
  }

  restore(state: unknown): void {
    const r = new StateReader('plic', state, ['priority', 'pending', 'claimed', 'level', 'enable', 'threshold']);
    const priority = r.uintArray('priority', this.ndev + 1, PLIC_MAX_PRIORITY);
    if (priority[0] !== 0) r.fail('priority[0] must be 0: source 0 does not exist');
    const bits = (key: string, n: number): number[] => {
      const a = r.uintArray(key, n, 0xffff_ffff);
      a.forEach((x, i) => {
        if ((x & ~this.valid[i % this.words]!) !== 0) {
          r.fail(`${key}[${i}] has bits for sources that do not exist (0x${x.toString(16)})`);
        }
      });
      return a;
    };
    const pending = bits('pending', this.words);
    const claimed = bits('claimed', this.words);
    const level = bits('level', this.words);
    const enable = bits('enable', this.words * this.contexts);
    const threshold = r.uintArray('threshold', this.contexts, PLIC_MAX_PRIORITY);
    pending.forEach((p, i) => {
      if (p & claimed[i]!) r.fail(`pending[${i}] and claimed[${i}] overlap: a claimed source cannot be pending`);
    });
    this.priority.set(priority);
    this.pending.set(pending);
    this.claimed.set(claimed);
    this.level.set(level);
    this.enable.set(enable);
    this.threshold.set(threshold);
    this.driven.fill(-1);
    this.update();
  }
}
