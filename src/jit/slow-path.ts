/**
 * The `slow(k, budget)` import of a region module: runs its instruction k through the
 * interpreter's handler with the pc and minstret exact (see SlowPaths in region.ts; minstret
 * from the budget left, see BlockEmitter in emit.ts).
 */
import { S, type Hart } from '../cpu/hart.ts';
import { interpreterHelper } from '../cpu/interp.ts';
import { memFlags } from '../cpu/memory.ts';
import { fillTlb, mmuOut, translate } from '../cpu/mmu.ts';
import type { Access } from '../cpu/trap.ts';
import { St } from '../cpu/status.ts';
import { Exit, SLOW_NEXT, type SlowPaths } from './region.ts';

const S_MINSTRET = S.minstret;
const S_TLBGEN = S.tlbGen;

/** What the helper needs of the engine. */
export interface SlowPathHost {
  /** Where the helper counts its calls. */
  readonly stats: { slowPaths: number };
  /** minstret + budget when the trampoline was last entered (the region functions' `end`). */
  sliceEnd(): number;
  /** An SFENCE.VMA remapped code the jump cache may name: void it before anything chains. */
  remapped(): void;
}

/**
 * The helper for a region's slow paths `t`. It returns SLOW_NEXT when the instruction
 * completed normally, else the region's exit: Stop after a trap (the instruction not retired),
 * a device access or a CSR write that ends the slice; Continue after a store into translated
 * code (the region must not run on: its code may be gone) or an SFENCE.VMA that remapped code
 * it may chain to.
 */
export function slowPathHelper(h: Hart, t: SlowPaths, host: SlowPathHost): (k: number, budget: number) => number {
  const PC = h.pc;
  const s = h.s;
  const addInstret = (n: number): void => {
    const lo = (s[S_MINSTRET]! >>> 0) + n;
    s[S_MINSTRET] = lo | 0;
    if (lo >= 0x1_0000_0000) s[S_MINSTRET + 1] = (s[S_MINSTRET + 1]! + 1) | 0;
    else if (lo < 0) s[S_MINSTRET + 1] = (s[S_MINSTRET + 1]! - 1) | 0;
  };
  const setPc = (pc: number): void => {
    PC[0] = pc | 0;
    PC[1] = Math.floor(pc / 0x1_0000_0000) | 0;
  };
  const stats = host.stats;
  return (k, budget) => {
    stats.slowPaths++;
    const pc = t.pc[k]!;
    setPc(pc);
    // minstret before this instruction (see BlockEmitter): end - budget - back.
    const n = host.sliceEnd() - budget - t.back[k]!;
    s[S_MINSTRET] = n | 0;
    s[S_MINSTRET + 1] = Math.floor(n / 0x1_0000_0000) | 0;
    if (t.id[k]! < 0) {
      // An instruction straddling two pages: interpreted where it is.
      interpreterHelper.run(1, false);
      return interpreterHelper.stoppedAtExit() ? Exit.Stop : Exit.Continue;
    }
    const gen = s[S_TLBGEN];
    const st = interpreterHelper.exec(t.id[k]!, t.a[k]!, t.imm[k]!, t.raw[k]!);
    if (st === St.Next) {
      if (!memFlags.codeWrite) return SLOW_NEXT;
    } else if (st === St.Refetch) {
      // SFENCE.VMA: when code the region may chain to was remapped, the jump cache is voided
      // before the trampoline chains again, and the region leaves (the slice goes on).
      if (s[S_TLBGEN] === gen) return SLOW_NEXT;
      host.remapped();
    } else if (st === St.Trap) {
      return Exit.Stop;
    }
    addInstret(1);
    setPc(pc + t.len[k]!);
    return st === St.Next || st === St.Refetch ? Exit.Continue : Exit.Stop;
  };
}

/**
 * The `refill(vaLo, vaHi, access)` import of a region module: on a data TLB miss, translates the
 * page of va for a load or a store under the hart's data MMU and fills the TLB entry as the
 * interpreter's slow path would (fillTlb: RAM only, a page PMP treats alike, no write entry for
 * a page whose stores must be seen). Returns 1 when it translated, 0 on a fault, which is left
 * to the slow path to take (nothing is changed then). The region probes the TLB again either way.
 */
export function refillHelper(h: Hart): (vaLo: number, vaHi: number, access: Access) => number {
  return (vaLo, vaHi, access) => {
    const mmu = h.dataMmu();
    if (translate(h, vaLo, vaHi, access, mmu) >= 0) return 0;
    fillTlb(h, mmu, access, vaLo, vaHi, mmuOut.pa);
    return 1;
  };
}
