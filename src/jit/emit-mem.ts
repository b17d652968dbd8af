/**
 * Emitters for memory access: loads and stores (Unprivileged ch. 2, 4), FLW/FLD/FSW/FSD
 * (ch. 20, 21) and the atomics (ch. 14). Each probes the data TLB inline (the entry's read or
 * write tag against the page of the access's last byte, so a page-crossing access misses) and
 * goes through the interpreter's handler on a miss, for a device, or when a guard fails.
 */
import {
  DIRTY_BITMAP, RAM_BASE, RAM_HOST, TLB2_ENTRIES, TLB2_HEADER, tlb2Base, TLB_ADDEND, TLB_ENTRIES, TLB_ENTRY, TLB_ENTRY_SHIFT, TLB_OFF,
  TLB_READ, TLB_WRITE,
} from '../cpu/layout.ts';
import type { BlockEmitter, EmitFn } from './emit.ts';
import { Access } from '../cpu/trap.ts';
import { F_REFILL, F_TLB2, fo, FsGuard, RES_ADDR, RES_VALID, RES_VALUE, type Insn } from './region.ts';
import { AtomicOp, AtomicWidth, Code, I32, I64, Op } from './wasm.ts';

/** The upper half of a NaN-boxed single (Unprivileged 21.2). */
export const BOX = -0x1_0000_0000;

/**
 * The module-internal helper `tlb2(va, dtlb, access, size) -> entry` for a load (access 0) or
 * store (1) of `size` bytes whose TLB probe missed, on the hart whose block is at `hb`: copies
 * the page's entry from the second-level TLB (layout.ts) into the data TLB at `dtlb` as fillTlb
 * would (another page's entry loses its tags; a store entry marks the page dirty, as fillTlb
 * does), else calls the `refill` import, which walks the page table and fills both levels.
 * Returns the address of the entry, which now allows the access, or 0 when it does not (a
 * page-crossing access, a fault, a device, a page whose stores must be seen): the slow path
 * runs then.
 */
