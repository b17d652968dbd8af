/**
 * The disassembler: a decoded instruction to text in GNU objdump's syntax (with its default
 * aliases, e.g. `li`, `mv`, `ret`, `beqz`). Driven by the table's formats and register files.
 */
import { csrName } from '../cpu/csr-numbers.ts';
import type { Decoded } from './decode.ts';
import { F_NAMES, X_NAMES } from './formats.ts';

export interface DisasmOptions {
  /** Names an address for branch targets, as objdump's `<sym+0x10>`. */
  symbolize?: (addr: bigint) => string | undefined;
}

const RM = ['rne', 'rtz', 'rdn', 'rup', 'rmm', '', '', 'dyn'];

const hex = (v: bigint): string => v.toString(16);
const xr = (r: number): string => X_NAMES[r]!;

function reg(file: string | undefined, r: number): string {
  return file === 'f' ? F_NAMES[r]! : X_NAMES[r]!;
}

function target(pc: bigint, off: number, o: DisasmOptions): string {
  const t = BigInt.asUintN(64, pc + BigInt(off));
  const s = o.symbolize?.(t);
  return s ? `${hex(t)} <${s}>` : hex(t);
}

function fenceSet(bits: number): string {
  let s = '';
  if (bits & 8) s += 'i';
  if (bits & 4) s += 'o';
  if (bits & 2) s += 'r';
  if (bits & 1) s += 'w';
  return s || '0';
}

