/**
 * The instruction set as data: one row per instruction, written by hand from the
 * RISC-V Unprivileged ISA (20240411) and Privileged Architecture (20240411) specifications.
 * The decoder, the disassembler, the interpreter and the translator all derive from these rows;
 * no other file restates an encoding.
 *
 * A pattern is the instruction word from bit 31 (or 15) down to bit 0: `0`/`1` are fixed bits,
 * any other character is an operand bit. Spaces and underscores are ignored.
 */
import type { Format } from './formats.ts';

/** Extensions a row belongs to (the name as in the ISA string). */
export type Ext = 'I' | 'M' | 'A' | 'F' | 'D' | 'C' | 'Zicsr' | 'Zifencei' | 'Priv';

/** What an instruction does to control flow and memory; translators and the interpreter use it. */
export const enum Kind {
  Alu = 0,
  Load = 1,
  Store = 2,
  Branch = 3,
  Jump = 4,
  /** CSR access, fences, privileged instructions (see Flag for what each means to an engine). */
  System = 5,
  Amo = 6,
}

/** What engines key on beyond an instruction's kind: the bits of InsnDef.flags. */
export const enum Flag {
  None = 0,
  /**
   * Changes privilege or waits (ECALL, EBREAK, MRET, SRET, WFI): never inside a translated
   * block, which ends before it; the dispatcher interprets it.
   */
  EndsBlock = 1,
  /**
   * Reads or writes CSRs or address translation (Zicsr, SFENCE.VMA): a translated block runs
   * the interpreter's handler in place, after which the data MMU (privilege, SUM, MPRV, satp)
   * may differ.
   */
  Csr = 2,
  /** A jump whose target is in its encoding (JAL; a branch's always is). */
  Direct = 4,
}

/** A 32-bit instruction. */
export interface InsnDef {
  /** Mnemonic exactly as the specification writes it. */
  readonly name: string;
  readonly ext: Ext;
  readonly mask: number;
  readonly match: number;
  readonly format: Format;
  readonly kind: Kind;
  /** Register file of rd, rs1, rs2, rs3 in that order ('x' or 'f'); absent means all 'x'. */
  readonly regs: string;
  /** Memory access width in bytes for loads, stores and AMOs; 0 otherwise. */
  readonly width: number;
  /** Flag bits. */
  readonly flags: number;
  /** Index of this row in INSNS; the interpreter and translator dispatch on it. */
  readonly id: number;
}

/** A compressed (16-bit) instruction: its fields and the 32-bit instruction it expands to. */
export interface CompressedDef {
  readonly name: string;
  readonly ext: Ext;
  readonly mask: number;
  readonly match: number;
  /** The 32-bit row this form expands to (Unprivileged spec ch. 26: every RVC form has one). */
  readonly expandsTo: string;
  /** Operands of the expansion, or null when this encoding is reserved (illegal instruction). */
  readonly expand: (h: number) => Operands | null;
}

/** Decoded operands shared by 32-bit and expanded compressed instructions. */
export interface Operands {
  rd: number;
  rs1: number;
  rs2: number;
  imm: number;
}

/** Parses a bit pattern into its mask and match. */
export function pattern(p: string): { mask: number; match: number; length: number } {
  const s = p.replace(/[\s_]/g, '');
  let mask = 0;
  let match = 0;
  for (let i = 0; i < s.length; i++) {
    const bit = s.length - 1 - i;
    if (s[i] === '0' || s[i] === '1') {
      mask |= 1 << bit;
      if (s[i] === '1') match |= 1 << bit;
    }
  }
  return { mask: mask >>> 0, match: match >>> 0, length: s.length };
}

type Row = [name: string, ext: Ext, pattern: string, format: Format, kind?: Kind, regs?: string, width?: number, flags?: Flag];

