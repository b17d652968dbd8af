/**
 * The trampoline: one small module per hart's engine through which it enters translated code,
 * with the funcref table of region functions and the hart's jump cache. The module calls a
 * region through the table, and when the region hands back control at another pc, it looks
 * that pc up in the jump cache (a direct-mapped table in linear memory, as QEMU's
 * tb_jmp_cache) and calls the next region without returning to JavaScript. Only this module
 * imports the table (region modules are placed in it), so adding a region costs one table.set
 * and never touches other instances.
 *
 * Jump cache entry (16 bytes): virtual pc (i64), generation << 2 | privilege (i32),
 * slot << 12 | block (i32). The engine fills entries and voids them all at once, whenever
 * translations or mappings change, by moving the hart's generation on.
 */
import { S, type Hart } from '../cpu/hart.ts';
import { JUMP_CACHE_ENTRIES, jumpCacheBase, PC_OFF, slotOffset } from '../cpu/layout.ts';
import { Exit } from './region.ts';
import { Code, encodeModule, I32, I64, Op } from './wasm.ts';

const S_JCGEN = S.jcGen;

const MINSTRET = slotOffset('minstret');
const PRIV = slotOffset('priv');
const JCGEN = slotOffset('jcGen');
const JCHITS = slotOffset('jcHits');

/** (h, jumpCache, slot, block, budget) -> exit code. */
export type EnterFn = (h: number, jc: number, slot: number, block: number, budget: number) => number;

/** The jump cache index of a virtual pc (the same function the trampoline computes). */
export function jumpCacheIndex(pcLo: number): number {
  return ((pcLo >>> 1) ^ (pcLo >>> 13)) & (JUMP_CACHE_ENTRIES - 1);
}

/** The trampoline's module (enter(h, jumpCache, slot, block, budget)). */
export function trampolineModule(memory: { shared: boolean; maxPages: number }): Uint8Array<ArrayBuffer> {
  const P_H = 0;
  const P_JC = 1;
  const P_SLOT = 2;
  const P_BLOCK = 3;
  const P_BUDGET = 4;
  const c = new Code(5);
  const end = c.local(I64);
  const st = c.local(I32);
  const pc = c.local(I64);
  const e = c.local(I32);
  const left = c.local(I32);
  const hits = c.local(I32);
  c.get(P_H).mem(Op.i64_load, 3, MINSTRET).get(P_BUDGET).op(Op.i64_extend_i32_s).op(Op.i64_add).set(end);
  c.get(P_BUDGET).set(left);
  // Every way out sets st and leaves this block; the hits are counted once, at the end.
  c.block();
  c.loop();
  // Call the region: run(h, block, budget left, end).
  c.get(P_H).get(P_BLOCK).get(left).get(end).get(P_SLOT).callIndirect(0).tee(st);
  c.i32(Exit.Continue).op(Op.i32_ne).brIf(1);
  // Budget left = end - minstret (the region wrote minstret); stop when it is used up.
  c.get(end).get(P_H).mem(Op.i64_load, 3, MINSTRET).op(Op.i64_sub).op(Op.i32_wrap_i64).tee(left);
  c.i32(0).op(Op.i32_le_s).brIf(1);
  // Look the new pc up in the jump cache.
  c.get(P_H).mem(Op.i64_load, 3, PC_OFF).set(pc);
  c.get(pc).op(Op.i32_wrap_i64).tee(e).i32(1).op(Op.i32_shr_u);
  c.get(e).i32(13).op(Op.i32_shr_u).op(Op.i32_xor);
  c.i32(JUMP_CACHE_ENTRIES - 1).op(Op.i32_and).i32(4).op(Op.i32_shl).get(P_JC).op(Op.i32_add).tee(e);
  c.mem(Op.i64_load, 3, 0).get(pc).op(Op.i64_eq);
  c.get(e).mem(Op.i32_load, 2, 8);
  c.get(P_H).mem(Op.i32_load, 2, JCGEN).i32(2).op(Op.i32_shl).get(P_H).mem(Op.i32_load, 2, PRIV).op(Op.i32_or);
  c.op(Op.i32_eq).op(Op.i32_and);
  c.op(Op.i32_eqz).brIf(1);
  c.get(hits).i32(1).op(Op.i32_add).set(hits);
  c.get(e).mem(Op.i32_load, 2, 12).tee(P_SLOT).i32(0xfff).op(Op.i32_and).set(P_BLOCK);
  c.get(P_SLOT).i32(12).op(Op.i32_shr_u).set(P_SLOT);
  c.br(0);
  c.end(); // loop
  c.end(); // block
  c.get(P_H).get(P_H).mem(Op.i64_load, 3, JCHITS).get(hits).op(Op.i64_extend_i32_u).op(Op.i64_add).mem(Op.i64_store, 3, JCHITS);
  c.get(st);
  return encodeModule({
    types: [
      { params: [I32, I32, I32, I64], results: [I32] }, // a region's run
      { params: [I32, I32, I32, I32, I32], results: [I32] },
    ],
    imports: [],
    memory,
    table: true,
    funcs: [{ type: 1, code: c, export: 'enter' }],
  });
}

