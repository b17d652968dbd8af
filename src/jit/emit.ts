/**
 * Instruction emitters: WebAssembly for one guest instruction, inside a region function.
 *
 * Guest state stays in the machine's memory at the offsets of src/cpu/layout.ts (registers are
 * i64 loads and stores off the hart base `h`), so any instruction can fall back to the
 * reference interpreter's handler through the imported `slow` helper with the state exact.
 * That is how slow paths (TLB misses, devices, page-crossing accesses) and the floating point
 * and atomics that have no fast path run, and why faults are precise. A slow path is out of line: the generated code passes
 * the index of the instruction's entry in the region's SlowPaths table (its pc, where it is in
 * its block, its handler and operands) and the budget left, and the helper sets the pc and
 * minstret for the handler. Inline, the same bookkeeping cost about 100 bytes of WebAssembly per
 * load or store, most of what V8 had to compile.
 */
import type { Decoded } from '../isa/decode.ts';
import { Kind } from '../isa/table.ts';
import { packOperands } from '../cpu/interp.ts';
import { MSTATUS_FS } from '../cpu/csr-numbers.ts';
import { F_OFF, PC_OFF, RAM_BASE, RAM_HOST, TLB_ENTRIES, X_OFF, slotOffset } from '../cpu/layout.ts';
import { Code, F32, F64, I32, I64, Op, type ValType } from './wasm.ts';

/** What an FP instruction needs of mstatus.FS for its fast path. */
const enum FsGuard {
  None,
  /** Not Off (the instruction writes no f register and no flag). */
  On,
  /** Dirty (the instruction writes an f register: Dirty is what the write would make it). */
  Dirty,
}

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

/** What the `slow` helper returns when the instruction completed normally: go on inline. */
export const SLOW_NEXT = -1;

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

const MINSTRET = slotOffset('minstret');
const MSTATUS = slotOffset('mstatus');
const FCSR = slotOffset('fcsr');
const DTLB = slotOffset('dtlb');
const RES_VALID = slotOffset('resValid');
const RES_ADDR = slotOffset('resAddr');
const xo = (r: number): number => X_OFF + 8 * r;
const fo = (r: number): number => F_OFF + 8 * r;
/** The upper half of a NaN-boxed single (Unprivileged 21.2). */
const BOX = -0x1_0000_0000;
const SIGN64 = -(1n << 63n);
/** Smallest normal magnitudes: a result of exactly this size may have underflowed (tininess after rounding). */
const MIN_NORMAL_D = 2 ** -1022;
const MIN_NORMAL_S = 2 ** -126;

/** Locals and parameters of a region function. */
export const P_H = 0;
export const P_ENTRY = 1;
export const P_BUDGET = 2;
/** minstret + budget at the trampoline's entry: minstret is `end - budget` between blocks. */
export const P_END = 3;

/**
 * Function indices in a region module: the imported helper, the internal helpers, then one
 * function per group of blocks (see translate.ts).
 */
export const F_SLOW = 0;
export const F_MULHU = 1;
export const F_FMA = 2;
export const F_LEAVE = 3;
export const F_GROUP0 = 4;