export function tlb2Function(hb: number, hart: number, shared = false): Code {
  const c = new Code(4);
  const [va, dtlb, acc, size] = [0, 1, 2, 3];
  const slot = c.local(I32);
  const word = c.local(I32);
  const e = c.local(I32);
  const addend = c.local(I32);
  const page = c.local(I64);
  const base = tlb2Base(hart);
  const mmuShift = Math.log2(TLB_ENTRIES * TLB_ENTRY);
  if (!Number.isInteger(mmuShift)) throw new Error('jit: a TLB of a size that is not a power of two');
  // A page-crossing access: the slow path's.
  c.get(va).op(Op.i32_wrap_i64).i32(0xfff).op(Op.i32_and).get(size).op(Op.i32_add).i32(4096).op(Op.i32_gt_u).if();
  c.i32(0).op(Op.return);
  c.end();
  c.get(va).i64(-4096).op(Op.i64_and).set(page);
  c.get(va).i64(12).op(Op.i64_shr_u).op(Op.i32_wrap_i64).i32(TLB_ENTRIES - 1).op(Op.i32_and).i32(TLB_ENTRY_SHIFT).op(Op.i32_shl);
  c.get(dtlb).op(Op.i32_add).set(e);
  c.get(va).i64(12).op(Op.i64_shr_u).op(Op.i32_wrap_i64).i32(TLB2_ENTRIES - 1).op(Op.i32_and).i32(4).op(Op.i32_shl);
  c.i32(base + TLB2_HEADER).op(Op.i32_add).set(slot);
  // Hit: the same page and MMU index, of the current generation, allowing the access.
  c.get(slot).mem(Op.i64_load, 3, 0);
  c.get(page).get(dtlb).i32(hb + TLB_OFF).op(Op.i32_sub).i32(mmuShift).op(Op.i32_shr_u).op(Op.i64_extend_i32_u).op(Op.i64_or);
  c.op(Op.i64_eq);
  c.get(slot).mem(Op.i32_load, 2, 12).tee(word).i32(2).op(Op.i32_shr_u).i32(base).mem(Op.i32_load, 2, 0).op(Op.i32_eq).op(Op.i32_and);
  c.get(word).get(acc).op(Op.i32_shr_u).i32(1).op(Op.i32_and).op(Op.i32_and);
  c.op(Op.i32_eqz).if();
  // Miss: the page-table walk; the entry allows the access if it now has the page's tag.
  c.get(va).op(Op.i32_wrap_i64).get(va).i64(32).op(Op.i64_shr_u).op(Op.i32_wrap_i64).get(acc).call(F_REFILL).if();
  c.get(e).get(acc).i32(3).op(Op.i32_shl).op(Op.i32_add).mem(Op.i64_load, 3, TLB_READ).get(page).op(Op.i64_eq).if();
  c.get(e).op(Op.return);
  c.end();
  c.end();
  c.i32(0).op(Op.return);
  c.end();
  c.get(slot).mem(Op.i32_load, 2, 8).set(addend);
  // Another page's entry (another addend, or no tag of this page): its tags go.
  c.get(e).mem(Op.i32_load, 2, TLB_ADDEND).get(addend).op(Op.i32_ne);
  for (const tag of [0, 8, 16]) {
    c.get(e).mem(Op.i64_load, 3, tag).get(page).op(Op.i64_ne);
    if (tag !== 0) c.op(Op.i32_and);
  }
  c.op(Op.i32_or).if();
  for (const tag of [0, 8, 16]) c.get(e).i64(0x1_0000_0001n).mem(Op.i64_store, 3, tag); // TLB_INVALID in both halves
  c.get(e).get(addend).op(Op.i64_extend_i32_u).mem(Op.i64_store, 3, TLB_ADDEND);
  c.end();
  c.get(e).get(acc).i32(3).op(Op.i32_shl).op(Op.i32_add).get(page).mem(Op.i64_store, 3, TLB_READ);
  // A store entry: the page is dirty from now on (the dirty log sees no fast-path store).
  c.get(acc).if();
  c.get(va).op(Op.i32_wrap_i64).i32(-4096).op(Op.i32_and).get(addend).op(Op.i32_add).i32(RAM_HOST).op(Op.i32_sub).i32(12).op(Op.i32_shr_u).set(word);
  c.get(word).i32(3).op(Op.i32_shr_u).i32(DIRTY_BITMAP).op(Op.i32_add).tee(slot);
  if (shared) {
    // Harts in other threads set bits of the same byte: one atomic or.
    c.i32(1).get(word).i32(7).op(Op.i32_and).op(Op.i32_shl).atomic(AtomicOp.rmw_or + AtomicWidth.i32_8u, 0, 0).op(Op.drop);
  } else {
    c.get(slot).mem(Op.i32_load8_u, 0, 0).i32(1).get(word).i32(7).op(Op.i32_and).op(Op.i32_shl).op(Op.i32_or).mem(Op.i32_store8, 0, 0);
  }
  c.end();
  c.get(e);
  return c;
}

/** Leaves the TLB entry address in `e` and pushes 1 when the probe hits for an access of `size` at va. */
function probe(em: BlockEmitter, size: number, tagOffset: number): void {
  const { va, e, dtlb } = em.locals;
  const c = em.c;
  c.get(va).i64(12).op(Op.i64_shr_u).op(Op.i32_wrap_i64).i32(TLB_ENTRIES - 1).op(Op.i32_and).i32(TLB_ENTRY_SHIFT).op(Op.i32_shl);
  c.get(dtlb).op(Op.i32_add).tee(e);
  c.mem(Op.i64_load, 3, tagOffset);
  // Compare with the page of the access's last byte: a page-crossing access misses.
  c.get(va).i64(size - 1).op(Op.i64_add).i64(-4096).op(Op.i64_and).op(Op.i64_eq);
}

/** Pushes the host address of va through the entry in `e`. */
function hostAddr(em: BlockEmitter): void {
  const { va, e } = em.locals;
  em.c.get(va).op(Op.i32_wrap_i64).get(e).mem(Op.i32_load, 2, TLB_ADDEND).op(Op.i32_add);
}

