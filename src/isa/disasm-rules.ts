/**
 * objdump 2.40's choice of mnemonic and operands for each row of the table: the aliases it
 * prefers (in the order its opcode table lists them) and the exact operand syntax. Used by
 * disasm.ts; the comparison with objdump in test/isa/ is the specification of this file.
 */
import { csrDisasmName, type PrivSpec } from './disasm-csr.ts';
import type { IsaSet } from './disasm-isa.ts';
import type { Decoded } from './decode.ts';
import { F_NAMES, X_NAMES } from './formats.ts';

/** Where objdump's address comments come from (see Disassembler in disasm.ts). */
export interface AddressTracker {
  /** `lui`/`auipc` left `value` in `rd`. */
  setHi(rd: number, value: bigint): void;
  /** An instruction used `base` + `offset` as an address (`wide`: a 32-bit `addiw` result). */
  useBase(base: number, offset: number, wide: boolean): void;
}

/** What rendering needs: the options (DisasmOptions in disasm.ts), the ISA, the state. */
export interface RenderContext {
  symbolize?: (addr: bigint) => string | undefined;
  privSpec?: PrivSpec;
  /** The file's extensions; `d`'s own must be among them. */
  isa: IsaSet;
  /** Where address uses go; null for a lone instruction (no state, no comments). */
  tracker: AddressTracker | null;
}

type Ctx = Pick<RenderContext, 'symbolize' | 'privSpec'>;

const RM = ['rne', 'rtz', 'rdn', 'rup', 'rmm', 'unknown', 'unknown', ''];
const FENCE_SET = ['unknown', 'w', 'r', 'rw', 'o', 'ow', 'or', 'orw', 'i', 'iw', 'ir', 'irw', 'io', 'iow', 'ior', 'iorw'];
const AQRL = ['', '.rl', '.aq', '.aqrl'];
const MASK64 = (1n << 64n) - 1n;

const x = (r: number): string => X_NAMES[r]!;
const f = (r: number): string => F_NAMES[r]!;
const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;
const ins = (m: string, ops?: string): string => (ops === undefined ? m : `${m}\t${ops}`);
const data4 = (w: number): string => `.4byte\t${hex(w)}`;

/** An address as objdump prints it: `80000010 <main+0x10>`, or `0x80000010` without symbols. */
export function formatAddress(addr: bigint, c: Ctx): string {
  const a = addr & MASK64;
  const s = c.symbolize?.(a);
  return s === undefined ? `0x${a.toString(16)}` : `${a.toString(16)} <${s}>`;
}

const target = (pc: bigint, off: number, c: Ctx): string => formatAddress(pc + BigInt(off), c);

/** Renders `d` at `pc` as objdump prints it, reporting address uses to the context's tracker. */
export function renderInsn(d: Decoded, pc: bigint, c: RenderContext): string {
  return d.cdef ? renderCompressed(d, pc, c, c.tracker) : render32(d, pc, c, c.isa, c.tracker);
}

/** A register of the file the row's `regs` names for operand `i` (0 rd, 1 rs1, 2 rs2). */
function reg(d: Decoded, i: number, r: number): string {
  return d.def.regs[i] === 'f' ? f(r) : x(r);
}

