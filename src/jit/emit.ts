/**
 * Instruction emitters: WebAssembly for one guest instruction, inside a region function. This
 * module holds a block's emission state and control flow (jumps, branches, exits) and
 * dispatches every other instruction to its family's emitter by table row: emit-int.ts (integer
 * and M), emit-mem.ts (loads, stores, atomics), emit-fp.ts (F and D). What the table's flags
 * say decides the rest (isa/table.ts, Flag): a CSR or SFENCE.VMA runs the interpreter's handler
 * in place, an instruction that ends a block never reaches here, and a row without an emitter
 * runs through the interpreter.
 *
 * Guest state stays in the machine's memory at the offsets of src/cpu/layout.ts (registers are
 * i64 loads and stores off the hart base `h`), so any instruction can fall back to the
 * reference interpreter's handler through the imported `slow` helper with the state exact.
 * That is how slow paths (TLB misses, devices, page-crossing accesses) and the floating point
 * and atomics that have no fast path run, and why faults are precise. A slow path is out of
 * line: the generated code passes the index of the instruction's entry in the region's
 * SlowPaths table (its pc, where it is in its block, its handler and operands) and the budget
 * left, and the helper sets the pc and minstret for the handler. Inline, the same bookkeeping
 * cost about 100 bytes of WebAssembly per load or store, most of what V8 had to compile.
 */
import { Flag, INSNS, Kind } from '../isa/table.ts';
import { MSTATUS_FS } from '../cpu/csr-numbers.ts';
import { PC_OFF } from '../cpu/layout.ts';
import { FP_EMITTERS } from './emit-fp.ts';
import { INT_EMITTERS } from './emit-int.ts';
import { fence, MEM_EMITTERS } from './emit-mem.ts';
import {
  Exit, F_GROUP0, F_LEAVE, F_SLOW, FsGuard, loadDataTlb, MINSTRET, MSTATUS, P_BUDGET, P_END, P_ENTRY, SLOW_NEXT, storeInstret, xo,
  type BlockRef, type Insn, type Locals, type SlowPaths,
} from './region.ts';
import { Code, Op } from './wasm.ts';

/** Emits instruction `j` of a block (see BlockEmitter.insn). */
export type EmitFn = (e: BlockEmitter, j: number, x: Insn) => void;

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
    readonly locals: Locals,
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
    readonly hb: number,
    private readonly slow: SlowPaths,
    /**
     * The memory is shared: harts in other threads may access it at the same time, so AMOs,
     * LR/SC and fences use the threads proposal's atomic instructions (emit-mem.ts).
     */
    readonly shared = false,
  ) {}

  // ---- state access ----

  /** Pushes x[r]. */
  getX(r: number): void {
    if (r === 0) this.c.i64(0n);
    else this.c.i32(this.hb).mem(Op.i64_load, 3, xo(r));
  }

  /** Pushes the address operand of a store into x[r] (nothing for x0): before the value. */
  pushXAddr(r: number): void {
    if (r !== 0) this.c.i32(this.hb);
  }

  /** Stores the i64 on the stack into x[r] (dropped for x0). Needs pushXAddr(r) first. */
  storeX(r: number): void {
    if (r === 0) this.c.op(Op.drop);
    else this.c.mem(Op.i64_store, 3, xo(r));
  }

  /** Pushes the FS condition: for On, non-zero when FS is not Off; for Dirty, 1 when FS is Dirty. */
  fsState(g: FsGuard): void {
    const c = this.c;
    c.i32(this.hb).mem(Op.i32_load, 2, MSTATUS).i32(MSTATUS_FS).op(Op.i32_and);
    if (g === FsGuard.Dirty) c.i32(MSTATUS_FS).op(Op.i32_eq);
  }

  // ---- leaving ----

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
   * Runs instruction `j` through the interpreter's handler, out of line (see SlowPaths), with
   * the pc and minstret set for it. When it completes normally the block goes on inline (this
   * code may sit on one arm of a branch: the slow path of a load). Otherwise (a trap, a device
   * access, a store into translated code) the helper leaves the state exact and names the exit.
   */
  viaInterpreter(j: number, x: Insn): void {
    const c = this.c;
    c.i32(this.slow.add(x, this.cost - j)).get(P_BUDGET).call(F_SLOW).tee(this.locals.st);
    c.i32(SLOW_NEXT).op(Op.i32_ne).if();
    c.get(this.locals.st).op(Op.return);
    c.end();
  }

  // ---- control flow ----

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

  /** A conditional branch: on to its target when `op` holds, else to the next instruction. */
  branch(x: Insn, op: Op): void {
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

  /** JALR: the target is computed, so the region hands it to the dispatcher. */
  jalr(x: Insn): void {
    const d = x.d;
    const c = this.c;
    this.getX(d.rs1);
    c.i64(d.imm).op(Op.i64_add).i64(-2).op(Op.i64_and).set(this.locals.va);
    this.pushXAddr(d.rd);
    c.i64(x.pc + d.len);
    this.storeX(d.rd);
    c.i32(this.hb).get(this.locals.va).mem(Op.i64_store, 3, PC_OFF);
    this.ret(Exit.Continue);
  }

  /** Emits instruction `j` of the block. The block's last instruction may transfer control. */
  insn(j: number, x: Insn): void {
    const def = x.d.def;
    const emit = BY_ID[def.id];
    if (emit) return emit(this, j, x);
    if (def.flags & Flag.Csr) {
      // The interpreter's handler; it exits when the slice must end (an interrupt became
      // deliverable, the address space changed). A CSR write may change the data MMU (SUM,
      // MPRV), so the TLB base is read again.
      this.viaInterpreter(j, x);
      loadDataTlb(this.c, this.hb, this.locals.dtlb);
      return;
    }
    if (def.kind === Kind.System) throw new Error(`jit: system instruction ${def.name} inside a block`);
    // No fast path (atomics and floating point without one): the interpreter's handler, with exact state.
    this.viaInterpreter(j, x);
  }
}