/** Sets local `va` to x[rs1] + imm. */
function ea(em: BlockEmitter, rs1: number, imm: number): void {
  em.getX(rs1);
  if (imm !== 0) em.c.i64(imm).op(Op.i64_add);
  em.c.set(em.locals.va);
}

/**
 * An access of `size` bytes at x[rs1] + imm: `fast` runs when the TLB probe (the read or the
 * write tag) hits and `fsGuard` (FP accesses) holds, the interpreter otherwise. On a miss the
 * entry is first filled from the second-level TLB or the page table (tlb2Function), when the
 * access may use one: a miss costs a lookup or a page-table walk rather than the
 * interpreter's whole slow path (a strided sweep over more pages than the TLB holds misses on
 * every page).
 */
function access(em: BlockEmitter, j: number, x: Insn, size: number, tagOffset: number, fsGuard: FsGuard, fast: () => void): void {
  const c = em.c;
  const guard = (): void => {
    if (fsGuard === FsGuard.None) return;
    // The FS condition as 0 or 1 (for On it is mstatus.FS itself), and-ed with the hit.
    em.fsState(fsGuard);
    c.i32(0).op(Op.i32_ne).op(Op.i32_and);
  };
  ea(em, x.d.rs1, x.d.imm);
  c.block(); // done
  c.block(); // fast
  probe(em, size, tagOffset);
  guard();
  c.brIf(0);
  // Only an access the interpreter would translate may refill: an FP access with FS off
  // traps before it looks at memory, and a walk sets A and D bits the interpreter's would not.
  if (fsGuard !== FsGuard.None) {
    em.fsState(fsGuard);
    c.if();
  }
  c.get(em.locals.va).get(em.locals.dtlb).i32(tagOffset === TLB_WRITE ? Access.Store : Access.Load).i32(size).call(F_TLB2);
  c.tee(em.locals.e).brIf(fsGuard !== FsGuard.None ? 1 : 0);
  if (fsGuard !== FsGuard.None) c.end();
  em.viaInterpreter(j, x);
  c.br(1);
  c.end(); // fast
  fast();
  c.end(); // done
}

function load(em: BlockEmitter, j: number, x: Insn, size: number, op: Op): void {
  const d = x.d;
  access(em, j, x, size, TLB_READ, FsGuard.None, () => {
    em.pushXAddr(d.rd);
    hostAddr(em);
    em.c.mem(op, 0, 0);
    em.storeX(d.rd);
  });
}

function store(em: BlockEmitter, j: number, x: Insn, size: number, op: Op): void {
  const d = x.d;
  access(em, j, x, size, TLB_WRITE, FsGuard.None, () => {
    hostAddr(em);
    em.getX(d.rs2);
    em.c.mem(op, 0, 0);
  });
}

/** FLW/FLD: the bits loaded; a single is NaN-boxed. Writing f[rd] needs FS Dirty already. */
function fload(em: BlockEmitter, j: number, x: Insn, size: 4 | 8): void {
  const c = em.c;
  const d = x.d;
  access(em, j, x, size, TLB_READ, FsGuard.Dirty, () => {
    c.i32(em.hb);
    hostAddr(em);
    if (size === 8) c.mem(Op.i64_load, 0, 0);
    else c.mem(Op.i64_load32_u, 0, 0).i64(BOX).op(Op.i64_or);
    c.mem(Op.i64_store, 3, fo(d.rd));
  });
}