function render32(d: Decoded, pc: bigint, c: Ctx, isa: IsaSet, t: AddressTracker | null): string {
  const { rd, rs1, rs2, rs3, imm, raw } = d;
  const n = d.def.name;
  const use = (base: number, off: number, wide = false): void => t?.useBase(base, off, wide);
  const mem = (r: string, base: number, off: number): string => {
    use(base, off);
    return `${r},${off}(${x(base)})`;
  };
  const withRm = (ops: string): string => (d.rm === 7 ? ops : `${ops},${RM[d.rm]}`);
  const csr = (): string => csrDisasmName(d.csr, c.privSpec);

  switch (n) {
    case 'lui':
      t?.setHi(rd, BigInt(imm));
      return ins(n, `${x(rd)},${hex(raw >>> 12)}`);
    case 'auipc':
      t?.setHi(rd, pc + BigInt(imm));
      return ins(n, `${x(rd)},${hex(raw >>> 12)}`);
    case 'jal':
      if (rd === 0) return ins('j', target(pc, imm, c));
      if (rd === 1) return ins('jal', target(pc, imm, c));
      return ins('jal', `${x(rd)},${target(pc, imm, c)}`);
    case 'jalr':
      return jalr(d, use);
    case 'beq': case 'bne':
      if (rs2 === 0) return ins(`${n}z`, `${x(rs1)},${target(pc, imm, c)}`);
      return ins(n, `${x(rs1)},${x(rs2)},${target(pc, imm, c)}`);
    case 'blt':
      if (rs2 === 0) return ins('bltz', `${x(rs1)},${target(pc, imm, c)}`);
      if (rs1 === 0) return ins('bgtz', `${x(rs2)},${target(pc, imm, c)}`);
      return ins(n, `${x(rs1)},${x(rs2)},${target(pc, imm, c)}`);
    case 'bge':
      if (rs1 === 0) return ins('blez', `${x(rs2)},${target(pc, imm, c)}`);
      if (rs2 === 0) return ins('bgez', `${x(rs1)},${target(pc, imm, c)}`);
      return ins(n, `${x(rs1)},${x(rs2)},${target(pc, imm, c)}`);
    case 'bltu': case 'bgeu':
      return ins(n, `${x(rs1)},${x(rs2)},${target(pc, imm, c)}`);
    case 'addi':
      if (rd === 0 && rs1 === 0 && imm === 0) return 'nop';
      if (rs1 === 0) return ins('li', `${x(rd)},${imm}`);
      if (imm === 0) return ins('mv', `${x(rd)},${x(rs1)}`);
      use(rs1, imm);
      return ins('add', `${x(rd)},${x(rs1)},${imm}`);
    case 'addiw':
      if (imm === 0) return ins('sext.w', `${x(rd)},${x(rs1)}`);
      if (rs1 !== 0) use(rs1, imm, true);
      return ins('addw', `${x(rd)},${x(rs1)},${imm}`);
    case 'sltiu':
      if (imm === 1) return ins('seqz', `${x(rd)},${x(rs1)}`);
      return ins(n, `${x(rd)},${x(rs1)},${imm}`);
    case 'xori':
      if (imm === -1) return ins('not', `${x(rd)},${x(rs1)}`);
      return ins('xor', `${x(rd)},${x(rs1)},${imm}`);
    case 'andi':
      if (imm === 255) return ins('zext.b', `${x(rd)},${x(rs1)}`);
      return ins('and', `${x(rd)},${x(rs1)},${imm}`);
    case 'ori':
      return ins('or', `${x(rd)},${x(rs1)},${imm}`);
    case 'slti':
      return ins(n, `${x(rd)},${x(rs1)},${imm}`);
    case 'slli': case 'srli': case 'srai': case 'slliw': case 'srliw': case 'sraiw':
      // objdump 2.40 lists the register-form aliases (`sll rd,rs1,shamt`) first.
      return ins(n.replace('i', ''), `${x(rd)},${x(rs1)},${hex(imm)}`);
    case 'sub': case 'subw':
      if (rs1 === 0) return ins(n === 'sub' ? 'neg' : 'negw', `${x(rd)},${x(rs2)}`);
      break;
    case 'slt':
      if (rs2 === 0) return ins('sltz', `${x(rd)},${x(rs1)}`);
      if (rs1 === 0) return ins('sgtz', `${x(rd)},${x(rs2)}`);
      break;
    case 'sltu':
      if (rs1 === 0) return ins('snez', `${x(rd)},${x(rs2)}`);
      break;
    case 'fence':
      return fence(d);
    case 'fence.i':
      return raw === 0x0000100f ? n : data4(raw);
    case 'csrrw': case 'csrrs': case 'csrrc': case 'csrrwi': case 'csrrsi': case 'csrrci':
      return csrInsn(d, csr(), isa.has('f') || isa.has('zfinx'));
    case 'sfence.vma':
      if (rs2 === 0) return rs1 === 0 ? n : ins(n, x(rs1));
      return ins(n, `${x(rs1)},${x(rs2)}`);
    case 'fsgnj.s': case 'fsgnj.d': case 'fsgnjn.s': case 'fsgnjn.d': case 'fsgnjx.s': case 'fsgnjx.d':
      if (rs1 === rs2) {
        const alias = n.startsWith('fsgnjn') ? 'fneg' : n.startsWith('fsgnjx') ? 'fabs' : 'fmv';
        return ins(`${alias}.${n.slice(-1)}`, `${f(rd)},${f(rs1)}`);
      }
      break;
    case 'fcvt.d.s': case 'fcvt.d.w': case 'fcvt.d.wu':
      // Exact conversions: objdump 2.40 only knows them with the rounding-mode field zero.
      return d.rm === 0 ? ins(n, `${f(rd)},${reg(d, 1, rs1)}`) : data4(raw);
    default:
      break;
  }

  switch (d.def.format) {
    case 'R':
      return ins(n, `${reg(d, 0, rd)},${reg(d, 1, rs1)},${reg(d, 2, rs2)}`);
    case 'RRM':
      return ins(n, withRm(`${f(rd)},${f(rs1)},${f(rs2)}`));
    case 'R4':
      return ins(n, withRm(`${f(rd)},${f(rs1)},${f(rs2)},${f(rs3)}`));
    case 'R1RM':
      return ins(n, withRm(`${reg(d, 0, rd)},${reg(d, 1, rs1)}`));
    case 'R1':
      return ins(n, `${reg(d, 0, rd)},${reg(d, 1, rs1)}`);
    case 'I': // loads
      return ins(n, mem(reg(d, 0, rd), rs1, imm));
    case 'S':
      return ins(n, mem(reg(d, 2, rs2), rs1, imm));
    case 'AMO':
      return ins(n + AQRL[imm], `${x(rd)},${x(rs2)},(${x(rs1)})`);
    case 'LR':
      return ins(n + AQRL[imm], `${x(rd)},(${x(rs1)})`);
    default:
      return n;
  }
}

