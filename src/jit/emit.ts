/**
 * Instruction emitters: WebAssembly for one guest instruction, inside a region function.
 *
 * Guest state stays in the machine's memory at the offsets of src/cpu/layout.ts (registers are
 * i64 loads and stores off the hart base `h`), so any instruction can fall back to the
 * reference interpreter's handler through the imported `exec` helper with the state exact:
 * the generated code writes the pc and minstret first. That is how slow paths (TLB misses,
 * devices, page-crossing accesses), atomics and floating point run, and why faults are precise.
 */
import type { Decoded } from '../isa/decode.ts';
import { Kind } from '../isa/table.ts';
import { packOperands } from '../cpu/interp.ts';
import { St } from '../cpu/status.ts';
import { PC_OFF, TLB_ENTRIES, X_OFF, slotOffset } from '../cpu/layout.ts';
import { Code, I64, Op } from './wasm.ts';

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

/** The status `exec` returns when a store hit a page holding translated code. */
export const EXEC_CODE_WRITTEN = 5;

const MINSTRET = slotOffset('minstret');
const xo = (r: number): number => X_OFF + 8 * r;

/** Locals and parameters of a region function. */
export const P_H = 0;
export const P_ENTRY = 1;
export const P_BUDGET = 2;

/** Function indices in a region module: imported helpers first, then defined functions. */
export const F_EXEC = 0;
export const F_MULHU = 2; // after the one import (0) and the region function (1)

/** One instruction to translate. */
export interface Insn {
  d: Decoded;
  /** Virtual address, as a signed Number (canonical addresses sign-extend within 2^53). */
  pc: number;
  /** Offset within the page. */
  off: number;
}

/** Emission state for one block inside a region function. */
export class BlockEmitter {
  /** Instructions of this block already added to minstret. */
  private counted = 0;
  /** Control structures opened inside the block's code around a jumpTo (for branch depths). */
  depth = 0;

  constructor(
    readonly c: Code,
    private readonly locals: { va: number; e: number; st: number; t: number; dtlb: number },
    /** Depth of the dispatch loop from the block's own code. */
    private readonly loopDepth: number,
    /** Block index for a virtual pc in this region, or -1. */
    private readonly blockAt: (pc: number) => number,
    private readonly len: number,
  ) {}

  // ---- state access ----

  getX(r: number): void {
    if (r === 0) this.c.i64(0n);
    else this.c.get(P_H).mem(Op.i64_load, 3, xo(r));
  }

  /** Stores the i64 on the stack into x[r] (dropped for x0). Needs `h` pushed first unless r = 0. */
  private pushXAddr(r: number): void {
    if (r !== 0) this.c.get(P_H);
  }
  private storeX(r: number): void {
    if (r === 0) this.c.op(Op.drop);
    else this.c.mem(Op.i64_store, 3, xo(r));
  }

  setPc(pc: number): void {
    this.c.get(P_H).i64(pc).mem(Op.i64_store, 3, PC_OFF);
  }

  /** Adds the instructions up to (not including) index `upTo` of the block to minstret. */
  countTo(upTo: number): void {
    const n = upTo - this.counted;
    if (n <= 0) return;
    this.counted = upTo;
    this.addInstret(n);
  }

  private ret(code: Exit): void {
    this.c.i32(code).op(Op.return);
  }

  /** Transfers control to `pc`: a branch within the region, or an exit to the dispatcher. */
  jumpTo(pc: number): void {
    const k = this.blockAt(pc);
    if (k >= 0) {
      this.c.i32(k).set(P_ENTRY).br(this.loopDepth + this.depth);
    } else {
      this.setPc(pc);
      this.ret(Exit.Continue);
    }
  }

  /** Ends the block without a control instruction: on to `pc`, or stop there to interpret it. */
  fallThrough(pc: number, interpret: boolean): void {
    this.countTo(this.len);
    if (interpret) {
      this.setPc(pc);
      this.ret(Exit.Interp);
    } else {
      this.jumpTo(pc);
    }
  }

  /** Adds `n` (possibly negative) to minstret at run time, leaving the compile-time count alone. */
  private addInstret(n: number): void {
    if (n === 0) return;
    this.c.get(P_H).get(P_H).mem(Op.i64_load, 3, MINSTRET).i64(n).op(Op.i64_add).mem(Op.i64_store, 3, MINSTRET);
  }

  /**
   * Runs instruction `j` through the interpreter's handler, with the state exact: the pc, and
   * minstret counting the j instructions before it. This code may sit on one arm of a branch
   * (the slow path of a load), so when the handler completes normally it takes back what it
   * added: both arms then leave minstret as the block's own bookkeeping expects.
   */
  private viaInterpreter(j: number, x: Insn): void {
    const c = this.c;
    const [a, imm] = packOperands(x.d);
    const pre = j - this.counted;
    this.setPc(x.pc);
    this.addInstret(pre);
    c.i32(x.d.def.id).i32(a).i32(imm).i32(x.d.raw | 0).call(F_EXEC).tee(this.locals.st);
    c.if();
    // Trap: the hart took it (pc at the vector, this instruction not retired).
    c.get(this.locals.st).i32(St.Trap).op(Op.i32_eq).if();
    this.ret(Exit.Stop);
    c.end();
    // Device access (end the slice) or a store into translated code (leave this code): this
    // instruction retired.
    this.addInstret(1);
    this.setPc(x.pc + x.d.len);
    // select(a, b, cond) is a when cond holds: Continue after a code write, Stop after a device.
    c.i32(Exit.Continue).i32(Exit.Stop).get(this.locals.st).i32(EXEC_CODE_WRITTEN).op(Op.i32_eq).op(Op.select);
    c.op(Op.return);
    c.end();
    this.addInstret(-pre);
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

  private load(j: number, x: Insn, size: number, op: Op): void {
    const c = this.c;
    const d = x.d;
    this.ea(d.rs1, d.imm);
    this.probe(size, 0);
    c.if();
    this.pushXAddr(d.rd);
    this.hostAddr();
    c.mem(op, 0, 0);
    this.storeX(d.rd);
    c.else();
    this.viaInterpreter(j, x);
    c.end();
  }

  private store(j: number, x: Insn, size: number, op: Op): void {
    const c = this.c;
    const d = x.d;
    this.ea(d.rs1, d.imm);
    this.probe(size, 8);
    c.if();
    this.hostAddr();
    this.getX(d.rs2);
    c.mem(op, 0, 0);
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
        this.countTo(this.len);
        return this.jumpTo(x.pc + imm);
      case 'jalr':
        this.getX(d.rs1);
        c.i64(imm).op(Op.i64_add).i64(-2).op(Op.i64_and).set(this.locals.t);
        this.pushXAddr(d.rd);
        c.i64(next);
        this.storeX(d.rd);
        this.countTo(this.len);
        c.get(P_H).get(this.locals.t).mem(Op.i64_store, 3, PC_OFF);
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
      case 'fence':
        return;
      default:
        if (d.def.kind === Kind.System) throw new Error(`jit: system instruction ${d.def.name} inside a block`);
        // Atomics and floating point: the interpreter's handler, with exact state.
        return this.viaInterpreter(j, x);
    }
  }

  private branch(x: Insn, op: Op): void {
    const d = x.d;
    this.countTo(this.len);
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
