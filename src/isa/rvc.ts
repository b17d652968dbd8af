/**
 * The compressed instructions of RV64C (Unprivileged spec ch. 26, table 26.x "RVC opcode map").
 * Each row gives its bit pattern, the 32-bit instruction it expands to, and how its scattered
 * fields map onto that instruction's operands. Reserved encodings expand to null.
 */
import type { CompressedDef, Ext, Operands } from './table.ts';
import { pattern } from './table.ts';

/** Bit `i` of `h`. */
const b = (h: number, i: number): number => (h >>> i) & 1;
/** Bits hi..lo of `h`. */
const f = (h: number, hi: number, lo: number): number => (h >>> lo) & ((1 << (hi - lo + 1)) - 1);
/** The 3-bit register fields name x8..x15 (and f8..f15). */
const r3 = (h: number, lo: number): number => 8 + f(h, lo + 2, lo);
const sx = (v: number, n: number): number => (v << (32 - n)) >> (32 - n);
const ops = (rd: number, rs1: number, rs2: number, imm: number): Operands => ({ rd, rs1, rs2, imm });

// Immediates of the compressed formats (figure 26.x of the spec).
const ciImm = (h: number): number => sx((b(h, 12) << 5) | f(h, 6, 2), 6);
const clwImm = (h: number): number => (f(h, 12, 10) << 3) | (b(h, 6) << 2) | (b(h, 5) << 6);
const cldImm = (h: number): number => (f(h, 12, 10) << 3) | (f(h, 6, 5) << 6);
const lwspImm = (h: number): number => (b(h, 12) << 5) | (f(h, 6, 4) << 2) | (f(h, 3, 2) << 6);
const ldspImm = (h: number): number => (b(h, 12) << 5) | (f(h, 6, 5) << 3) | (f(h, 4, 2) << 6);
const swspImm = (h: number): number => (f(h, 12, 9) << 2) | (f(h, 8, 7) << 6);
const sdspImm = (h: number): number => (f(h, 12, 10) << 3) | (f(h, 9, 7) << 6);
const shamt = (h: number): number => (b(h, 12) << 5) | f(h, 6, 2);
const cjImm = (h: number): number =>
  sx(
    (b(h, 12) << 11) | (b(h, 11) << 4) | (f(h, 10, 9) << 8) | (b(h, 8) << 10) |
      (b(h, 7) << 6) | (b(h, 6) << 7) | (f(h, 5, 3) << 1) | (b(h, 2) << 5),
    12,
  );
const cbImm = (h: number): number =>
  sx((b(h, 12) << 8) | (f(h, 11, 10) << 3) | (f(h, 6, 5) << 6) | (f(h, 4, 3) << 1) | (b(h, 2) << 5), 9);
const addi4spnImm = (h: number): number => (f(h, 12, 11) << 4) | (f(h, 10, 7) << 6) | (b(h, 6) << 2) | (b(h, 5) << 3);
const addi16spImm = (h: number): number =>
  sx((b(h, 12) << 9) | (b(h, 6) << 4) | (b(h, 5) << 6) | (f(h, 4, 3) << 7) | (b(h, 2) << 5), 10);

const SP = 2;
const RA = 1;

type CRow = [name: string, ext: Ext, pattern: string, expandsTo: string, expand: (h: number) => Operands | null];