/** Upper immediates, jumps, branches and fences. */
const CONTROL_EMITTERS: Record<string, EmitFn> = {
  lui: (e, _j, x) => {
    e.pushXAddr(x.d.rd);
    e.c.i64(x.d.imm);
    e.storeX(x.d.rd);
  },
  auipc: (e, _j, x) => {
    e.pushXAddr(x.d.rd);
    e.c.i64(x.pc + x.d.imm);
    e.storeX(x.d.rd);
  },
  jal: (e, _j, x) => {
    e.pushXAddr(x.d.rd);
    e.c.i64(x.pc + x.d.len);
    e.storeX(x.d.rd);
    e.jumpTo(x.pc + x.d.imm);
  },
  jalr: (e, _j, x) => e.jalr(x),
  beq: (e, _j, x) => e.branch(x, Op.i64_eq),
  bne: (e, _j, x) => e.branch(x, Op.i64_ne),
  blt: (e, _j, x) => e.branch(x, Op.i64_lt_s),
  bge: (e, _j, x) => e.branch(x, Op.i64_ge_s),
  bltu: (e, _j, x) => e.branch(x, Op.i64_lt_u),
  bgeu: (e, _j, x) => e.branch(x, Op.i64_ge_u),
  // FENCE: a host fence where harts may run in parallel (see emit-mem.ts, fence). FENCE.I: a
  // store into translated code by this hart already dropped it (and left the region); another
  // hart's, in another thread, is served by the interpreter's handler (system.ts execFenceI).
  fence: (e, _j, x) => fence(e, x.d.imm),
  'fence.i': (e, j, x) => e.viaInterpreter(j, x),
};

/** Each table row's emitter, by id (undefined: the flags decide, see insn). */
const BY_ID: Array<EmitFn | undefined> = (() => {
  const byName: Record<string, EmitFn> = { ...CONTROL_EMITTERS, ...INT_EMITTERS, ...MEM_EMITTERS, ...FP_EMITTERS };
  const names = new Set(INSNS.map((d) => d.name));
  for (const n of Object.keys(byName)) if (!names.has(n)) throw new Error(`jit: an emitter for ${n}, which is not in the table`);
  return INSNS.map((d) => byName[d.name]);
})();

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