/** JALR and its aliases; every form but `ret` reports its base register (objdump's `s`). */
function jalr(d: Decoded, use: (base: number, off: number) => void): string {
  const { rd, rs1, imm } = d;
  if (rd === 0 && rs1 === 1 && imm === 0) return 'ret';
  // objdump reports the base once per operand that names it: once for `rs1` forms, three times
  // for `imm(rs1)` forms. A repeat only shows when the first consumed a lui/auipc value of gp,
  // tp or zero: the next report then replaces it with the gp/tp/zero-relative address.
  use(rs1, imm);
  const base = imm === 0 ? x(rs1) : `${imm}(${x(rs1)})`;
  if (imm !== 0) {
    use(rs1, imm);
    use(rs1, imm);
  }
  if (rd === 0) return ins('jr', base);
  if (rd === 1) return ins('jalr', base);
  return ins('jalr', `${x(rd)},${base}`);
}

function fence(d: Decoded): string {
  const w = d.raw;
  if (w === 0x8330000f) return 'fence.tso';
  // fm, rd and rs1 must be zero for objdump's FENCE.
  if ((w & 0xf00f8f80) !== 0) return data4(w);
  const pred = (w >>> 24) & 15;
  const succ = (w >>> 20) & 15;
  if (pred === 15 && succ === 15) return 'fence';
  return ins('fence', `${FENCE_SET[pred]},${FENCE_SET[succ]}`);
}

/** Zicsr and its aliases (`csrr`, `csrw`, `rdcycle`, and with F `frflags`, `fsrmi`, ...). */
function csrInsn(d: Decoded, name: string, hasF: boolean): string {
  const { rd, rs1, csr } = d;
  const n = d.def.name;
  const src = n.endsWith('i') ? String(d.imm) : x(rs1);
  const op = n.endsWith('i') ? n.slice(0, -1) : n; // objdump 2.40 prints csrrwi as csrrw, ...
  const fp = hasF ? ['', 'flags', 'rm', 'csr'][csr] : undefined;
  switch (n) {
    case 'csrrw':
      if (fp) return ins(`fs${fp}`, rd === 0 ? x(rs1) : `${x(rd)},${x(rs1)}`);
      if (csr === 0xc00 && rd === 0 && rs1 === 0) return 'unimp';
      break;
    case 'csrrs':
      if (rs1 === 0) {
        if (fp) return ins(`fr${fp}`, x(rd));
        if (csr >= 0xc00 && csr <= 0xc02) return ins(['rdcycle', 'rdtime', 'rdinstret'][csr - 0xc00]!, x(rd));
        return ins('csrr', `${x(rd)},${name}`);
      }
      break;
    case 'csrrwi':
      if (hasF && (csr === 1 || csr === 2)) return ins(csr === 1 ? 'fsflagsi' : 'fsrmi', `${x(rd)},${d.imm}`);
      break;
    default:
      break;
  }
  if (rd === 0) return ins(`csr${op[4]}`, `${name},${src}`);
  return ins(op, `${x(rd)},${name},${src}`);
}