// Field legend: d rd, a rs1, b rs2, i immediate; 3-bit register fields are spelled with the
// same letters. Rows are matched in order, so special cases precede general ones.
const CROWS: CRow[] = [
  // Quadrant 0
  ['c.addi4spn', 'C', '000 iiiiiiii ddd 00', 'addi', (h) => {
    const imm = addi4spnImm(h);
    return imm === 0 ? null : ops(r3(h, 2), SP, 0, imm);
  }],
  ['c.fld', 'D', '001 iii aaa ii ddd 00', 'fld', (h) => ops(r3(h, 2), r3(h, 7), 0, cldImm(h))],
  ['c.lw', 'C', '010 iii aaa ii ddd 00', 'lw', (h) => ops(r3(h, 2), r3(h, 7), 0, clwImm(h))],
  ['c.ld', 'C', '011 iii aaa ii ddd 00', 'ld', (h) => ops(r3(h, 2), r3(h, 7), 0, cldImm(h))],
  ['c.fsd', 'D', '101 iii aaa ii bbb 00', 'fsd', (h) => ops(0, r3(h, 7), r3(h, 2), cldImm(h))],
  ['c.sw', 'C', '110 iii aaa ii bbb 00', 'sw', (h) => ops(0, r3(h, 7), r3(h, 2), clwImm(h))],
  ['c.sd', 'C', '111 iii aaa ii bbb 00', 'sd', (h) => ops(0, r3(h, 7), r3(h, 2), cldImm(h))],

  // Quadrant 1
  ['c.addi', 'C', '000 i ddddd iiiii 01', 'addi', (h) => ops(f(h, 11, 7), f(h, 11, 7), 0, ciImm(h))],
  ['c.addiw', 'C', '001 i ddddd iiiii 01', 'addiw', (h) =>
    f(h, 11, 7) === 0 ? null : ops(f(h, 11, 7), f(h, 11, 7), 0, ciImm(h))],
  ['c.li', 'C', '010 i ddddd iiiii 01', 'addi', (h) => ops(f(h, 11, 7), 0, 0, ciImm(h))],
  ['c.addi16sp', 'C', '011 i 00010 iiiii 01', 'addi', (h) => {
    const imm = addi16spImm(h);
    return imm === 0 ? null : ops(SP, SP, 0, imm);
  }],
  ['c.lui', 'C', '011 i ddddd iiiii 01', 'lui', (h) => {
    const imm = ciImm(h) << 12;
    return imm === 0 ? null : ops(f(h, 11, 7), 0, 0, imm);
  }],
  ['c.srli', 'C', '100 i 00 ddd iiiii 01', 'srli', (h) => ops(r3(h, 7), r3(h, 7), 0, shamt(h))],
  ['c.srai', 'C', '100 i 01 ddd iiiii 01', 'srai', (h) => ops(r3(h, 7), r3(h, 7), 0, shamt(h))],
  ['c.andi', 'C', '100 i 10 ddd iiiii 01', 'andi', (h) => ops(r3(h, 7), r3(h, 7), 0, ciImm(h))],
  ['c.sub', 'C', '100 0 11 ddd 00 bbb 01', 'sub', (h) => ops(r3(h, 7), r3(h, 7), r3(h, 2), 0)],
  ['c.xor', 'C', '100 0 11 ddd 01 bbb 01', 'xor', (h) => ops(r3(h, 7), r3(h, 7), r3(h, 2), 0)],
  ['c.or', 'C', '100 0 11 ddd 10 bbb 01', 'or', (h) => ops(r3(h, 7), r3(h, 7), r3(h, 2), 0)],
  ['c.and', 'C', '100 0 11 ddd 11 bbb 01', 'and', (h) => ops(r3(h, 7), r3(h, 7), r3(h, 2), 0)],
  ['c.subw', 'C', '100 1 11 ddd 00 bbb 01', 'subw', (h) => ops(r3(h, 7), r3(h, 7), r3(h, 2), 0)],
  ['c.addw', 'C', '100 1 11 ddd 01 bbb 01', 'addw', (h) => ops(r3(h, 7), r3(h, 7), r3(h, 2), 0)],
  ['c.j', 'C', '101 iiiiiiiiiii 01', 'jal', (h) => ops(0, 0, 0, cjImm(h))],
  ['c.beqz', 'C', '110 iii aaa iiiii 01', 'beq', (h) => ops(0, r3(h, 7), 0, cbImm(h))],
  ['c.bnez', 'C', '111 iii aaa iiiii 01', 'bne', (h) => ops(0, r3(h, 7), 0, cbImm(h))],

  // Quadrant 2
  ['c.slli', 'C', '000 i ddddd iiiii 10', 'slli', (h) => ops(f(h, 11, 7), f(h, 11, 7), 0, shamt(h))],
  ['c.fldsp', 'D', '001 i ddddd iiiii 10', 'fld', (h) => ops(f(h, 11, 7), SP, 0, ldspImm(h))],
  ['c.lwsp', 'C', '010 i ddddd iiiii 10', 'lw', (h) =>
    f(h, 11, 7) === 0 ? null : ops(f(h, 11, 7), SP, 0, lwspImm(h))],
  ['c.ldsp', 'C', '011 i ddddd iiiii 10', 'ld', (h) =>
    f(h, 11, 7) === 0 ? null : ops(f(h, 11, 7), SP, 0, ldspImm(h))],
  ['c.jr', 'C', '100 0 aaaaa 00000 10', 'jalr', (h) => (f(h, 11, 7) === 0 ? null : ops(0, f(h, 11, 7), 0, 0))],
  ['c.mv', 'C', '100 0 ddddd bbbbb 10', 'add', (h) => ops(f(h, 11, 7), 0, f(h, 6, 2), 0)],
  ['c.ebreak', 'C', '100 1 00000 00000 10', 'ebreak', () => ops(0, 0, 0, 0)],
  ['c.jalr', 'C', '100 1 aaaaa 00000 10', 'jalr', (h) => ops(RA, f(h, 11, 7), 0, 0)],
  ['c.add', 'C', '100 1 ddddd bbbbb 10', 'add', (h) => ops(f(h, 11, 7), f(h, 11, 7), f(h, 6, 2), 0)],
  ['c.fsdsp', 'D', '101 iiiiii bbbbb 10', 'fsd', (h) => ops(0, SP, f(h, 6, 2), sdspImm(h))],
  ['c.swsp', 'C', '110 iiiiii bbbbb 10', 'sw', (h) => ops(0, SP, f(h, 6, 2), swspImm(h))],
  ['c.sdsp', 'C', '111 iiiiii bbbbb 10', 'sd', (h) => ops(0, SP, f(h, 6, 2), sdspImm(h))],
];

/** Every compressed instruction of RV64C (with the D forms), in match order. */
export const CINSNS: readonly CompressedDef[] = CROWS.map(([name, ext, pat, expandsTo, expand]) => {
  const { mask, match, length } = pattern(pat);
  if (length !== 16) throw new Error(`isa table: ${name} pattern has ${length} bits`);
  return { name, ext, mask, match, expandsTo, expand };
});
