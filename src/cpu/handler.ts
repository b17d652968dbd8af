/**
 * The contract between instruction handlers and the engines that run them: a handler's
 * signature and how an instruction's operands are packed for it (the interpreter's decode cache
 * and the translator's slow-path table both hold them), the context F/D handlers are built with,
 * and what an engine is.
 */
import type { Decoded } from '../isa/decode.ts';
import { Kind } from '../isa/table.ts';
import type { Hart } from './hart.ts';
import { X_SINK } from './layout.ts';
import type { St } from './status.ts';

/**
 * An instruction handler. `a` packs register operands (each pre-multiplied by two to index
 * 32-bit halves): rd in bits 0-7 (x0 as destination is the sink x32), rs1 in 8-15, rs2 in
 * 16-23, and rm | rs3 << 3 in 24-31. `imm` is the decoded immediate (the CSR number for CSR
 * instructions); `raw` the instruction bits.
 */
export type Handler = (a: number, imm: number, raw: number) => St;

/** A way to run guest instructions on a hart (the interpreter, or the translator). */
export interface Engine {
  /** Runs up to `budget` instructions; returns how many retired. Stops early at traps, system instructions and device accesses. */
  run(budget: number): number;
  /**
   * Returns the engine to its power-on state: every translation and cached decode of guest code
   * is forgotten. A machine reset (a guest reboot) calls it for each engine, since the reset
   * rewrites RAM and the harts' state behind the engine's back.
   */
  reset(): void;
}

/** Everything an instruction-family module needs to build its handlers. */
export interface HandlerContext {
  readonly h: Hart;
  /** Current data MMU index (MPRV and SUM applied). */
  dataMmu(): number;
  /** Writes back the retired-instruction count to the hart (minstret exact). */
  sync(): void;
  /**
   * Loads `size` bytes (4 or 8) from x[rs1] + imm (rs1 pre-multiplied by two, as in `a`).
   * Returns St.Next or St.Exit with the raw value in memOut, or St.Trap.
   */
  load(rs1: number, imm: number, size: 4 | 8): St;
  /** Stores the low `size` bytes of (lo, hi) at x[rs1] + imm. Returns St.Next, St.Exit or St.Trap. */
  store(rs1: number, imm: number, size: 4 | 8, lo: number, hi: number): St;
}

/** Index (in 32-bit halves) of the sink register that an rd of x0 writes. */
export const SINK = X_SINK * 2;

/**
 * The handler operands of a decoded instruction: `a` and `imm` as the Handler type describes.
 * System instructions take their fields unscaled: rd, rs1 (or zimm), rs2, and the CSR number
 * as `imm` for CSR instructions.
 */
export function packOperands(d: Decoded): [a: number, imm: number] {
  const def = d.def;
  if (def.kind === Kind.System) {
    return [d.rd | (d.rs1 << 8) | (d.rs2 << 16), def.format === 'CSR' || def.format === 'CSRI' ? d.csr : d.imm];
  }
  const rdX = def.regs[0] !== 'f';
  const rd = rdX && d.rd === 0 ? SINK : d.rd * 2;
  return [rd | (d.rs1 * 2) << 8 | (d.rs2 * 2) << 16 | (d.rm | (d.rs3 << 3)) << 24, d.imm];
}