/**
 * A hart's trampoline: the table of region functions with its slots, and the jump cache with
 * its generation. Slots a dropped region held stay in the table (entries may still name them)
 * until the cache is next voided, then are reused.
 */
export class Trampoline {
  /** Region functions by slot; only the trampoline module imports it. */
  private readonly table = new WebAssembly.Table({ element: 'anyfunc', initial: 1024 });
  private readonly enterFn: EnterFn;
  private readonly jc: Int32Array;
  private readonly jcBase: number;
  private nextSlot = 0;
  /** Slots the jump cache may still name, freed at its next clearing; and slots to reuse. */
  private retired: number[] = [];
  private readonly free: number[] = [];
  /**
   * The jump cache generation last given to the hart. The hart keeps it in its block (the
   * module reads it there), where a hart reset or restore rewrites it; entries of an older
   * generation would then match again and name slots since emptied or reused, so the cache is
   * wiped whenever the hart's copy is not this one (check()).
   */
  private gen = 0;

  constructor(
    private readonly h: Hart,
    memory: WebAssembly.Memory,
    shared: boolean,
  ) {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(trampolineModule({ shared, maxPages: 65536 })), {
      env: { mem: memory, table: this.table },
    });
    this.enterFn = inst.exports.enter as EnterFn;
    this.jcBase = jumpCacheBase(h.id);
    this.jc = new Int32Array(memory.buffer, this.jcBase, JUMP_CACHE_ENTRIES * 4);
    this.wipe();
  }

  /** Runs the function in `slot` from `block`, and the regions it chains to, for `budget` instructions; returns the exit. */
  enter(slot: number, block: number, budget: number): number {
    return this.enterFn(this.h.base, this.jcBase, slot, block, budget);
  }

  /** Records that the virtual pc (lo, hi), at the hart's privilege, starts `block` of the function in `slot`. */
  remember(pcLo: number, pcHi: number, privilege: number, slot: number, block: number): void {
    const k = jumpCacheIndex(pcLo) * 4;
    this.jc[k] = pcLo;
    this.jc[k + 1] = pcHi;
    this.jc[k + 2] = (this.h.s[S_JCGEN]! << 2) | privilege;
    this.jc[k + 3] = (slot << 12) | block;
  }

  /** Puts functions in free slots; returns the slots. */
  install(fns: unknown[]): number[] {
    return fns.map((fn) => {
      const slot = this.free.pop() ?? this.nextSlot++;
      if (slot >= this.table.length) this.table.grow(this.table.length);
      this.table.set(slot, fn);
      return slot;
    });
  }

  /** Slots whose functions are no longer entered; freed once the jump cache no longer names them. */
  retire(slots: number[]): void {
    this.retired.push(...slots);
  }

  /** Wipes the cache if the hart's copy of the generation was rewritten (a hart reset or restore). */
  check(): void {
    if (this.h.s[S_JCGEN] !== this.gen) this.wipe();
  }

  /** Forgets every jump: after a TLB flush, and whenever a region is installed or dropped. */
  clear(): void {
    const s = this.h.s;
    if (s[S_JCGEN] !== this.gen) this.wipe();
    this.gen = (this.gen + 1) & 0x3fff_ffff;
    s[S_JCGEN] = this.gen;
    // Entries carry their generation; an old one can only match again after 2^30 clears,
    // so wipe the table when the counter wraps.
    if (this.gen === 0) this.wipe();
    // No entry names a retired slot now: let its instance go.
    for (const slot of this.retired) {
      this.table.set(slot, null);
      this.free.push(slot);
    }
    this.retired = [];
  }

  /** Back to the state after construction: every slot empty, every entry void. */
  reset(): void {
    for (let slot = 0; slot < this.nextSlot; slot++) this.table.set(slot, null);
    this.nextSlot = 0;
    this.retired = [];
    this.free.length = 0;
    this.wipe();
  }

  /** Empties every entry (a pc of 1 matches no instruction) and restarts the generation. */
  private wipe(): void {
    this.jc.fill(1); // an odd pc: no entry matches
    this.gen = 0;
    this.h.s[S_JCGEN] = 0;
  }
}