/**
 * Compressed instructions print as their 32-bit equivalents (objdump 2.40 lists the `add`,
 * `sll`, ... aliases first), HINT encodings under their `c.` names; compressed loads and
 * stores report no base address, unlike their 32-bit forms.
 */
function renderCompressed(d: Decoded, pc: bigint, c: Ctx, t: AddressTracker | null): string {
  const { rd, rs1, rs2, imm } = d;
  const n = d.cdef!.name;
  const base = d.def.name; // the 32-bit mnemonic it expands to
  switch (n) {
    case 'c.addi4spn':
      return ins('add', `${x(rd)},sp,${imm}`);
    case 'c.fld': case 'c.fldsp':
      return ins(base, `${f(rd)},${imm}(${x(rs1)})`);
    case 'c.lw': case 'c.ld': case 'c.lwsp': case 'c.ldsp':
      return ins(base, `${x(rd)},${imm}(${x(rs1)})`);
    case 'c.fsd': case 'c.fsdsp':
      return ins(base, `${f(rs2)},${imm}(${x(rs1)})`);
    case 'c.sw': case 'c.sd': case 'c.swsp': case 'c.sdsp':
      return ins(base, `${x(rs2)},${imm}(${x(rs1)})`);
    case 'c.addi':
      if (rd === 0) return imm === 0 ? 'nop' : ins('c.nop', String(imm));
      t?.useBase(rd, imm, false);
      return ins('add', `${x(rd)},${x(rd)},${imm}`);
    case 'c.addiw':
      if (imm === 0) return ins('sext.w', `${x(rd)},${x(rd)}`);
      t?.useBase(rd, imm, true);
      return ins('addw', `${x(rd)},${x(rd)},${imm}`);
    case 'c.li':
      return ins(rd === 0 ? 'c.li' : 'li', `${x(rd)},${imm}`);
    case 'c.addi16sp':
      return ins('add', `sp,sp,${imm}`);
    case 'c.lui':
      t?.setHi(rd, BigInt(imm));
      return ins(rd === 0 ? 'c.lui' : 'lui', `${x(rd)},${hex((imm >> 12) & 0xfffff)}`);
    case 'c.srli': case 'c.srai':
      if (imm === 0) return ins(`${n}64`, x(rd));
      return ins(base.slice(0, 3), `${x(rd)},${x(rd)},${hex(imm)}`);
    case 'c.slli':
      if (imm === 0) return ins('c.slli64', x(rd));
      return ins(rd === 0 ? 'c.slli' : 'sll', rd === 0 ? `zero,${hex(imm)}` : `${x(rd)},${x(rd)},${hex(imm)}`);
    case 'c.andi':
      return ins('and', `${x(rd)},${x(rd)},${imm}`);
    case 'c.sub': case 'c.xor': case 'c.or': case 'c.and': case 'c.subw': case 'c.addw':
      return ins(base, `${x(rd)},${x(rd)},${x(rs2)}`);
    case 'c.j':
      return ins('j', target(pc, imm, c));
    case 'c.beqz': case 'c.bnez':
      return ins(`${base}z`, `${x(rs1)},${target(pc, imm, c)}`);
    case 'c.jr':
      return rs1 === 1 ? 'ret' : ins('jr', x(rs1));
    case 'c.jalr':
      return ins('jalr', x(rs1));
    case 'c.mv':
      return ins(rd === 0 ? 'c.mv' : 'mv', `${x(rd)},${x(rs2)}`);
    case 'c.add':
      return rd === 0 ? ins('c.add', `zero,${x(rs2)}`) : ins('add', `${x(rd)},${x(rd)},${x(rs2)}`);
    case 'c.ebreak':
      return 'ebreak';
    default:
      return n;
  }
}