const { Alu, Load, Store, Branch, Jump, System, Amo } = {
  Alu: Kind.Alu, Load: Kind.Load, Store: Kind.Store, Branch: Kind.Branch,
  Jump: Kind.Jump, System: Kind.System, Amo: Kind.Amo,
};
const { EndsBlock, Csr, Direct } = { EndsBlock: Flag.EndsBlock, Csr: Flag.Csr, Direct: Flag.Direct };

// Field legend used in patterns below: i immediate, s shamt, d rd, a rs1, b rs2, c rs3, m rm,
// q aq, r rl, p pred, u succ, f fm, k csr.
const ROWS: Row[] = [
  // RV64I (Unprivileged ch. 2 and 4)
  ['lui',   'I', 'iiiiiiiiiiiiiiiiiiii ddddd 0110111', 'U'],
  ['auipc', 'I', 'iiiiiiiiiiiiiiiiiiii ddddd 0010111', 'U'],
  ['jal',   'I', 'iiiiiiiiiiiiiiiiiiii ddddd 1101111', 'J', Jump, 'xxx', 0, Direct],
  ['jalr',  'I', 'iiiiiiiiiiii aaaaa 000 ddddd 1100111', 'I', Jump],
  ['beq',   'I', 'iiiiiii bbbbb aaaaa 000 iiiii 1100011', 'B', Branch],
  ['bne',   'I', 'iiiiiii bbbbb aaaaa 001 iiiii 1100011', 'B', Branch],
  ['blt',   'I', 'iiiiiii bbbbb aaaaa 100 iiiii 1100011', 'B', Branch],
  ['bge',   'I', 'iiiiiii bbbbb aaaaa 101 iiiii 1100011', 'B', Branch],
  ['bltu',  'I', 'iiiiiii bbbbb aaaaa 110 iiiii 1100011', 'B', Branch],
  ['bgeu',  'I', 'iiiiiii bbbbb aaaaa 111 iiiii 1100011', 'B', Branch],
  ['lb',    'I', 'iiiiiiiiiiii aaaaa 000 ddddd 0000011', 'I', Load, 'xx', 1],
  ['lh',    'I', 'iiiiiiiiiiii aaaaa 001 ddddd 0000011', 'I', Load, 'xx', 2],
  ['lw',    'I', 'iiiiiiiiiiii aaaaa 010 ddddd 0000011', 'I', Load, 'xx', 4],
  ['ld',    'I', 'iiiiiiiiiiii aaaaa 011 ddddd 0000011', 'I', Load, 'xx', 8],
  ['lbu',   'I', 'iiiiiiiiiiii aaaaa 100 ddddd 0000011', 'I', Load, 'xx', 1],
  ['lhu',   'I', 'iiiiiiiiiiii aaaaa 101 ddddd 0000011', 'I', Load, 'xx', 2],
  ['lwu',   'I', 'iiiiiiiiiiii aaaaa 110 ddddd 0000011', 'I', Load, 'xx', 4],
  ['sb',    'I', 'iiiiiii bbbbb aaaaa 000 iiiii 0100011', 'S', Store, 'xxx', 1],
  ['sh',    'I', 'iiiiiii bbbbb aaaaa 001 iiiii 0100011', 'S', Store, 'xxx', 2],
  ['sw',    'I', 'iiiiiii bbbbb aaaaa 010 iiiii 0100011', 'S', Store, 'xxx', 4],
  ['sd',    'I', 'iiiiiii bbbbb aaaaa 011 iiiii 0100011', 'S', Store, 'xxx', 8],
  ['addi',  'I', 'iiiiiiiiiiii aaaaa 000 ddddd 0010011', 'I'],
  ['slti',  'I', 'iiiiiiiiiiii aaaaa 010 ddddd 0010011', 'I'],
  ['sltiu', 'I', 'iiiiiiiiiiii aaaaa 011 ddddd 0010011', 'I'],
  ['xori',  'I', 'iiiiiiiiiiii aaaaa 100 ddddd 0010011', 'I'],
  ['ori',   'I', 'iiiiiiiiiiii aaaaa 110 ddddd 0010011', 'I'],
  ['andi',  'I', 'iiiiiiiiiiii aaaaa 111 ddddd 0010011', 'I'],
  ['slli',  'I', '000000 ssssss aaaaa 001 ddddd 0010011', 'SH6'],
  ['srli',  'I', '000000 ssssss aaaaa 101 ddddd 0010011', 'SH6'],
  ['srai',  'I', '010000 ssssss aaaaa 101 ddddd 0010011', 'SH6'],
  ['add',   'I', '0000000 bbbbb aaaaa 000 ddddd 0110011', 'R'],
  ['sub',   'I', '0100000 bbbbb aaaaa 000 ddddd 0110011', 'R'],
  ['sll',   'I', '0000000 bbbbb aaaaa 001 ddddd 0110011', 'R'],
  ['slt',   'I', '0000000 bbbbb aaaaa 010 ddddd 0110011', 'R'],
  ['sltu',  'I', '0000000 bbbbb aaaaa 011 ddddd 0110011', 'R'],
  ['xor',   'I', '0000000 bbbbb aaaaa 100 ddddd 0110011', 'R'],
  ['srl',   'I', '0000000 bbbbb aaaaa 101 ddddd 0110011', 'R'],
  ['sra',   'I', '0100000 bbbbb aaaaa 101 ddddd 0110011', 'R'],
  ['or',    'I', '0000000 bbbbb aaaaa 110 ddddd 0110011', 'R'],
  ['and',   'I', '0000000 bbbbb aaaaa 111 ddddd 0110011', 'R'],
  ['addiw', 'I', 'iiiiiiiiiiii aaaaa 000 ddddd 0011011', 'I'],
  ['slliw', 'I', '0000000 sssss aaaaa 001 ddddd 0011011', 'SH5'],
  ['srliw', 'I', '0000000 sssss aaaaa 101 ddddd 0011011', 'SH5'],
  ['sraiw', 'I', '0100000 sssss aaaaa 101 ddddd 0011011', 'SH5'],
  ['addw',  'I', '0000000 bbbbb aaaaa 000 ddddd 0111011', 'R'],
  ['subw',  'I', '0100000 bbbbb aaaaa 000 ddddd 0111011', 'R'],
  ['sllw',  'I', '0000000 bbbbb aaaaa 001 ddddd 0111011', 'R'],
  ['srlw',  'I', '0000000 bbbbb aaaaa 101 ddddd 0111011', 'R'],
  ['sraw',  'I', '0100000 bbbbb aaaaa 101 ddddd 0111011', 'R'],
  ['fence', 'I', 'ffff pppp uuuu aaaaa 000 ddddd 0001111', 'FENCE', System],
  ['ecall', 'I', '000000000000 00000 000 00000 1110011', 'NONE', System, 'xxx', 0, EndsBlock],
  ['ebreak','I', '000000000001 00000 000 00000 1110011', 'NONE', System, 'xxx', 0, EndsBlock],

  // Zifencei, Zicsr (Unprivileged ch. 6, 7)
  ['fence.i', 'Zifencei', 'iiiiiiiiiiii aaaaa 001 ddddd 0001111', 'I', System],
  ['csrrw',  'Zicsr', 'kkkkkkkkkkkk aaaaa 001 ddddd 1110011', 'CSR', System, 'xxx', 0, Csr],
  ['csrrs',  'Zicsr', 'kkkkkkkkkkkk aaaaa 010 ddddd 1110011', 'CSR', System, 'xxx', 0, Csr],
  ['csrrc',  'Zicsr', 'kkkkkkkkkkkk aaaaa 011 ddddd 1110011', 'CSR', System, 'xxx', 0, Csr],
  ['csrrwi', 'Zicsr', 'kkkkkkkkkkkk iiiii 101 ddddd 1110011', 'CSRI', System, 'xxx', 0, Csr],
  ['csrrsi', 'Zicsr', 'kkkkkkkkkkkk iiiii 110 ddddd 1110011', 'CSRI', System, 'xxx', 0, Csr],
  ['csrrci', 'Zicsr', 'kkkkkkkkkkkk iiiii 111 ddddd 1110011', 'CSRI', System, 'xxx', 0, Csr],

  // Privileged instructions (Privileged spec 3.3, 10.2)
  ['mret',       'Priv', '0011000 00010 00000 000 00000 1110011', 'NONE', System, 'xxx', 0, EndsBlock],
  ['sret',       'Priv', '0001000 00010 00000 000 00000 1110011', 'NONE', System, 'xxx', 0, EndsBlock],
  ['wfi',        'Priv', '0001000 00101 00000 000 00000 1110011', 'NONE', System, 'xxx', 0, EndsBlock],
  ['sfence.vma', 'Priv', '0001001 bbbbb aaaaa 000 00000 1110011', 'SFENCE', System, 'xxx', 0, Csr],

  // M (Unprivileged ch. 13)
  ['mul',    'M', '0000001 bbbbb aaaaa 000 ddddd 0110011', 'R'],
  ['mulh',   'M', '0000001 bbbbb aaaaa 001 ddddd 0110011', 'R'],
  ['mulhsu', 'M', '0000001 bbbbb aaaaa 010 ddddd 0110011', 'R'],
  ['mulhu',  'M', '0000001 bbbbb aaaaa 011 ddddd 0110011', 'R'],
  ['div',    'M', '0000001 bbbbb aaaaa 100 ddddd 0110011', 'R'],
  ['divu',   'M', '0000001 bbbbb aaaaa 101 ddddd 0110011', 'R'],
  ['rem',    'M', '0000001 bbbbb aaaaa 110 ddddd 0110011', 'R'],
  ['remu',   'M', '0000001 bbbbb aaaaa 111 ddddd 0110011', 'R'],
  ['mulw',   'M', '0000001 bbbbb aaaaa 000 ddddd 0111011', 'R'],
  ['divw',   'M', '0000001 bbbbb aaaaa 100 ddddd 0111011', 'R'],
  ['divuw',  'M', '0000001 bbbbb aaaaa 101 ddddd 0111011', 'R'],
  ['remw',   'M', '0000001 bbbbb aaaaa 110 ddddd 0111011', 'R'],
  ['remuw',  'M', '0000001 bbbbb aaaaa 111 ddddd 0111011', 'R'],

  // A (Unprivileged ch. 14): aq = bit 26, rl = bit 25
  ['lr.w',      'A', '00010 qr 00000 aaaaa 010 ddddd 0101111', 'LR', Amo, 'xx', 4],
  ['sc.w',      'A', '00011 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amoswap.w', 'A', '00001 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amoadd.w',  'A', '00000 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amoxor.w',  'A', '00100 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amoand.w',  'A', '01100 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amoor.w',   'A', '01000 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amomin.w',  'A', '10000 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amomax.w',  'A', '10100 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amominu.w', 'A', '11000 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['amomaxu.w', 'A', '11100 qr bbbbb aaaaa 010 ddddd 0101111', 'AMO', Amo, 'xxx', 4],
  ['lr.d',      'A', '00010 qr 00000 aaaaa 011 ddddd 0101111', 'LR', Amo, 'xx', 8],
  ['sc.d',      'A', '00011 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amoswap.d', 'A', '00001 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amoadd.d',  'A', '00000 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amoxor.d',  'A', '00100 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amoand.d',  'A', '01100 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amoor.d',   'A', '01000 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amomin.d',  'A', '10000 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amomax.d',  'A', '10100 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amominu.d', 'A', '11000 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],
  ['amomaxu.d', 'A', '11100 qr bbbbb aaaaa 011 ddddd 0101111', 'AMO', Amo, 'xxx', 8],

  // F and D (Unprivileged ch. 20, 21); fmt field bits 26:25 is 00 for S, 01 for D.
  ['flw', 'F', 'iiiiiiiiiiii aaaaa 010 ddddd 0000111', 'I', Load, 'fx', 4],
  ['fsw', 'F', 'iiiiiii bbbbb aaaaa 010 iiiii 0100111', 'S', Store, 'xxf', 4],
  ['fmadd.s',  'F', 'ccccc 00 bbbbb aaaaa mmm ddddd 1000011', 'R4', Alu, 'ffff'],
  ['fmsub.s',  'F', 'ccccc 00 bbbbb aaaaa mmm ddddd 1000111', 'R4', Alu, 'ffff'],
  ['fnmsub.s', 'F', 'ccccc 00 bbbbb aaaaa mmm ddddd 1001011', 'R4', Alu, 'ffff'],
  ['fnmadd.s', 'F', 'ccccc 00 bbbbb aaaaa mmm ddddd 1001111', 'R4', Alu, 'ffff'],
  ['fadd.s',   'F', '0000000 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fsub.s',   'F', '0000100 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fmul.s',   'F', '0001000 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fdiv.s',   'F', '0001100 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fsqrt.s',  'F', '0101100 00000 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'ff'],
  ['fsgnj.s',  'F', '0010000 bbbbb aaaaa 000 ddddd 1010011', 'R', Alu, 'fff'],
  ['fsgnjn.s', 'F', '0010000 bbbbb aaaaa 001 ddddd 1010011', 'R', Alu, 'fff'],
  ['fsgnjx.s', 'F', '0010000 bbbbb aaaaa 010 ddddd 1010011', 'R', Alu, 'fff'],
  ['fmin.s',   'F', '0010100 bbbbb aaaaa 000 ddddd 1010011', 'R', Alu, 'fff'],
  ['fmax.s',   'F', '0010100 bbbbb aaaaa 001 ddddd 1010011', 'R', Alu, 'fff'],
  ['fcvt.w.s', 'F', '1100000 00000 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fcvt.wu.s','F', '1100000 00001 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fcvt.l.s', 'F', '1100000 00010 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fcvt.lu.s','F', '1100000 00011 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fmv.x.w',  'F', '1110000 00000 aaaaa 000 ddddd 1010011', 'R1', Alu, 'xf'],
  ['feq.s',    'F', '1010000 bbbbb aaaaa 010 ddddd 1010011', 'R', Alu, 'xff'],
  ['flt.s',    'F', '1010000 bbbbb aaaaa 001 ddddd 1010011', 'R', Alu, 'xff'],
  ['fle.s',    'F', '1010000 bbbbb aaaaa 000 ddddd 1010011', 'R', Alu, 'xff'],
  ['fclass.s', 'F', '1110000 00000 aaaaa 001 ddddd 1010011', 'R1', Alu, 'xf'],
  ['fcvt.s.w', 'F', '1101000 00000 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fcvt.s.wu','F', '1101000 00001 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fcvt.s.l', 'F', '1101000 00010 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fcvt.s.lu','F', '1101000 00011 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fmv.w.x',  'F', '1111000 00000 aaaaa 000 ddddd 1010011', 'R1', Alu, 'fx'],

  ['fld', 'D', 'iiiiiiiiiiii aaaaa 011 ddddd 0000111', 'I', Load, 'fx', 8],
  ['fsd', 'D', 'iiiiiii bbbbb aaaaa 011 iiiii 0100111', 'S', Store, 'xxf', 8],
  ['fmadd.d',  'D', 'ccccc 01 bbbbb aaaaa mmm ddddd 1000011', 'R4', Alu, 'ffff'],
  ['fmsub.d',  'D', 'ccccc 01 bbbbb aaaaa mmm ddddd 1000111', 'R4', Alu, 'ffff'],
  ['fnmsub.d', 'D', 'ccccc 01 bbbbb aaaaa mmm ddddd 1001011', 'R4', Alu, 'ffff'],
  ['fnmadd.d', 'D', 'ccccc 01 bbbbb aaaaa mmm ddddd 1001111', 'R4', Alu, 'ffff'],
  ['fadd.d',   'D', '0000001 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fsub.d',   'D', '0000101 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fmul.d',   'D', '0001001 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fdiv.d',   'D', '0001101 bbbbb aaaaa mmm ddddd 1010011', 'RRM', Alu, 'fff'],
  ['fsqrt.d',  'D', '0101101 00000 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'ff'],
  ['fsgnj.d',  'D', '0010001 bbbbb aaaaa 000 ddddd 1010011', 'R', Alu, 'fff'],
  ['fsgnjn.d', 'D', '0010001 bbbbb aaaaa 001 ddddd 1010011', 'R', Alu, 'fff'],
  ['fsgnjx.d', 'D', '0010001 bbbbb aaaaa 010 ddddd 1010011', 'R', Alu, 'fff'],
  ['fmin.d',   'D', '0010101 bbbbb aaaaa 000 ddddd 1010011', 'R', Alu, 'fff'],
  ['fmax.d',   'D', '0010101 bbbbb aaaaa 001 ddddd 1010011', 'R', Alu, 'fff'],
  ['fcvt.s.d', 'D', '0100000 00001 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'ff'],
  ['fcvt.d.s', 'D', '0100001 00000 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'ff'],
  ['feq.d',    'D', '1010001 bbbbb aaaaa 010 ddddd 1010011', 'R', Alu, 'xff'],
  ['flt.d',    'D', '1010001 bbbbb aaaaa 001 ddddd 1010011', 'R', Alu, 'xff'],
  ['fle.d',    'D', '1010001 bbbbb aaaaa 000 ddddd 1010011', 'R', Alu, 'xff'],
  ['fclass.d', 'D', '1110001 00000 aaaaa 001 ddddd 1010011', 'R1', Alu, 'xf'],
  ['fcvt.w.d', 'D', '1100001 00000 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fcvt.wu.d','D', '1100001 00001 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fcvt.l.d', 'D', '1100001 00010 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fcvt.lu.d','D', '1100001 00011 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'xf'],
  ['fmv.x.d',  'D', '1110001 00000 aaaaa 000 ddddd 1010011', 'R1', Alu, 'xf'],
  ['fcvt.d.w', 'D', '1101001 00000 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fcvt.d.wu','D', '1101001 00001 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fcvt.d.l', 'D', '1101001 00010 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fcvt.d.lu','D', '1101001 00011 aaaaa mmm ddddd 1010011', 'R1RM', Alu, 'fx'],
  ['fmv.d.x',  'D', '1111001 00000 aaaaa 000 ddddd 1010011', 'R1', Alu, 'fx'],
];

/** Every 32-bit instruction, in table order; `INSNS[d.id] === d`. */
export const INSNS: readonly InsnDef[] = ROWS.map(([name, ext, pat, format, kind, regs, width, flags], id) => {
  const { mask, match, length } = pattern(pat);
  if (length !== 32) throw new Error(`isa table: ${name} pattern has ${length} bits`);
  return { name, ext, mask, match, format, kind: kind ?? Alu, regs: regs ?? 'xxx', width: width ?? 0, flags: flags ?? Flag.None, id };
});

/** Looks a 32-bit row up by mnemonic. */
export const INSN_BY_NAME: ReadonlyMap<string, InsnDef> = new Map(INSNS.map((d) => [d.name, d]));

/** Instruction id by name, for dispatch tables keyed by name. */
export function insnId(name: string): number {
  const d = INSN_BY_NAME.get(name);
  if (!d) throw new Error(`isa table: no instruction ${name}`);
  return d.id;
}
