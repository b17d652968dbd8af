/**
 * The decoder: instruction bits to a row of the table plus operands. Derived from INSNS and
 * CINSNS; compressed instructions decode to the 32-bit row they expand to.
 */
import { immB, immI, immJ, immS, immU } from './formats.ts';
import { CINSNS } from './rvc.ts';
import { INSN_BY_NAME, INSNS, type CompressedDef, type InsnDef } from './table.ts';

/** A decoded instruction. For a compressed instruction, `def` is its 32-bit expansion. */
export interface Decoded {
  readonly def: InsnDef;
  /** The compressed row, when the instruction was 16 bits long. */
  readonly cdef: CompressedDef | null;
  readonly raw: number;
  readonly len: 2 | 4;
  readonly rd: number;
  readonly rs1: number;
  readonly rs2: number;
  readonly rs3: number;
  /** Sign-extended immediate (U-type: already shifted), shift amount, zimm, aq/rl, or fence bits. */
  readonly imm: number;
  /** Rounding mode field (FP) */
  readonly rm: number;
  /** CSR number (Zicsr) */
  readonly csr: number;
}

/** Rows grouped by major opcode (bits 6:0) for 32-bit, by quadrant and funct3 for 16-bit. */
const majors: InsnDef[][] = Array.from({ length: 128 }, () => []);
for (const d of INSNS) {
  const m = d.match & 0x7f;
  if ((d.mask & 0x7f) !== 0x7f) throw new Error(`isa table: ${d.name} does not fix its opcode`);
  majors[m]!.push(d);
}
const cgroups: CompressedDef[][] = Array.from({ length: 32 }, () => []);
const cexpansion = new Map<CompressedDef, InsnDef>();
for (const c of CINSNS) {
  cgroups[((c.match >>> 13) << 2) | (c.match & 3)]!.push(c);
  const d = INSN_BY_NAME.get(c.expandsTo);
  if (!d) throw new Error(`isa table: ${c.name} expands to unknown ${c.expandsTo}`);
  cexpansion.set(c, d);
}

/** Length in bytes of the instruction whose low 16 bits are `lo16` (2 or 4; longer forms are not supported). */
export function insnLength(lo16: number): 2 | 4 {
  return (lo16 & 3) === 3 ? 4 : 2;
}

/** Finds the 32-bit row for `w`, or undefined when no row matches (illegal instruction). */
export function lookup32(w: number): InsnDef | undefined {
  const group = majors[w & 0x7f]!;
  for (let i = 0; i < group.length; i++) {
    const d = group[i]!;
    if (((w & d.mask) >>> 0) === d.match) return d;
  }
  return undefined;
}

/** Decodes a 32-bit instruction word. Returns null for an illegal instruction. */
export function decode32(w: number): Decoded | null {
  const def = lookup32(w);
  if (!def) return null;
  let imm = 0;
  switch (def.format) {
    case 'I':
      imm = immI(w);
      break;
    case 'S':
      imm = immS(w);
      break;
    case 'B':
      imm = immB(w);
      break;
    case 'U':
      imm = immU(w) | 0;
      break;
    case 'J':
      imm = immJ(w);
      break;
    case 'SH6':
      imm = (w >>> 20) & 0x3f;
      break;
    case 'SH5':
      imm = (w >>> 20) & 0x1f;
      break;
    case 'CSRI':
      imm = (w >>> 15) & 0x1f;
      break;
    case 'AMO':
    case 'LR':
      imm = (w >>> 25) & 3;
      break;
    case 'FENCE':
      imm = (w >>> 20) & 0xfff;
      break;
    default:
      break;
  }
  return {
    def,
    cdef: null,
    raw: w >>> 0,
    len: 4,
    rd: (w >>> 7) & 0x1f,
    rs1: (w >>> 15) & 0x1f,
    rs2: (w >>> 20) & 0x1f,
    rs3: (w >>> 27) & 0x1f,
    imm,
    rm: (w >>> 12) & 7,
    csr: (w >>> 20) & 0xfff,
  };
}

/** Decodes a 16-bit compressed instruction into its 32-bit expansion, or null if reserved. */
export function decode16(h: number): Decoded | null {
  h &= 0xffff;
  const group = cgroups[((h >>> 13) << 2) | (h & 3)]!;
  for (let i = 0; i < group.length; i++) {
    const c = group[i]!;
    if ((h & c.mask) !== c.match) continue;
    const o = c.expand(h);
    if (!o) return null;
    return { def: cexpansion.get(c)!, cdef: c, raw: h, len: 2, rd: o.rd, rs1: o.rs1, rs2: o.rs2, rs3: 0, imm: o.imm, rm: 0, csr: 0 };
  }
  return null;
}

/** Decodes the instruction whose first bits are `w` (16 or 32 bits, per its length encoding). */
export function decode(w: number): Decoded | null {
  return insnLength(w & 0xffff) === 4 ? decode32(w) : decode16(w);
}