/** Where a jump lands inside the region: a block of function `group`, by its index there. */
export interface BlockRef {
  group: number;
  local: number;
}

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
  get fa(): number { return this.get('fa', F64); }
  get fb(): number { return this.get('fb', F64); }
  get fr(): number { return this.get('fr', F64); }
  get sr(): number { return this.get('sr', F32); }
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
 * Emission state for one block inside a region function.
 *
 * Blocks do not count instructions in minstret: the budget parameter, charged with each block's
 * cost at its start, already does (minstret = end - budget once a block has run), and minstret
 * is written only where control leaves WebAssembly: on an exit to the dispatcher, and in the
 * slow-path helper, which is passed the budget (an instruction `back` from the end of its
 * block's charge has end - budget - back instructions before it).
 */
export class BlockEmitter {
  /** Control structures opened inside the block's code around a jumpTo (for branch depths). */
  depth = 0;

  constructor(
    readonly c: Code,
    private readonly locals: Locals,
    /** The block's index in its function (blocks there are in address order). */
    private readonly index: number,
    /** Depth of the dispatch loop from the block's own code. */
    private readonly loopDepth: number,
    /** The block of this region at a virtual pc, or null. */
    private readonly blockAt: (pc: number) => BlockRef | null,
    /** The function (group) this block is in, and whether it may tail-call the others. */
    private readonly group: number,
    private readonly tailCalls: boolean,
    /** Instructions the block charges to the budget (a straddling instruction included). */
    private readonly cost: number,
    /** The region's virtual page (a signed Number). */
    private readonly vpage: number,
    /**
     * The hart block's address: a constant in the code rather than the `h` parameter, which
     * V8's baseline compiler would reload from its stack frame before nearly every access.
     */
    private readonly hb: number,
    private readonly slow: SlowPaths,
  ) {}

  // ---- state access ----

  getX(r: number): void {
    if (r === 0) this.c.i64(0n);
    else this.c.i32(this.hb).mem(Op.i64_load, 3, xo(r));
  }

  /** Stores the i64 on the stack into x[r] (dropped for x0). Needs `h` pushed first unless r = 0. */
  private pushXAddr(r: number): void {
    if (r !== 0) this.c.i32(this.hb);
  }
  private storeX(r: number): void {
    if (r === 0) this.c.op(Op.drop);
    else this.c.mem(Op.i64_store, 3, xo(r));
  }

  /**
   * Leaves for the dispatcher at `pc` through the module's `leave` helper, which sets the pc
   * and minstret (every instruction charged to the budget so far has retired).
   */
  exitAt(pc: number, code: Exit): void {
    this.c.i32(this.hb).get(P_BUDGET).get(P_END).i32(pc - this.vpage).i32(code).call(F_LEAVE).op(Op.return);
  }

  /** Leaves for the dispatcher with the pc already set. */
  private ret(code: Exit): void {
    storeInstret(this.c, this.hb, P_END, P_BUDGET);
    this.c.i32(code).op(Op.return);
  }

  /**
   * Transfers control to `pc`: a branch within the function, a tail call of the region's
   * function that has the block, or an exit to the dispatcher. A block later in the function
   * is reached by a plain `br` (the code of block k follows the end of the wasm block that is
   * k - index - 1 levels out); an earlier one through the dispatch loop's `br_table`, which
   * V8's baseline compiler turns into a binary search.
   */
  jumpTo(pc: number): void {
    const k = this.blockAt(pc);
    if (k && k.group === this.group && k.local > this.index) {
      this.c.br(k.local - this.index - 1 + this.depth);
    } else if (k && k.group === this.group) {
      this.c.i32(k.local).set(P_ENTRY).br(this.loopDepth + this.depth);
    } else if (k && this.tailCalls) {
      this.c.i32(this.hb).i32(k.local).get(P_BUDGET).get(P_END).returnCall(F_GROUP0 + k.group);
    } else {
      this.exitAt(pc, Exit.Continue);
    }
  }

  /** Ends the block without a control instruction: on to `pc`, or stop there to interpret it. */
  fallThrough(pc: number, interpret: boolean): void {
    if (interpret) {
      this.exitAt(pc, Exit.Interp);
    } else {
      this.jumpTo(pc);
    }
  }

  /**
   * Ends the block with the instruction at `pc`, whose second half is on the next page: the
   * interpreter runs it in place (see SlowPaths.addStraddle), then the region returns to the
   * dispatcher at wherever it went.
   */
  straddle(pc: number): void {
    this.c.i32(this.slow.addStraddle(pc)).get(P_BUDGET).call(F_SLOW).op(Op.return);
  }

  /**
   * Runs instruction `j` through the interpreter's handler, out of line (see SlowPaths), with
   * the pc and minstret set for it. When it completes normally the block goes on inline (this
   * code may sit on one arm of a branch: the slow path of a load). Otherwise (a trap, a device
   * access, a store into translated code) the helper leaves the state exact and names the exit.
   */
  private viaInterpreter(j: number, x: Insn): void {
    const c = this.c;
    c.i32(this.slow.add(x, this.cost - j)).get(P_BUDGET).call(F_SLOW).tee(this.locals.st);
    c.i32(SLOW_NEXT).op(Op.i32_ne).if();
    c.get(this.locals.st).op(Op.return);
    c.end();
  }

  // ---- memory access with the inline TLB probe ----

  /** Leaves the TLB entry address in `e` and pushes 1 when the probe hits for an access of `size` at va. */
  private probe(size: number, tagOffset: number): void {
    const { va, e, dtlb } = this.locals;
    const c = this.c;
    c.get(va).i64(12).op(Op.i64_shr_u).op(Op.i32_wrap_i64).i32(TLB_ENTRIES - 1).op(Op.i32_and).i32(5).op(Op.i32_shl);
    c.get(dtlb).op(Op.i32_add).tee(e);
    c.mem(Op.i64_load, 3, tagOffset);
    // Compare with the page of the access's last byte: a page-crossing access misses.
    c.get(va).i64(size - 1).op(Op.i64_add).i64(-4096).op(Op.i64_and).op(Op.i64_eq);
  }

  private hostAddr(): void {
    const { va, e } = this.locals;
    this.c.get(va).op(Op.i32_wrap_i64).get(e).mem(Op.i32_load, 2, 24).op(Op.i32_add);
  }

  private ea(rs1: number, imm: number): void {
    this.getX(rs1);
    if (imm !== 0) this.c.i64(imm).op(Op.i64_add);
    this.c.set(this.locals.va);
  }

  /**
   * An access of `size` bytes at x[rs1] + imm: `fast` runs when the TLB probe (read tag at
   * +0, write tag at +8) hits and `fsGuard` (FP accesses) holds, the interpreter otherwise.
   */
  private access(j: number, x: Insn, size: number, tagOffset: number, fsGuard: FsGuard, fast: () => void): void {
    const c = this.c;
    this.ea(x.d.rs1, x.d.imm);
    this.probe(size, tagOffset);
    if (fsGuard !== FsGuard.None) {
      this.fsState(fsGuard);
      c.op(Op.i32_and);
    }
    c.if();
    fast();
    c.else();
    this.viaInterpreter(j, x);
    c.end();
  }

  private load(j: number, x: Insn, size: number, op: Op): void {
    const d = x.d;
    this.access(j, x, size, 0, FsGuard.None, () => {
      this.pushXAddr(d.rd);
      this.hostAddr();
      this.c.mem(op, 0, 0);
      this.storeX(d.rd);
    });
  }

  private store(j: number, x: Insn, size: number, op: Op): void {
    const d = x.d;
    this.access(j, x, size, 8, FsGuard.None, () => {
      this.hostAddr();
      this.getX(d.rs2);
      this.c.mem(op, 0, 0);
    });
  }

  /** FLW/FLD: the bits loaded; a single is NaN-boxed. Writing f[rd] needs FS Dirty already. */
  private fload(j: number, x: Insn, size: 4 | 8): void {
    const c = this.c;
    const d = x.d;
    this.access(j, x, size, 0, FsGuard.Dirty, () => {
      c.i32(this.hb);
      this.hostAddr();
      if (size === 8) c.mem(Op.i64_load, 0, 0);
      else c.mem(Op.i64_load32_u, 0, 0).i64(BOX).op(Op.i64_or);
      c.mem(Op.i64_store, 3, fo(d.rd));
    });
  }

  /** FSW/FSD: the low `size` bytes of f[rs2] as they are (FSW does not check the NaN box). */
  private fstore(j: number, x: Insn, size: 4 | 8): void {
    const c = this.c;
    const d = x.d;
    this.access(j, x, size, 8, FsGuard.On, () => {
      this.hostAddr();
      c.i32(this.hb);
      if (size === 8) c.mem(Op.i64_load, 3, fo(d.rs2)).mem(Op.i64_store, 0, 0);
      else c.mem(Op.i32_load, 2, fo(d.rs2)).mem(Op.i32_store, 0, 0);
    });
  }

  // ---- atomics (Unprivileged ch. 14) ----
  //
  // Inline only where the interpreter's handler would do nothing more: the address naturally
  // aligned and its TLB entry hit (a write entry exists only for a dirty RAM page nobody
  // watches, so no store there needs noticing). Everything else goes to the handler.

  /** Pushes 1 when the atomic access of `size` at x[rs1] is aligned and its TLB probe hits. */
  private atomicProbe(rs1: number, size: number, tagOffset: number): void {
    const c = this.c;
    this.ea(rs1, 0);
    this.probe(size, tagOffset);
    c.get(this.locals.va).op(Op.i32_wrap_i64).i32(size - 1).op(Op.i32_and).op(Op.i32_eqz).op(Op.i32_and);
  }

  /** Pushes the physical address of the access (the reservation's key), from its host address. */
  private physAddr(): void {
    this.hostAddr();
    this.c.op(Op.i64_extend_i32_u).i64(RAM_BASE - RAM_HOST).op(Op.i64_add);
  }

  /**
   * Pushes x[rs2] as an AMO operand: a word sign-extended from 32 bits, or zero-extended for an
   * unsigned compare.
   */
  private amoOperand(rs2: number, size: number, unsigned: boolean): void {
    this.getX(rs2);
    if (size === 4) this.c.op(Op.i32_wrap_i64).op(unsigned ? Op.i64_extend_i32_u : Op.i64_extend_i32_s);
  }

  /** LR.W/D: load (a word sign-extended) and hold a reservation on its physical address. */
  private lr(j: number, x: Insn, size: number): void {
    const c = this.c;
    const d = x.d;
    this.atomicProbe(d.rs1, size, 0);
    c.if();
    this.pushXAddr(d.rd);
    this.hostAddr();
    c.mem(size === 8 ? Op.i64_load : Op.i64_load32_s, 0, 0);
    this.storeX(d.rd);
    c.i32(this.hb).i32(1).mem(Op.i32_store, 2, RES_VALID);
    c.i32(this.hb);
    this.physAddr();
    c.mem(Op.i64_store, 3, RES_ADDR);
    c.else();
    this.viaInterpreter(j, x);
    c.end();
  }

  /** SC.W/D: store only while the reservation holds this address; rd = 0 on success, else 1. */
  private sc(j: number, x: Insn, size: number): void {
    const c = this.c;
    const d = x.d;
    const ok = this.locals.st;
    this.atomicProbe(d.rs1, size, 8);
    c.if();
    c.i32(this.hb).mem(Op.i32_load, 2, RES_VALID).i32(1).op(Op.i32_eq);
    c.i32(this.hb).mem(Op.i64_load, 3, RES_ADDR);
    this.physAddr();
    c.op(Op.i64_eq).op(Op.i32_and).set(ok);
    c.i32(this.hb).i32(0).mem(Op.i32_store, 2, RES_VALID);
    // Store before writing rd: rd may be rs2.
    c.get(ok).if();
    this.hostAddr();
    this.getX(d.rs2);
    c.mem(size === 8 ? Op.i64_store : Op.i64_store32, 0, 0);
    c.end();
    this.pushXAddr(d.rd);
    c.get(ok).op(Op.i32_eqz).op(Op.i64_extend_i32_u);
    this.storeX(d.rd);
    c.else();
    this.viaInterpreter(j, x);
    c.end();
  }

  /** AMO<op>.W/D: rd = the old value (a word sign-extended), memory = old <op> x[rs2]. */
  private amo(j: number, x: Insn, size: number, op: string): void {
    const c = this.c;
    const d = x.d;
    const old = this.locals.t;
    this.atomicProbe(d.rs1, size, 8);
    c.if();
    this.hostAddr();
    c.mem(size === 8 ? Op.i64_load : Op.i64_load32_s, 0, 0).set(old);
    this.hostAddr();
    const lowWord = (): void => {
      if (size === 4) c.i64(0xffff_ffff).op(Op.i64_and);
    };
    switch (op) {
      case 'swap': this.getX(d.rs2); break;
      case 'add': c.get(old); this.getX(d.rs2); c.op(Op.i64_add); break;
      case 'xor': c.get(old); this.getX(d.rs2); c.op(Op.i64_xor); break;
      case 'and': c.get(old); this.getX(d.rs2); c.op(Op.i64_and); break;
      case 'or': c.get(old); this.getX(d.rs2); c.op(Op.i64_or); break;
      default: {
        // min and max compare signed (a word sign-extended), minu and maxu unsigned (a word
        // zero-extended).
        const unsigned = op === 'minu' || op === 'maxu';
        const isMin = op === 'min' || op === 'minu';
        // select(a, b, old < rs2): min keeps old when it is smaller, max keeps rs2.
        if (isMin) c.get(old);
        else this.amoOperand(d.rs2, size, false);
        if (isMin) this.amoOperand(d.rs2, size, false);
        else c.get(old);
        c.get(old);
        if (unsigned) lowWord();
        this.amoOperand(d.rs2, size, unsigned);
        c.op(unsigned ? Op.i64_lt_u : Op.i64_lt_s);
        c.op(Op.select);
      }
    }
    c.mem(size === 8 ? Op.i64_store : Op.i64_store32, 0, 0);
    this.pushXAddr(d.rd);
    c.get(old);
    this.storeX(d.rd);
    c.else();
    this.viaInterpreter(j, x);
    c.end();
  }

  // ---- ALU helpers ----

  private rr(d: Decoded, op: Op): void {
    this.pushXAddr(d.rd);
    this.getX(d.rs1);
    this.getX(d.rs2);
    this.c.op(op);
    this.storeX(d.rd);
  }
  private ri(d: Decoded, op: Op, imm: number): void {
    this.pushXAddr(d.rd);
    this.getX(d.rs1);
    this.c.i64(imm).op(op);
    this.storeX(d.rd);
  }
  /** A 32-bit operation (W form): wrap both operands, operate, sign-extend. */
  private rrw(d: Decoded, op: Op): void {
    this.pushXAddr(d.rd);
    this.getX(d.rs1);
    this.c.op(Op.i32_wrap_i64);
    this.getX(d.rs2);
    this.c.op(Op.i32_wrap_i64).op(op).op(Op.i64_extend_i32_s);
    this.storeX(d.rd);
  }
  private riw(d: Decoded, op: Op, imm: number): void {
    this.pushXAddr(d.rd);
    this.getX(d.rs1);
    this.c.op(Op.i32_wrap_i64).i32(imm).op(op).op(Op.i64_extend_i32_s);
    this.storeX(d.rd);
  }
  private cmp(d: Decoded, op: Op, withImm: boolean): void {
    this.pushXAddr(d.rd);
    this.getX(d.rs1);
    if (withImm) this.c.i64(d.imm);
    else this.getX(d.rs2);
    this.c.op(op).op(Op.i64_extend_i32_u);
    this.storeX(d.rd);
  }

  /** Division with the RISC-V results for a zero divisor and overflow (Unprivileged 13.2). */
  private div(d: Decoded, signed: boolean, rem: boolean, word: boolean): void {
    const c = this.c;
    const t = this.locals.t;
    const va = this.locals.va; // a second i64 temporary
    this.getX(d.rs1);
    c.set(va);
    this.getX(d.rs2);
    c.set(t);
    if (word) {
      // Operate on sign- or zero-extended 32-bit values in i64; results sign-extend from 32.
      for (const l of [va, t]) c.get(l).op(Op.i32_wrap_i64).op(signed ? Op.i64_extend_i32_s : Op.i64_extend_i32_u).set(l);
    }
    this.pushXAddr(d.rd);
    c.get(t).op(Op.i64_eqz).if(I64);
    // x / 0 = all ones; x % 0 = x.
    if (rem) c.get(va);
    else c.i64(-1);
    c.else();
    if (signed && !word) {
      // Most negative / -1 overflows: quotient = dividend, remainder 0 (i64.div_s would trap).
      c.get(va).i64(-(1n << 63n)).op(Op.i64_eq).get(t).i64(-1).op(Op.i64_eq).op(Op.i32_and).if(I64);
      if (rem) c.i64(0);
      else c.get(va);
      c.else();
    }
    c.get(va).get(t).op(rem ? (signed ? Op.i64_rem_s : Op.i64_rem_u) : signed ? Op.i64_div_s : Op.i64_div_u);
    if (signed && !word) c.end();
    c.end();
    if (word) c.op(Op.i32_wrap_i64).op(Op.i64_extend_i32_s);
    this.storeX(d.rd);
  }

  private mulh(d: Decoded, aSigned: boolean, bSigned: boolean): void {
    const c = this.c;
    this.pushXAddr(d.rd);
    this.getX(d.rs1);
    this.getX(d.rs2);
    c.call(F_MULHU);
    // Signed corrections: subtract b when a < 0, and a when b < 0 (two's complement identity).
    if (aSigned) {
      this.getX(d.rs2);
      this.getX(d.rs1);
      c.i64(63).op(Op.i64_shr_s).op(Op.i64_and).op(Op.i64_sub);
    }
    if (bSigned) {
      this.getX(d.rs1);
      this.getX(d.rs2);
      c.i64(63).op(Op.i64_shr_s).op(Op.i64_and).op(Op.i64_sub);
    }
    this.storeX(d.rd);
  }

  // ---- floating point (Unprivileged ch. 20, 21) ----
  //
  // Each F/D fast path runs only where it provably does what exec-fp.ts does, and hands the
  // instruction to the interpreter otherwise (which also raises illegal instructions precisely):
  // - mstatus.FS: Off falls back; an instruction that writes an f register needs FS Dirty
  //   already, so the write changes nothing else (the interpreter makes it Dirty the first time).
  // - arithmetic needs round-to-nearest-even (wasm's only mode) and NX already accrued; a
  //   finite result above the smallest normal then raises no flag that is not already set
  //   (no NV, DZ, OF; no UF since tininess is detected after rounding: a result of exactly
  //   2^emin may be tiny, so it falls back too). Zeros, subnormals, infinities and NaNs fall back.
  // - singles need both operands NaN-boxed.

  /**
   * Pushes the FS condition: for On, non-zero when FS is not Off; for Dirty, 1 when FS is Dirty.
   */
  private fsState(g: FsGuard): void {
    const c = this.c;
    c.i32(this.hb).mem(Op.i32_load, 2, MSTATUS).i32(MSTATUS_FS).op(Op.i32_and);
    if (g === FsGuard.Dirty) c.i32(MSTATUS_FS).op(Op.i32_eq);
  }

  /**
   * Emits `fast` with the interpreter as its fallback. `fast` leaves nothing on the stack and
   * calls `unless()` with an i32 pushed to leave for the interpreter when it is zero.
   */
  private guarded(j: number, x: Insn, fast: (unless: () => void) => void): void {
    const c = this.c;
    c.block().block();
    fast(() => {
      c.op(Op.i32_eqz).brIf(0);
    });
    c.br(1);
    c.end();
    this.viaInterpreter(j, x);
    c.end();
  }

  /** Pushes 1 when the effective rounding mode of `rm` is RNE and NX has accrued (rm is 0 or 7). */
  private rneInexact(rm: number): void {
    const c = this.c;
    c.i32(this.hb).mem(Op.i32_load, 2, FCSR);
    // fflags.NX is bit 0, frm bits 5-7 (Unprivileged 20.2).
    if (rm === 0) c.i32(1).op(Op.i32_and);
    else c.i32(0xe1).op(Op.i32_and).i32(1).op(Op.i32_eq);
  }

  /** Pushes 1 when the rounding mode field is not reserved (rm 0-4, or 7 with frm 0-4); rm is not 5 or 6. */
  private rmLegal(rm: number): void {
    const c = this.c;
    if (rm !== 7) c.i32(1);
    else c.i32(this.hb).mem(Op.i32_load, 2, FCSR).i32(5).op(Op.i32_shr_u).i32(7).op(Op.i32_and).i32(5).op(Op.i32_lt_u);
  }

  /** Pushes 1 when f[r] holds a NaN-boxed single, for each register of `rs`. */
  private boxed(rs: number[]): void {
    const c = this.c;
    rs.forEach((r, i) => {
      c.i32(this.hb).mem(Op.i32_load, 2, fo(r) + 4);
      if (i > 0) c.op(Op.i32_and);
    });
    c.i32(-1).op(Op.i32_eq);
  }

  private loadD(r: number, neg = false): void {
    this.c.i32(this.hb).mem(Op.f64_load, 3, fo(r));
    if (neg) this.c.op(Op.f64_neg);
  }
  private loadS(r: number): void {
    this.c.i32(this.hb).mem(Op.f32_load, 2, fo(r));
  }

  /** Pushes 1 when local `l` (f64, or f32 when `single`) is finite and above the smallest normal in magnitude. */
  private normal(l: number, single: boolean): void {
    const c = this.c;
    if (single) {
      c.get(l).op(Op.f32_abs).f32(MIN_NORMAL_S).op(Op.f32_gt);
      c.get(l).op(Op.f32_abs).f32(Infinity).op(Op.f32_lt).op(Op.i32_and);
    } else {
      c.get(l).op(Op.f64_abs).f64(MIN_NORMAL_D).op(Op.f64_gt);
      c.get(l).op(Op.f64_abs).f64(Infinity).op(Op.f64_lt).op(Op.i32_and);
    }
  }

  /** Stores the single in local `l` to f[rd], NaN-boxed. */
  private storeBoxed(rd: number, l: number): void {
    this.c.i32(this.hb).get(l).op(Op.i32_reinterpret_f32).op(Op.i64_extend_i32_u).i64(BOX).op(Op.i64_or).mem(Op.i64_store, 3, fo(rd));
  }

  /**
   * FADD/FSUB/FMUL/FDIV/FSQRT (and, through `operands`, the fused multiply-adds): the host's
   * correctly rounded result under RNE.
   */
  private farith(j: number, x: Insn, single: boolean, operands: () => void): void {
    const d = x.d;
    if (d.rm !== 0 && d.rm !== 7) return this.viaInterpreter(j, x);
    const c = this.c;
    const r = single ? this.locals.sr : this.locals.fr;
    this.guarded(j, x, (unless) => {
      this.fsState(FsGuard.Dirty);
      unless();
      this.rneInexact(d.rm);
      unless();
      if (single) {
        this.boxed(d.def.name.startsWith('fsqrt') ? [d.rs1] : d.def.format === 'R4' ? [d.rs1, d.rs2, d.rs3] : [d.rs1, d.rs2]);
        unless();
      }
      operands();
      c.set(r);
      this.normal(r, single);
      unless();
      if (single) this.storeBoxed(d.rd, r);
      else c.i32(this.hb).get(r).mem(Op.f64_store, 3, fo(d.rd));
    });
  }

  private binD(j: number, x: Insn, op: Op): void {
    this.farith(j, x, false, () => {
      this.loadD(x.d.rs1);
      this.loadD(x.d.rs2);
      this.c.op(op);
    });
  }
  private binS(j: number, x: Insn, op: Op): void {
    this.farith(j, x, true, () => {
      this.loadS(x.d.rs1);
      this.loadS(x.d.rs2);
      this.c.op(op);
    });
  }

  /** x × y + z (negations are exact), through the module's fmaRne helper; NaN from it falls back. */
  private fmaD(j: number, x: Insn, negProduct: boolean, negAddend: boolean): void {
    this.farith(j, x, false, () => {
      this.loadD(x.d.rs1, negProduct);
      this.loadD(x.d.rs2);
      this.loadD(x.d.rs3, negAddend);
      this.c.call(F_FMA);
    });
  }

  /**
   * Single-precision fused multiply-add in binary64: the product of two singles is exact, and
   * s = fl(p + z) with its TwoSum error e. Rounding s to single gives the correctly rounded
   * result unless e ≠ 0 and s is exactly a midpoint between two singles (then falls back).
   */
  private fmaS(j: number, x: Insn, negProduct: boolean, negAddend: boolean): void {
    const c = this.c;
    const { fa, fb, fr } = this.locals;
    const d = x.d;
    this.farith(j, x, true, () => {
      this.loadS(d.rs1);
      c.op(Op.f64_promote_f32);
      if (negProduct) c.op(Op.f64_neg);
      this.loadS(d.rs2);
      c.op(Op.f64_promote_f32).op(Op.f64_mul).set(fa); // p, exact
      this.loadS(d.rs3);
      c.op(Op.f64_promote_f32);
      if (negAddend) c.op(Op.f64_neg);
      c.set(fb);
      // s = p + z; e = (p - (s - bb)) + (z - bb), bb = s - p
      c.get(fa).get(fb).op(Op.f64_add).set(fr);
      c.get(fa).get(fr).get(fr).get(fa).op(Op.f64_sub).op(Op.f64_sub).op(Op.f64_sub);
      c.get(fb).get(fr).get(fa).op(Op.f64_sub).op(Op.f64_sub).op(Op.f64_add);
      c.f64(0).op(Op.f64_eq);
      // ... or s not at a single's midpoint: the 29 bits below a single's significand are not 1000...0.
      c.get(fr).op(Op.i64_reinterpret_f64).i64(0x1fff_ffff).op(Op.i64_and).i64(0x1000_0000).op(Op.i64_ne);
      c.op(Op.i32_or);
      // Fall back (the result NaN fails the normal check) when the rounding could be double.
      c.if(F64).get(fr).else().f64(NaN).end();
      c.op(Op.f32_demote_f64);
    });
  }

  /** FSGNJ/FSGNJN/FSGNJX (kind 0, 1, 2): bit operations, no flags, no canonicalising. */
  private sgnj(j: number, x: Insn, kind: number, single: boolean): void {
    const c = this.c;
    const d = x.d;
    this.guarded(j, x, (unless) => {
      this.fsState(FsGuard.Dirty);
      unless();
      if (single) {
        this.boxed([d.rs1, d.rs2]);
        unless();
      }
      c.i32(this.hb);
      if (single) {
        const sign = 0x8000_0000 | 0;
        c.i32(this.hb).mem(Op.i32_load, 2, fo(d.rs1));
        if (kind !== 2) c.i32(~sign).op(Op.i32_and);
        c.i32(this.hb).mem(Op.i32_load, 2, fo(d.rs2)).i32(sign).op(Op.i32_and);
        if (kind === 1) c.i32(sign).op(Op.i32_xor);
        c.op(kind === 2 ? Op.i32_xor : Op.i32_or);
        c.op(Op.i64_extend_i32_u).i64(BOX).op(Op.i64_or);
      } else {
        c.i32(this.hb).mem(Op.i64_load, 3, fo(d.rs1));
        if (kind !== 2) c.i64(~SIGN64).op(Op.i64_and);
        c.i32(this.hb).mem(Op.i64_load, 3, fo(d.rs2)).i64(SIGN64).op(Op.i64_and);
        if (kind === 1) c.i64(SIGN64).op(Op.i64_xor);
        c.op(kind === 2 ? Op.i64_xor : Op.i64_or);
      }
      c.mem(Op.i64_store, 3, fo(d.rd));
    });
  }

  /** FEQ/FLT/FLE: only with no NaN operand (NaNs raise NV by rules that differ per instruction). */
  private fcmp(j: number, x: Insn, op: Op, single: boolean): void {
    const c = this.c;
    const d = x.d;
    const { fa, fr, sr } = this.locals;
    this.guarded(j, x, (unless) => {
      this.fsState(FsGuard.On);
      unless();
      if (single) {
        this.boxed([d.rs1, d.rs2]);
        unless();
        this.loadS(d.rs1);
        c.set(sr);
        this.loadS(d.rs2);
        c.op(Op.f64_promote_f32).set(fr);
        c.get(sr).op(Op.f64_promote_f32).set(fa); // promotion is exact and keeps the order
      } else {
        this.loadD(d.rs1);
        c.set(fa);
        this.loadD(d.rs2);
        c.set(fr);
      }
      c.get(fa).get(fa).op(Op.f64_eq).get(fr).get(fr).op(Op.f64_eq).op(Op.i32_and);
      unless();
      this.pushXAddr(d.rd);
      c.get(fa).get(fr).op(op).op(Op.i64_extend_i32_u);
      this.storeX(d.rd);
    });
  }

  /** FCVT.D.W/WU/L/LU, FCVT.S.W: integer to float, only where exact (no flag, any legal mode). */
  private fromInt(j: number, x: Insn, kind: 'w' | 'wu' | 'l' | 'lu' | 'sw'): void {
    const d = x.d;
    if (d.rm === 5 || d.rm === 6) return this.viaInterpreter(j, x);
    const c = this.c;
    this.guarded(j, x, (unless) => {
      this.fsState(FsGuard.Dirty);
      unless();
      this.rmLegal(d.rm);
      unless();
      if (kind === 'l') {
        this.getX(d.rs1);
        c.i64(2 ** 53).op(Op.i64_add).i64(2 ** 54).op(Op.i64_le_u);
        unless();
      } else if (kind === 'lu') {
        this.getX(d.rs1);
        c.i64(2 ** 53).op(Op.i64_le_u);
        unless();
      } else if (kind === 'sw') {
        this.getX(d.rs1);
        c.op(Op.i32_wrap_i64).i32(2 ** 24).op(Op.i32_add).i32(2 ** 25).op(Op.i32_le_u);
        unless();
      }
      if (kind === 'sw') {
        this.getX(d.rs1);
        c.op(Op.i32_wrap_i64).op(Op.f32_convert_i32_s).set(this.locals.sr);
        this.storeBoxed(d.rd, this.locals.sr);
        return;
      }
      c.i32(this.hb);
      this.getX(d.rs1);
      if (kind === 'w') c.op(Op.i32_wrap_i64).op(Op.f64_convert_i32_s);
      else if (kind === 'wu') c.op(Op.i32_wrap_i64).op(Op.f64_convert_i32_u);
      else if (kind === 'l') c.op(Op.f64_convert_i64_s);
      else c.op(Op.f64_convert_i64_u);
      c.mem(Op.f64_store, 3, fo(d.rd));
    });
  }

  /**
   * FCVT.W.D/FCVT.L.D with static RTZ (what C casts compile to): in range, the truncation is
   * the result; an inexact one raises NX, which needs NX accrued and FS Dirty already.
   */
  private toIntRtz(j: number, x: Insn, long: boolean): void {
    const d = x.d;
    if (d.rm !== 1) return this.viaInterpreter(j, x);
    const c = this.c;
    const { fa } = this.locals;
    this.guarded(j, x, (unless) => {
      this.fsState(FsGuard.On);
      unless();
      this.loadD(d.rs1);
      c.set(fa);
      // -2^31 - 1 < v < 2^31 (or -2^63 ≤ v < 2^63): the truncation fits; NaN fails.
      c.get(fa).f64(long ? -(2 ** 63) : -(2 ** 31) - 1).op(long ? Op.f64_ge : Op.f64_gt);
      c.get(fa).f64(long ? 2 ** 63 : 2 ** 31).op(Op.f64_lt).op(Op.i32_and);
      unless();
      // Exact, or NX already set with FS Dirty (the interpreter would write fflags).
      c.get(fa).op(Op.f64_trunc).get(fa).op(Op.f64_eq);
      this.fsState(FsGuard.Dirty);
      c.i32(this.hb).mem(Op.i32_load, 2, FCSR).i32(1).op(Op.i32_and).op(Op.i32_and).op(Op.i32_or);
      unless();
      this.pushXAddr(d.rd);
      c.get(fa);
      if (long) c.op(Op.i64_trunc_f64_s);
      else c.op(Op.i32_trunc_f64_s).op(Op.i64_extend_i32_s);
      this.storeX(d.rd);
    });
  }

  /** FMV.X.D/FMV.X.W (to x: no FS change), FMV.D.X/FMV.W.X (to f: FS Dirty already). */
  private fmv(j: number, x: Insn, toX: boolean, single: boolean): void {
    const c = this.c;
    const d = x.d;
    this.guarded(j, x, (unless) => {
      this.fsState(toX ? FsGuard.On : FsGuard.Dirty);
      unless();
      if (toX) {
        this.pushXAddr(d.rd);
        c.i32(this.hb).mem(single ? Op.i64_load32_s : Op.i64_load, single ? 2 : 3, fo(d.rs1));
        this.storeX(d.rd);
      } else {
        c.i32(this.hb);
        this.getX(d.rs1);
        if (single) c.i64(BOX).op(Op.i64_or);
        c.mem(Op.i64_store, 3, fo(d.rd));
      }
    });
  }

  private fp(j: number, x: Insn): boolean {
    const d = x.d;
    const c = this.c;
    switch (d.def.name) {
      case 'fld': this.fload(j, x, 8); return true;
      case 'flw': this.fload(j, x, 4); return true;
      case 'fsd': this.fstore(j, x, 8); return true;
      case 'fsw': this.fstore(j, x, 4); return true;
      case 'fadd.d': this.binD(j, x, Op.f64_add); return true;
      case 'fsub.d': this.binD(j, x, Op.f64_sub); return true;
      case 'fmul.d': this.binD(j, x, Op.f64_mul); return true;
      case 'fdiv.d': this.binD(j, x, Op.f64_div); return true;
      case 'fsqrt.d':
        this.farith(j, x, false, () => {
          this.loadD(d.rs1);
          c.op(Op.f64_sqrt);
        });
        return true;
      case 'fadd.s': this.binS(j, x, Op.f32_add); return true;
      case 'fsub.s': this.binS(j, x, Op.f32_sub); return true;
      case 'fmul.s': this.binS(j, x, Op.f32_mul); return true;
      case 'fdiv.s': this.binS(j, x, Op.f32_div); return true;
      case 'fsqrt.s':
        this.farith(j, x, true, () => {
          this.loadS(d.rs1);
          c.op(Op.f32_sqrt);
        });
        return true;
      case 'fmadd.d': this.fmaD(j, x, false, false); return true;
      case 'fmsub.d': this.fmaD(j, x, false, true); return true;
      case 'fnmsub.d': this.fmaD(j, x, true, false); return true;
      case 'fnmadd.d': this.fmaD(j, x, true, true); return true;
      case 'fmadd.s': this.fmaS(j, x, false, false); return true;
      case 'fmsub.s': this.fmaS(j, x, false, true); return true;
      case 'fnmsub.s': this.fmaS(j, x, true, false); return true;
      case 'fnmadd.s': this.fmaS(j, x, true, true); return true;
      case 'fsgnj.d': this.sgnj(j, x, 0, false); return true;
      case 'fsgnjn.d': this.sgnj(j, x, 1, false); return true;
      case 'fsgnjx.d': this.sgnj(j, x, 2, false); return true;
      case 'fsgnj.s': this.sgnj(j, x, 0, true); return true;
      case 'fsgnjn.s': this.sgnj(j, x, 1, true); return true;
      case 'fsgnjx.s': this.sgnj(j, x, 2, true); return true;
      case 'feq.d': this.fcmp(j, x, Op.f64_eq, false); return true;
      case 'flt.d': this.fcmp(j, x, Op.f64_lt, false); return true;
      case 'fle.d': this.fcmp(j, x, Op.f64_le, false); return true;
      case 'feq.s': this.fcmp(j, x, Op.f64_eq, true); return true;
      case 'flt.s': this.fcmp(j, x, Op.f64_lt, true); return true;
      case 'fle.s': this.fcmp(j, x, Op.f64_le, true); return true;
      case 'fcvt.d.w': this.fromInt(j, x, 'w'); return true;
      case 'fcvt.d.wu': this.fromInt(j, x, 'wu'); return true;
      case 'fcvt.d.l': this.fromInt(j, x, 'l'); return true;
      case 'fcvt.d.lu': this.fromInt(j, x, 'lu'); return true;
      case 'fcvt.s.w': this.fromInt(j, x, 'sw'); return true;
      case 'fcvt.w.d': this.toIntRtz(j, x, false); return true;
      case 'fcvt.l.d': this.toIntRtz(j, x, true); return true;
      case 'fmv.x.d': this.fmv(j, x, true, false); return true;
      case 'fmv.x.w': this.fmv(j, x, true, true); return true;
      case 'fmv.d.x': this.fmv(j, x, false, false); return true;
      case 'fmv.w.x': this.fmv(j, x, false, true); return true;
      default: return false;
    }
  }

  /** Emits instruction `j` of the block. The block's last instruction may transfer control. */
  insn(j: number, x: Insn): void {
    const d = x.d;
    const c = this.c;
    const imm = d.imm;
    const next = x.pc + d.len;
    switch (d.def.name) {
      case 'lui':
        this.pushXAddr(d.rd);
        c.i64(imm);
        return this.storeX(d.rd);
      case 'auipc':
        this.pushXAddr(d.rd);
        c.i64(x.pc + imm);
        return this.storeX(d.rd);
      case 'jal':
        this.pushXAddr(d.rd);
        c.i64(next);
        this.storeX(d.rd);
        return this.jumpTo(x.pc + imm);
      case 'jalr':
        this.getX(d.rs1);
        c.i64(imm).op(Op.i64_add).i64(-2).op(Op.i64_and).set(this.locals.va);
        this.pushXAddr(d.rd);
        c.i64(next);
        this.storeX(d.rd);
        c.i32(this.hb).get(this.locals.va).mem(Op.i64_store, 3, PC_OFF);
        return this.ret(Exit.Continue);
      case 'beq': return this.branch(x, Op.i64_eq);
      case 'bne': return this.branch(x, Op.i64_ne);
      case 'blt': return this.branch(x, Op.i64_lt_s);
      case 'bge': return this.branch(x, Op.i64_ge_s);
      case 'bltu': return this.branch(x, Op.i64_lt_u);
      case 'bgeu': return this.branch(x, Op.i64_ge_u);
      case 'lb': return this.load(j, x, 1, Op.i64_load8_s);
      case 'lh': return this.load(j, x, 2, Op.i64_load16_s);
      case 'lw': return this.load(j, x, 4, Op.i64_load32_s);
      case 'ld': return this.load(j, x, 8, Op.i64_load);
      case 'lbu': return this.load(j, x, 1, Op.i64_load8_u);
      case 'lhu': return this.load(j, x, 2, Op.i64_load16_u);
      case 'lwu': return this.load(j, x, 4, Op.i64_load32_u);
      case 'sb': return this.store(j, x, 1, Op.i64_store8);
      case 'sh': return this.store(j, x, 2, Op.i64_store16);
      case 'sw': return this.store(j, x, 4, Op.i64_store32);
      case 'sd': return this.store(j, x, 8, Op.i64_store);
      case 'addi': return this.ri(d, Op.i64_add, imm);
      case 'slti': return this.cmp(d, Op.i64_lt_s, true);
      case 'sltiu': return this.cmp(d, Op.i64_lt_u, true);
      case 'xori': return this.ri(d, Op.i64_xor, imm);
      case 'ori': return this.ri(d, Op.i64_or, imm);
      case 'andi': return this.ri(d, Op.i64_and, imm);
      case 'slli': return this.ri(d, Op.i64_shl, imm);
      case 'srli': return this.ri(d, Op.i64_shr_u, imm);
      case 'srai': return this.ri(d, Op.i64_shr_s, imm);
      case 'add': return this.rr(d, Op.i64_add);
      case 'sub': return this.rr(d, Op.i64_sub);
      case 'sll': return this.rr(d, Op.i64_shl);
      case 'slt': return this.cmp(d, Op.i64_lt_s, false);
      case 'sltu': return this.cmp(d, Op.i64_lt_u, false);
      case 'xor': return this.rr(d, Op.i64_xor);
      case 'srl': return this.rr(d, Op.i64_shr_u);
      case 'sra': return this.rr(d, Op.i64_shr_s);
      case 'or': return this.rr(d, Op.i64_or);
      case 'and': return this.rr(d, Op.i64_and);
      case 'addiw': return this.riw(d, Op.i32_add, d.imm);
      case 'slliw': return this.riw(d, Op.i32_shl, d.imm);
      case 'srliw': return this.riw(d, Op.i32_shr_u, d.imm);
      case 'sraiw': return this.riw(d, Op.i32_shr_s, d.imm);
      case 'addw': return this.rrw(d, Op.i32_add);
      case 'subw': return this.rrw(d, Op.i32_sub);
      case 'sllw': return this.rrw(d, Op.i32_shl);
      case 'srlw': return this.rrw(d, Op.i32_shr_u);
      case 'sraw': return this.rrw(d, Op.i32_shr_s);
      case 'mulw': return this.rrw(d, Op.i32_mul);
      case 'mul': return this.rr(d, Op.i64_mul);
      case 'mulhu': return this.mulh(d, false, false);
      case 'mulh': return this.mulh(d, true, true);
      case 'mulhsu': return this.mulh(d, true, false);
      case 'div': return this.div(d, true, false, false);
      case 'divu': return this.div(d, false, false, false);
      case 'rem': return this.div(d, true, true, false);
      case 'remu': return this.div(d, false, true, false);
      case 'divw': return this.div(d, true, false, true);
      case 'divuw': return this.div(d, false, false, true);
      case 'remw': return this.div(d, true, true, true);
      case 'remuw': return this.div(d, false, true, true);
      // FENCE: nothing to order on one in-order hart. FENCE.I: a store into translated code
      // already dropped it (and left the region), so what runs next is the new code.
      case 'fence':
      case 'fence.i':
        return;
      case 'csrrw':
      case 'csrrs':
      case 'csrrc':
      case 'csrrwi':
      case 'csrrsi':
      case 'csrrci':
      case 'sfence.vma':
        // The interpreter's handler; it exits when the slice must end (an interrupt became
        // deliverable, the address space changed). A CSR write may change the data MMU (SUM,
        // MPRV), so the TLB base is read again.
        this.viaInterpreter(j, x);
        loadDataTlb(this.c, this.hb, this.locals.dtlb);
        return;
      case 'lr.w': return this.lr(j, x, 4);
      case 'lr.d': return this.lr(j, x, 8);
      case 'sc.w': return this.sc(j, x, 4);
      case 'sc.d': return this.sc(j, x, 8);
      default:
        if (d.def.kind === Kind.Amo) {
          const m = /^amo(swap|add|xor|and|or|min|max|minu|maxu)\.([wd])$/.exec(d.def.name);
          if (m) return this.amo(j, x, m[2] === 'd' ? 8 : 4, m[1]!);
        }
        if (d.def.kind === Kind.System) throw new Error(`jit: system instruction ${d.def.name} inside a block`);
        if (this.fp(j, x)) return;
        // Atomics and floating point: the interpreter's handler, with exact state.
        return this.viaInterpreter(j, x);
    }
  }

  private branch(x: Insn, op: Op): void {
    const d = x.d;
    this.getX(d.rs1);
    this.getX(d.rs2);
    this.c.op(op).if();
    this.depth++;
    this.jumpTo(x.pc + d.imm);
    this.depth--;
    this.c.end();
    this.jumpTo(x.pc + d.len);
  }
}

/**
 * The module-internal helper `leave(h, budget, end, off, code)`: an exit to the dispatcher at
 * vpage + off with minstret = end - budget; returns `code`. (Inline, each exit cost about 25
 * bytes of WebAssembly; most blocks have one.)
 */
export function leaveFunction(vpage: number): Code {
  const c = new Code(5);
  const [h, budget, end, off, code] = [0, 1, 2, 3, 4];
  c.get(h).i64(vpage).get(off).op(Op.i64_extend_i32_s).op(Op.i64_add).mem(Op.i64_store, 3, PC_OFF);
  c.get(h).get(end).get(budget).op(Op.i64_extend_i32_s).op(Op.i64_sub).mem(Op.i64_store, 3, MINSTRET);
  c.get(code);
  return c;
}

/** The module-internal helper: the high 64 bits of an unsigned 64 x 64 product. */
export function mulhuFunction(): Code {
  const c = new Code(2);
  const a = 0;
  const b = 1;
  const ll = c.local(I64);
  const lh = c.local(I64);
  const hl = c.local(I64);
  const mid = c.local(I64);
  const lo32 = (l: number): void => {
    c.get(l).i64(0xffff_ffff).op(Op.i64_and);
  };
  const hi32 = (l: number): void => {
    c.get(l).i64(32).op(Op.i64_shr_u);
  };
  lo32(a); lo32(b); c.op(Op.i64_mul).set(ll);
  lo32(a); hi32(b); c.op(Op.i64_mul).set(lh);
  hi32(a); lo32(b); c.op(Op.i64_mul).set(hl);
  // mid = (ll >> 32) + lo(lh) + lo(hl): below 3 * 2^32, no overflow.
  hi32(ll); lo32(lh); c.op(Op.i64_add); lo32(hl); c.op(Op.i64_add).set(mid);
  // hi = ah * bh + (lh >> 32) + (hl >> 32) + (mid >> 32)
  hi32(a); hi32(b); c.op(Op.i64_mul);
  hi32(lh); c.op(Op.i64_add);
  hi32(hl); c.op(Op.i64_add);
  hi32(mid); c.op(Op.i64_add);
  return c;
}

const SPLIT = 134217729; // 2^27 + 1: Veltkamp's split into two 26-bit halves

/**
 * The module-internal helper fmaRne(x, y, z): x × y + z rounded once to nearest-even, or NaN
 * when it cannot decide. It is src/fpu/fma64.ts's f64FmaFast for RNE, on the same window: x
 * and y normal and below 2^995, z zero or within [2^-800, 2^900], the product within 2^±800;
 * then a × b = ph + pl exactly (Dekker) and three TwoSums give exact = r + w + v with
 * r = fl(s + u), |w| ≤ ½ulp(r). The result is r, except at an exact midpoint r + w, where v's
 * sign decides. A non-zero result is normal; exact zeros and everything else fall back.
 */
export function fmaFunction(): Code {
  const c = new Code(3);
  const [x, y, z] = [0, 1, 2];
  const l = (): number => c.local(F64);
  const [ph, pl, s, t, u, v, r, w, bb, ah, al, bh, bl, half] = [l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l(), l()];
  const er = c.local(I32);
  const nan = (): void => {
    c.f64(NaN).op(Op.return);
  };
  const inRange = (a: number, lo: number, hi: number): void => {
    c.get(a).op(Op.f64_abs).f64(lo).op(Op.f64_ge).get(a).op(Op.f64_abs).f64(hi).op(Op.f64_lt).op(Op.i32_and);
  };
  const bexp = (a: number): void => {
    c.get(a).op(Op.i64_reinterpret_f64).i64(52).op(Op.i64_shr_u).op(Op.i32_wrap_i64).i32(0x7ff).op(Op.i32_and);
  };
  // The window (NaNs and infinities fail it).
  inRange(x, MIN_NORMAL_D, 2 ** 995);
  inRange(y, MIN_NORMAL_D, 2 ** 995);
  c.op(Op.i32_and);
  c.get(z).f64(0).op(Op.f64_eq);
  c.get(z).op(Op.f64_abs).f64(2 ** -800).op(Op.f64_ge).get(z).op(Op.f64_abs).f64(2 ** 900).op(Op.f64_le).op(Op.i32_and);
  c.op(Op.i32_or).op(Op.i32_and).op(Op.i32_eqz).if();
  nan();
  c.end();
  // Dekker's product: ph + pl = x × y exactly.
  c.get(x).get(y).op(Op.f64_mul).set(ph);
  for (const [a, hi, lo] of [[x, ah, al], [y, bh, bl]] as const) {
    c.f64(SPLIT).get(a).op(Op.f64_mul).set(t);
    c.get(t).get(t).get(a).op(Op.f64_sub).op(Op.f64_sub).set(hi);
    c.get(a).get(hi).op(Op.f64_sub).set(lo);
  }
  // pl = (((ah × bh - ph) + ah × bl) + al × bh) + al × bl
  c.get(ah).get(bh).op(Op.f64_mul).get(ph).op(Op.f64_sub);
  c.get(ah).get(bl).op(Op.f64_mul).op(Op.f64_add);
  c.get(al).get(bh).op(Op.f64_mul).op(Op.f64_add);
  c.get(al).get(bl).op(Op.f64_mul).op(Op.f64_add).set(pl);
  c.get(ph).op(Op.f64_abs).f64(2 ** -800).op(Op.f64_ge).get(ph).op(Op.f64_abs).f64(2 ** 800).op(Op.f64_le).op(Op.i32_and);
  c.op(Op.i32_eqz).if();
  nan();
  c.end();
  /** sum = a + b, err = its exact error (Knuth's TwoSum). */
  const twoSum = (a: number, b: number, sum: number, err: number): void => {
    c.get(a).get(b).op(Op.f64_add).set(sum);
    c.get(sum).get(a).op(Op.f64_sub).set(bb);
    c.get(a).get(sum).get(bb).op(Op.f64_sub).op(Op.f64_sub);
    c.get(b).get(bb).op(Op.f64_sub).op(Op.f64_add).set(err);
  };
  twoSum(ph, z, s, t);
  twoSum(t, pl, u, v);
  twoSum(s, u, r, w);
  // v = 0: exact = r + w with r = fl(r + w).
  c.get(v).f64(0).op(Op.f64_eq).if();
  c.get(r).op(Op.return);
  c.end();
  // r = 0: then w = 0 and exact = v.
  c.get(r).f64(0).op(Op.f64_eq).if();
  c.get(v).op(Op.return);
  c.end();
  // v decides only at a midpoint when ulp(u) divides ulp(s) and a quarter of ulp(r).
  bexp(r);
  c.tee(er);
  bexp(u);
  c.i32(2).op(Op.i32_add).op(Op.i32_lt_u);
  bexp(u);
  bexp(s);
  c.op(Op.i32_gt_u).op(Op.i32_or);
  c.get(er).i32(54).op(Op.i32_lt_u).op(Op.i32_or); // ½ulp(r) below normal: not in the window
  c.if();
  nan();
  c.end();
  c.get(w).f64(0).op(Op.f64_eq).if();
  c.get(r).op(Op.return);
  c.end();
  // half = ½ulp(r) = 2^(er - 1076), or ¼ulp(r) when w points below a power of two.
  c.get(er).i32(53).op(Op.i32_sub).op(Op.i64_extend_i32_u).i64(52).op(Op.i64_shl).op(Op.f64_reinterpret_i64).set(half);
  c.get(r).f64(0).op(Op.f64_lt).get(w).f64(0).op(Op.f64_lt).op(Op.i32_ne);
  c.get(r).op(Op.i64_reinterpret_f64).i64(0xf_ffff_ffff_ffff).op(Op.i64_and).op(Op.i64_eqz).op(Op.i32_and).if();
  c.get(half).f64(0.5).op(Op.f64_mul).set(half);
  c.end();
  c.get(w).op(Op.f64_abs).get(half).op(Op.f64_ne).if();
  c.get(r).op(Op.return);
  c.end();
  // A midpoint: past it (v on w's side) the neighbour r + 2w is nearest.
  c.get(v).f64(0).op(Op.f64_lt).get(w).f64(0).op(Op.f64_lt).op(Op.i32_eq).if();
  c.get(r).get(w).get(w).op(Op.f64_add).op(Op.f64_add).op(Op.return);
  c.end();
  c.get(r);
  return c;
}
