/**
 * The trampoline: one small module per machine through which the engine enters translated
 * code. It calls a region through a funcref table, and when the region hands back control at
 * another pc, it looks that pc up in the hart's jump cache (a direct-mapped table in linear
 * memory, as QEMU's tb_jmp_cache) and calls the next region without returning to JavaScript.
 * Only this module imports the table (region modules are placed in it), so adding a region
 * costs one table.set and never touches other instances.
 *
 * Jump cache entry (16 bytes): virtual pc (i64), generation << 2 | privilege (i32),
 * slot << 12 | block (i32). The engine fills entries and voids them all at once, whenever
 * translations or mappings change, by moving the hart's generation on.
 */
import { JUMP_CACHE_ENTRIES, PC_OFF, slotOffset } from '../cpu/layout.ts';
import { Exit } from './region.ts';
import { Code, encodeModule, I32, I64, Op } from './wasm.ts';

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
