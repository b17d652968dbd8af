/**
 * What a region module is made of, shared by the translator, the emitters and the engine: the
 * parameters of its functions and the exits they return, the indices of its helper functions,
 * its table of slow paths, and the temporaries and addresses the emitters share.
 */
import type { Decoded } from '../isa/decode.ts';
import { packOperands } from '../cpu/handler.ts';
import { F_OFF, slotOffset, X_OFF } from '../cpu/layout.ts';
import { F32, F64, I32, I64, Op, type Code, type ValType } from './wasm.ts';

/** What a region function returns to the dispatcher. */
export const enum Exit {
  /** The pc is set; keep dispatching. */
  Continue = 0,
  /** Leave the engine's run() (a trap was taken, a device was accessed). */
  Stop = 1,
  /** Not enough budget for the next block; the pc is its start. */
  Budget = 2,
  /** The pc is at an instruction the region does not translate; interpret it. */
  Interp = 3,
}

/** What an FP instruction needs of mstatus.FS for its fast path. */
export const enum FsGuard {
  None,
  /** Not Off (the instruction writes no f register and no flag). */
  On,
  /** Dirty (the instruction writes an f register: Dirty is what the write would make it). */
  Dirty,
}

/** What the `slow` helper returns when the instruction completed normally: go on inline. */
export const SLOW_NEXT = -1;

/** Locals and parameters of a region function. */
export const P_H = 0;
export const P_ENTRY = 1;
export const P_BUDGET = 2;
/** minstret + budget at the trampoline's entry: minstret is `end - budget` between blocks. */
export const P_END = 3;

/**
 * Function indices in a region module: the imported helpers, the internal helpers, then one
 * function per group of blocks (see translate.ts).
 */
export const F_SLOW = 0;
export const F_REFILL = 1;
export const F_FMA = 2;
export const F_LEAVE = 3;
export const F_TLB2 = 4;
export const F_GROUP0 = 5;

/** Where a jump lands inside the region: a block of function `group`, by its index there. */
export interface BlockRef {
  group: number;
  local: number;
}

/** One instruction to translate. */
export interface Insn {
  d: Decoded;
  /** Virtual address, as a signed Number (canonical addresses sign-extend within 2^53). */
  pc: number;
  /** Offset within the page. */
  off: number;
}

/**
 * A region's slow paths, by index: what the `slow(k, budget)` helper needs to run instruction
 * k through the interpreter with the state exact.
 */
export class SlowPaths {
  /** Virtual pc (a signed Number). */
  readonly pc: number[] = [];
  /**
   * How far back from the end of the block's budget charge this instruction is: minstret
   * before it is `end - budget - back` (see BlockEmitter).
   */
  readonly back: number[] = [];
  /** Length in bytes (2 or 4). */
  readonly len: number[] = [];
  /** Handler id and packed operands for interpreterHelper.exec (id -1: see addStraddle). */
  readonly id: number[] = [];
  readonly a: number[] = [];
  readonly imm: number[] = [];
  readonly raw: number[] = [];

  /**
   * An instruction at `pc` that straddles the end of the page, so its bits are not known here:
   * the helper runs it through the interpreter (id -1) and returns the region's exit, Continue
   * with the pc moved on or Stop.
   */
  addStraddle(pc: number): number {
    this.pc.push(pc);
    this.back.push(1);
    this.len.push(4);
    this.id.push(-1);
    this.a.push(0);
    this.imm.push(0);
    this.raw.push(0);
    return this.pc.length - 1;
  }

  /** Instruction `x`, `back` instructions from the end of its block's charge; returns its index. */
  add(x: Insn, back: number): number {
    const [a, imm] = packOperands(x.d);
    this.pc.push(x.pc);
    this.back.push(back);
    this.len.push(x.d.len);
    this.id.push(x.d.def.id);
    this.a.push(a);
    this.imm.push(imm);
    this.raw.push(x.d.raw | 0);
    return this.pc.length - 1;
  }
}

/** Offsets in the hart block the emitters address. */
export const MINSTRET = slotOffset('minstret');
export const MSTATUS = slotOffset('mstatus');
export const FCSR = slotOffset('fcsr');
export const DTLB = slotOffset('dtlb');
export const RES_VALID = slotOffset('resValid');
export const RES_ADDR = slotOffset('resAddr');
export const RES_VALUE = slotOffset('resValue');
/** Offset of x[r] and of f[r]. */
export const xo = (r: number): number => X_OFF + 8 * r;
export const fo = (r: number): number => F_OFF + 8 * r;

/** Writes minstret = end - budget (locals end and budget; see BlockEmitter) in the hart block at hb. */
export function storeInstret(c: Code, hb: number, end: number, budget: number): void {
  c.i32(hb).get(end).get(budget).op(Op.i64_extend_i32_s).op(Op.i64_sub).mem(Op.i64_store, 3, MINSTRET);
}

/**
 * Sets local `dtlb` to h + the hart's current data TLB offset. It holds until a system
 * instruction changes the data MMU (privilege, SUM, MPRV).
 */
export function loadDataTlb(c: Code, hb: number, dtlb: number): void {
  c.i32(hb).i32(hb).mem(Op.i32_load, 2, DTLB).op(Op.i32_add).set(dtlb);
}

/**
 * A region function's temporaries, each declared on first use. V8's baseline compiler zeroes
 * every local at function entry, with `rep stos` once they take more than 24 bytes: that was
 * the first thing every entry into a region did (about 40 million times per boot).
 */
export class Locals {
  private readonly ids = new Map<string, number>();
  constructor(private readonly c: Code) {}
  private get(name: string, t: ValType): number {
    let id = this.ids.get(name);
    if (id === undefined) this.ids.set(name, (id = this.c.local(t)));
    return id;
  }
  /** h + the current data TLB offset (see loadDataTlb). */
  get dtlb(): number { return this.get('dtlb', I32); }
  /** A TLB entry's address. */
  get e(): number { return this.get('e', I32); }
  /** The slow-path helper's result; an SC's outcome. */
  get st(): number { return this.get('st', I32); }
  /** A virtual address; an i64 temporary. */
  get va(): number { return this.get('va', I64); }
  /** A second i64 temporary. */
  get t(): number { return this.get('t', I64); }
  /** Third and fourth i64 temporaries (a high product's partial products). */
  get t3(): number { return this.get('t3', I64); }
  get t4(): number { return this.get('t4', I64); }
  get fa(): number { return this.get('fa', F64); }
  get fb(): number { return this.get('fb', F64); }
  get fr(): number { return this.get('fr', F64); }
  get sr(): number { return this.get('sr', F32); }
}
