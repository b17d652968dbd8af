/**
 * Operand formats: how a table row's operands are laid out in the instruction word.
 * The decoder extracts fields by format; the disassembler prints them by format.
 * Unprivileged spec ch. 2.3 (base formats), 2.4 (immediates), ch. 26 (RVC formats).
 */
export type Format =
  | 'R' // rd, rs1, rs2
  | 'R4' // rd, rs1, rs2, rs3, rm (fused multiply-add)
  | 'I' // rd, rs1, imm[11:0]
  | 'S' // rs1, rs2, imm[11:0] split
  | 'B' // rs1, rs2, imm[12:1]
  | 'U' // rd, imm[31:12]
  | 'J' // rd, imm[20:1]
  | 'SH6' // rd, rs1, shamt[5:0]
  | 'SH5' // rd, rs1, shamt[4:0]
  | 'CSR' // rd, csr, rs1
  | 'CSRI' // rd, csr, uimm[4:0]
  | 'AMO' // rd, rs1, rs2, aq, rl
  | 'LR' // rd, rs1, aq, rl
  | 'FENCE' // pred, succ, fm
  | 'SFENCE' // rs1, rs2
  | 'NONE' // no operands
  | 'RRM' // rd, rs1, rs2, rm (FP arithmetic)
  | 'R1RM' // rd, rs1, rm (FP one-operand with rounding mode)
  | 'R1'; // rd, rs1 (FP one-operand)

/** Register files an operand can name; decides how the disassembler prints it. */
export type RegFile = 'x' | 'f';

/** ABI names of the x registers, as GNU objdump prints them. */
export const X_NAMES = [
  'zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6',
] as const;

/** ABI names of the f registers. */
export const F_NAMES = [
  'ft0', 'ft1', 'ft2', 'ft3', 'ft4', 'ft5', 'ft6', 'ft7', 'fs0', 'fs1', 'fa0', 'fa1', 'fa2', 'fa3', 'fa4', 'fa5',
  'fa6', 'fa7', 'fs2', 'fs3', 'fs4', 'fs5', 'fs6', 'fs7', 'fs8', 'fs9', 'fs10', 'fs11', 'ft8', 'ft9', 'ft10', 'ft11',
] as const;

/** Sign-extends the low `bits` bits of `v` to a 32-bit integer. */
export function sext(v: number, bits: number): number {
  const s = 32 - bits;
  return (v << s) >> s;
}

/** Bits hi..lo of `v` (inclusive), as an unsigned field. */
export function bits(v: number, hi: number, lo: number): number {
  const width = hi - lo + 1;
  return width >= 32 ? v >>> lo : (v >>> lo) & ((1 << width) - 1);
}

export function immI(w: number): number {
  return w >> 20;
}
export function immS(w: number): number {
  return ((w >> 25) << 5) | ((w >>> 7) & 0x1f);
}
export function immB(w: number): number {
  return ((w >> 31) << 12) | (((w >>> 7) & 1) << 11) | (((w >>> 25) & 0x3f) << 5) | (((w >>> 8) & 0xf) << 1);
}
export function immU(w: number): number {
  return w & 0xfffff000;
}
export function immJ(w: number): number {
  return ((w >> 31) << 20) | (((w >>> 12) & 0xff) << 12) | (((w >>> 20) & 1) << 11) | (((w >>> 21) & 0x3ff) << 1);
}