/** FSW/FSD: the low `size` bytes of f[rs2] as they are (FSW does not check the NaN box). */
function fstore(em: BlockEmitter, j: number, x: Insn, size: 4 | 8): void {
  const c = em.c;
  const d = x.d;
  access(em, j, x, size, TLB_WRITE, FsGuard.On, () => {
    hostAddr(em);
    c.i32(em.hb);
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
function atomicProbe(em: BlockEmitter, rs1: number, size: number, tagOffset: number): void {
  const c = em.c;
  ea(em, rs1, 0);
  probe(em, size, tagOffset);
  c.get(em.locals.va).op(Op.i32_wrap_i64).i32(size - 1).op(Op.i32_and).op(Op.i32_eqz).op(Op.i32_and);
}

/** Pushes the physical address of the access (the reservation's key), from its host address. */
function physAddr(em: BlockEmitter): void {
  hostAddr(em);
  em.c.op(Op.i64_extend_i32_u).i64(RAM_BASE - RAM_HOST).op(Op.i64_add);
}

/**
 * Pushes x[rs2] as an AMO operand: a word sign-extended from 32 bits, or zero-extended for an
 * unsigned compare.
 */
function amoOperand(em: BlockEmitter, rs2: number, size: number, unsigned: boolean): void {
  em.getX(rs2);
  if (size === 4) em.c.op(Op.i32_wrap_i64).op(unsigned ? Op.i64_extend_i32_u : Op.i64_extend_i32_s);
}

/** The aq/rl bits of an AMO, LR or SC (its decoded imm). */
const RL = 1;

/**
 * FENCE with predecessor and successor sets `imm` (its decoded imm: fm, pred, succ): where
 * harts may run in other threads, one that orders memory accesses before memory accesses
 * (FENCE.TSO included) is an atomic.fence, a full host fence (MFENCE on x86-64, DMB ISH on
 * ARM64). Others order nothing the host could reorder: device I/O goes through the monitor.
 */
export function fence(em: BlockEmitter, imm: number): void {
  if (em.shared && (imm >>> 4) & 3 && imm & 3) em.c.atomicFence();
}

/**
 * LR.W/D: load (a word sign-extended), hold a reservation on its physical address and keep
 * the value loaded (a word zero-extended), which SC compares memory with.
 */
function lr(em: BlockEmitter, j: number, x: Insn, size: number): void {
  const c = em.c;
  const d = x.d;
  const v = em.locals.t;
  atomicProbe(em, d.rs1, size, TLB_READ);
  c.if();
  // LR.rl: every earlier access before it, a store too (the host's store buffer).
  if (em.shared && d.imm & RL) c.atomicFence();
  hostAddr(em);
  if (em.shared) c.atomic(size === 8 ? AtomicOp.i64_load : AtomicOp.i32_load, size === 8 ? 3 : 2, 0);
  else c.mem(size === 8 ? Op.i64_load : Op.i32_load, size === 8 ? 3 : 2, 0);
  if (size === 4) c.op(Op.i64_extend_i32_u);
  c.set(v);
  c.i32(em.hb).get(v).mem(Op.i64_store, 3, RES_VALUE);
  em.pushXAddr(d.rd);
  c.get(v);
  if (size === 4) c.op(Op.i32_wrap_i64).op(Op.i64_extend_i32_s);
  em.storeX(d.rd);
  c.i32(em.hb).i32(1).mem(Op.i32_store, 2, RES_VALID);
  c.i32(em.hb);
  physAddr(em);
  c.mem(Op.i64_store, 3, RES_ADDR);
  c.else();
  em.viaInterpreter(j, x);
  c.end();
}

/** Pushes the reserved value (as an i32 for a word). */
function resValue(em: BlockEmitter, size: number): void {
  em.c.i32(em.hb).mem(Op.i64_load, 3, RES_VALUE);
  if (size === 4) em.c.op(Op.i32_wrap_i64);
}

/**
 * SC.W/D: stores only while the reservation holds this address and memory still holds the
 * value LR loaded (exec-mem.ts, sc); rd = 0 on success, else 1. With shared memory the check
 * and the store are one compare-exchange.
 */
function sc(em: BlockEmitter, j: number, x: Insn, size: number): void {
  const c = em.c;
  const d = x.d;
  const ok = em.locals.st;
  atomicProbe(em, d.rs1, size, TLB_WRITE);
  c.if();
  c.i32(em.hb).mem(Op.i32_load, 2, RES_VALID).i32(1).op(Op.i32_eq);
  c.i32(em.hb).mem(Op.i64_load, 3, RES_ADDR);
  physAddr(em);
  c.op(Op.i64_eq).op(Op.i32_and).set(ok);
  c.i32(em.hb).i32(0).mem(Op.i32_store, 2, RES_VALID);
  // Store before writing rd: rd may be rs2.
  c.get(ok).if();
  const eq = size === 8 ? Op.i64_eq : Op.i32_eq;
  if (em.shared) {
    hostAddr(em);
    resValue(em, size);
    em.getX(d.rs2);
    if (size === 4) c.op(Op.i32_wrap_i64);
    c.atomic(AtomicOp.rmw_cmpxchg + (size === 8 ? AtomicWidth.i64 : AtomicWidth.i32), size === 8 ? 3 : 2, 0);
    resValue(em, size);
    c.op(eq).set(ok);
  } else {
    hostAddr(em);
    c.mem(size === 8 ? Op.i64_load : Op.i32_load, 0, 0);
    resValue(em, size);
    c.op(eq).tee(ok);
    c.if();
    hostAddr(em);
    em.getX(d.rs2);
    c.mem(size === 8 ? Op.i64_store : Op.i64_store32, 0, 0);
    c.end();
  }
  c.end();
  em.pushXAddr(d.rd);
  c.get(ok).op(Op.i32_eqz).op(Op.i64_extend_i32_u);
  em.storeX(d.rd);
  c.else();
  em.viaInterpreter(j, x);
  c.end();
}

/** The operations of the AMO rows (AMO<op>.W/D). */
type AmoOp = 'swap' | 'add' | 'xor' | 'and' | 'or' | 'min' | 'max' | 'minu' | 'maxu';
const AMO_OPS: AmoOp[] = ['swap', 'add', 'xor', 'and', 'or', 'min', 'max', 'minu', 'maxu'];
/** The AMOs with a WebAssembly read-modify-write of their own. */
const RMW: Partial<Record<AmoOp, AtomicOp>> = {
  swap: AtomicOp.rmw_xchg, add: AtomicOp.rmw_add, xor: AtomicOp.rmw_xor, and: AtomicOp.rmw_and, or: AtomicOp.rmw_or,
};

/** Pushes old <op> x[rs2] from local `old` (a word sign-extended); for a word, only the low half counts. */
function amoResult(em: BlockEmitter, d: Insn['d'], size: number, op: AmoOp, old: number): void {
  const c = em.c;
  const lowWord = (): void => {
    if (size === 4) c.i64(0xffff_ffff).op(Op.i64_and);
  };
  switch (op) {
    case 'swap': em.getX(d.rs2); break;
    case 'add': c.get(old); em.getX(d.rs2); c.op(Op.i64_add); break;
    case 'xor': c.get(old); em.getX(d.rs2); c.op(Op.i64_xor); break;
    case 'and': c.get(old); em.getX(d.rs2); c.op(Op.i64_and); break;
    case 'or': c.get(old); em.getX(d.rs2); c.op(Op.i64_or); break;
    default: {
      // min and max compare signed (a word sign-extended), minu and maxu unsigned (a word
      // zero-extended).
      const unsigned = op === 'minu' || op === 'maxu';
      const isMin = op === 'min' || op === 'minu';
      // select(a, b, old < rs2): min keeps old when it is smaller, max keeps rs2.
      if (isMin) c.get(old);
      else amoOperand(em, d.rs2, size, false);
      if (isMin) amoOperand(em, d.rs2, size, false);
      else c.get(old);
      c.get(old);
      if (unsigned) lowWord();
      amoOperand(em, d.rs2, size, unsigned);
      c.op(unsigned ? Op.i64_lt_u : Op.i64_lt_s);
      c.op(Op.select);
    }
  }
}

/**
 * AMO<op>.W/D: rd = the old value (a word sign-extended), memory = old <op> x[rs2]. With shared
 * memory one atomic read-modify-write (sequentially consistent: aq and rl hold whatever they
 * say); min and max, which WebAssembly lacks, retry a compare-exchange until no other hart
 * wrote the location in between.
 */
function amo(em: BlockEmitter, j: number, x: Insn, size: number, op: AmoOp): void {
  const c = em.c;
  const d = x.d;
  const old = em.locals.t;
  const w = size === 8 ? AtomicWidth.i64 : AtomicWidth.i32;
  const align = size === 8 ? 3 : 2;
  atomicProbe(em, d.rs1, size, TLB_WRITE);
  c.if();
  if (!em.shared) {
    hostAddr(em);
    c.mem(size === 8 ? Op.i64_load : Op.i64_load32_s, 0, 0).set(old);
    hostAddr(em);
    amoResult(em, d, size, op, old);
    c.mem(size === 8 ? Op.i64_store : Op.i64_store32, 0, 0);
  } else if (RMW[op] !== undefined) {
    hostAddr(em);
    em.getX(d.rs2);
    if (size === 4) c.op(Op.i32_wrap_i64);
    c.atomic(RMW[op] + w, align, 0);
    if (size === 4) c.op(Op.i64_extend_i32_s);
    c.set(old);
  } else {
    c.loop();
    hostAddr(em);
    c.atomic(size === 8 ? AtomicOp.i64_load : AtomicOp.i32_load, align, 0);
    if (size === 4) c.op(Op.i64_extend_i32_s);
    c.set(old);
    hostAddr(em);
    c.get(old);
    if (size === 4) c.op(Op.i32_wrap_i64);
    amoResult(em, d, size, op, old);
    if (size === 4) c.op(Op.i32_wrap_i64);
    c.atomic(AtomicOp.rmw_cmpxchg + w, align, 0);
    if (size === 4) c.op(Op.i64_extend_i32_s);
    c.get(old).op(Op.i64_ne).brIf(0);
    c.end();
  }
  em.pushXAddr(d.rd);
  c.get(old);
  em.storeX(d.rd);
  c.else();
  em.viaInterpreter(j, x);
  c.end();
}

/** The memory rows' emitters, by mnemonic. */
export const MEM_EMITTERS: Record<string, EmitFn> = {
  lb: (e, j, x) => load(e, j, x, 1, Op.i64_load8_s),
  lh: (e, j, x) => load(e, j, x, 2, Op.i64_load16_s),
  lw: (e, j, x) => load(e, j, x, 4, Op.i64_load32_s),
  ld: (e, j, x) => load(e, j, x, 8, Op.i64_load),
  lbu: (e, j, x) => load(e, j, x, 1, Op.i64_load8_u),
  lhu: (e, j, x) => load(e, j, x, 2, Op.i64_load16_u),
  lwu: (e, j, x) => load(e, j, x, 4, Op.i64_load32_u),
  sb: (e, j, x) => store(e, j, x, 1, Op.i64_store8),
  sh: (e, j, x) => store(e, j, x, 2, Op.i64_store16),
  sw: (e, j, x) => store(e, j, x, 4, Op.i64_store32),
  sd: (e, j, x) => store(e, j, x, 8, Op.i64_store),
  fld: (e, j, x) => fload(e, j, x, 8),
  flw: (e, j, x) => fload(e, j, x, 4),
  fsd: (e, j, x) => fstore(e, j, x, 8),
  fsw: (e, j, x) => fstore(e, j, x, 4),
  'lr.w': (e, j, x) => lr(e, j, x, 4),
  'lr.d': (e, j, x) => lr(e, j, x, 8),
  'sc.w': (e, j, x) => sc(e, j, x, 4),
  'sc.d': (e, j, x) => sc(e, j, x, 8),
  ...Object.fromEntries(
    AMO_OPS.flatMap((op) => [
      [`amo${op}.w`, ((e, j, x) => amo(e, j, x, 4, op)) as EmitFn],
      [`amo${op}.d`, ((e, j, x) => amo(e, j, x, 8, op)) as EmitFn],
    ]),
  ),
};