/** One instruction as objdump prints it (mnemonic, a tab, operands). */
export function disassemble(d: Decoded, pc: bigint, o: DisasmOptions = {}): string {
  const { def, rd, rs1, rs2, rs3, imm } = d;
  const n = def.name;
  const rf = def.regs;
  const ins = (m: string, ops = ''): string => (ops ? `${m}\t${ops}` : m);
  const withRm = (ops: string): string => (d.rm === 7 ? ops : `${ops},${RM[d.rm] ?? d.rm}`);

  switch (n) {
    case 'lui':
      return ins('lui', `${xr(rd)},0x${hex(BigInt((imm >>> 12) & 0xfffff))}`);
    case 'auipc':
      return ins('auipc', `${xr(rd)},0x${hex(BigInt((imm >>> 12) & 0xfffff))}`);
    case 'jal':
      if (rd === 0) return ins('j', target(pc, imm, o));
      if (rd === 1) return ins('jal', target(pc, imm, o));
      return ins('jal', `${xr(rd)},${target(pc, imm, o)}`);
    case 'jalr':
      if (rd === 0 && rs1 === 1 && imm === 0) return 'ret';
      if (rd === 0 && imm === 0) return ins('jr', xr(rs1));
      if (rd === 1 && imm === 0) return ins('jalr', xr(rs1));
      return ins('jalr', `${xr(rd)},${imm}(${xr(rs1)})`);
    case 'beq': case 'bne': case 'blt': case 'bge': case 'bltu': case 'bgeu': {
      const t = target(pc, imm, o);
      if (rs2 === 0 && n !== 'bltu' && n !== 'bgeu') return ins(`${n}z`, `${xr(rs1)},${t}`);
      if (rs1 === 0 && n === 'blt') return ins('bgtz', `${xr(rs2)},${t}`);
      if (rs1 === 0 && n === 'bge') return ins('blez', `${xr(rs2)},${t}`);
      return ins(n, `${xr(rs1)},${xr(rs2)},${t}`);
    }
    case 'addi':
      if (rd === 0 && rs1 === 0 && imm === 0) return 'nop';
      if (rs1 === 0) return ins('li', `${xr(rd)},${imm}`);
      if (imm === 0) return ins('mv', `${xr(rd)},${xr(rs1)}`);
      break;
    case 'addiw':
      if (imm === 0) return ins('sext.w', `${xr(rd)},${xr(rs1)}`);
      break;
    case 'xori':
      if (imm === -1) return ins('not', `${xr(rd)},${xr(rs1)}`);
      break;
    case 'sltiu':
      if (imm === 1) return ins('seqz', `${xr(rd)},${xr(rs1)}`);
      break;
    case 'sub':
      if (rs1 === 0) return ins('neg', `${xr(rd)},${xr(rs2)}`);
      break;
    case 'subw':
      if (rs1 === 0) return ins('negw', `${xr(rd)},${xr(rs2)}`);
      break;
    case 'sltu':
      if (rs1 === 0) return ins('snez', `${xr(rd)},${xr(rs2)}`);
      break;
    case 'slt':
      if (rs2 === 0) return ins('sltz', `${xr(rd)},${xr(rs1)}`);
      if (rs1 === 0) return ins('sgtz', `${xr(rd)},${xr(rs2)}`);
      break;
    case 'add':
      if (d.cdef?.name === 'c.mv') return ins('mv', `${xr(rd)},${xr(rs2)}`);
      break;
    case 'fence': {
      const pred = (imm >>> 4) & 0xf;
      const succ = imm & 0xf;
      if (imm >>> 8 === 8 && pred === 3 && succ === 3) return 'fence.tso';
      if (pred === 15 && succ === 15) return 'fence';
      return ins('fence', `${fenceSet(pred)},${fenceSet(succ)}`);
    }
    case 'csrrs':
      if (rs1 === 0) {
        if (d.csr === 0xc00) return ins('rdcycle', xr(rd));
        if (d.csr === 0xc01) return ins('rdtime', xr(rd));
        if (d.csr === 0xc02) return ins('rdinstret', xr(rd));
        if (d.csr === 3) return ins('frcsr', xr(rd));
        if (d.csr === 2) return ins('frrm', xr(rd));
        if (d.csr === 1) return ins('frflags', xr(rd));
        return ins('csrr', `${xr(rd)},${csrName(d.csr)}`);
      }
      if (rd === 0) return ins('csrs', `${csrName(d.csr)},${xr(rs1)}`);
      break;
    case 'csrrw':
      if (rd === 0) {
        if (d.csr === 3) return ins('fscsr', xr(rs1));
        if (d.csr === 2) return ins('fsrm', xr(rs1));
        if (d.csr === 1) return ins('fsflags', xr(rs1));
        return ins('csrw', `${csrName(d.csr)},${xr(rs1)}`);
      }
      if (d.csr === 3) return ins('fscsr', `${xr(rd)},${xr(rs1)}`);
      if (d.csr === 2) return ins('fsrm', `${xr(rd)},${xr(rs1)}`);
      if (d.csr === 1) return ins('fsflags', `${xr(rd)},${xr(rs1)}`);
      break;
    case 'csrrc':
      if (rd === 0) return ins('csrc', `${csrName(d.csr)},${xr(rs1)}`);
      break;
    case 'csrrwi':
      if (rd === 0) return ins('csrwi', `${csrName(d.csr)},${imm}`);
      break;
    case 'csrrsi':
      if (rd === 0) return ins('csrsi', `${csrName(d.csr)},${imm}`);
      break;
    case 'csrrci':
      if (rd === 0) return ins('csrci', `${csrName(d.csr)},${imm}`);
      break;
    case 'sfence.vma':
      if (rs1 === 0 && rs2 === 0) return 'sfence.vma';
      if (rs2 === 0) return ins('sfence.vma', xr(rs1));
      return ins('sfence.vma', `${xr(rs1)},${xr(rs2)}`);
    case 'fsgnj.s': case 'fsgnj.d':
      if (rs1 === rs2) return ins(`fmv.${n.at(-1)}`, `${F_NAMES[rd]},${F_NAMES[rs1]}`);
      break;
    case 'fsgnjn.s': case 'fsgnjn.d':
      if (rs1 === rs2) return ins(`fneg.${n.at(-1)}`, `${F_NAMES[rd]},${F_NAMES[rs1]}`);
      break;
    case 'fsgnjx.s': case 'fsgnjx.d':
      if (rs1 === rs2) return ins(`fabs.${n.at(-1)}`, `${F_NAMES[rd]},${F_NAMES[rs1]}`);
      break;
    default:
      break;
  }

  switch (def.format) {
    case 'R':
      return ins(n, `${reg(rf[0], rd)},${reg(rf[1], rs1)},${reg(rf[2], rs2)}`);
    case 'RRM':
      return ins(n, withRm(`${reg(rf[0], rd)},${reg(rf[1], rs1)},${reg(rf[2], rs2)}`));
    case 'R4':
      return ins(n, withRm(`${F_NAMES[rd]},${F_NAMES[rs1]},${F_NAMES[rs2]},${F_NAMES[rs3]}`));
    case 'R1RM':
      return ins(n, withRm(`${reg(rf[0], rd)},${reg(rf[1], rs1)}`));
    case 'R1':
      return ins(n, `${reg(rf[0], rd)},${reg(rf[1], rs1)}`);
    case 'I':
      if (def.width > 0 || n === 'fence.i') {
        if (n === 'fence.i') return 'fence.i';
        return ins(n, `${reg(rf[0], rd)},${imm}(${xr(rs1)})`);
      }
      return ins(n, `${xr(rd)},${xr(rs1)},${imm}`);
    case 'S':
      return ins(n, `${reg(rf[2], rs2)},${imm}(${xr(rs1)})`);
    case 'SH6':
    case 'SH5':
      return ins(n, `${xr(rd)},${xr(rs1)},0x${imm.toString(16)}`);
    case 'CSR':
      return ins(n, `${xr(rd)},${csrName(d.csr)},${xr(rs1)}`);
    case 'CSRI':
      return ins(n, `${xr(rd)},${csrName(d.csr)},${imm}`);
    case 'AMO': {
      const m = n + (imm === 3 ? '.aqrl' : imm === 2 ? '.aq' : imm === 1 ? '.rl' : '');
      return ins(m, `${xr(rd)},${xr(rs2)},(${xr(rs1)})`);
    }
    case 'LR': {
      const m = n + (imm === 3 ? '.aqrl' : imm === 2 ? '.aq' : imm === 1 ? '.rl' : '');
      return ins(m, `${xr(rd)},(${xr(rs1)})`);
    }
    case 'NONE':
      return n;
    default:
      return n;
  }
}
