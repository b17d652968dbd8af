/**
 * The disassembler: instructions to text exactly as GNU objdump 2.40 (`objdump -d`, Debian's
 * binutils-riscv64-unknown-elf, default options) prints them for RV64GC, aliases included.
 * `disassemble` renders one decoded instruction; `Disassembler` walks a sequence the way
 * objdump does, adding the `# address <symbol>` comments that follow `auipc`/`lui` pairs and
 * printing undecodable words as objdump's `.2byte`/`.4byte` directives.
 *
 * objdump picks, for each word, the first matching entry of its opcode table; its aliases and
 * their order are modelled here as rules per table row (see disasm-rules.ts). Some of that
 * order is a quirk of 2.40 (e.g. `addi` prints as `add`, `slli` as `sll`), reproduced on
 * purpose: the test of record compares with objdump line by line.
 */
import { decode, type Decoded } from './decode.ts';
import type { PrivSpec } from './disasm-csr.ts';
import { DEFAULT_ISA, isaHas, parseIsa, type IsaSet } from './disasm-isa.ts';
import { formatAddress, renderInsn, type AddressTracker } from './disasm-rules.ts';
import { X_NAMES } from './formats.ts';

export type { PrivSpec } from './disasm-csr.ts';
export { formatAddress } from './disasm-rules.ts';

export interface DisasmOptions {
  /**
   * Names an address for branch targets and address comments: the text objdump puts inside
   * `<...>` (e.g. `main+0x10`). Without it (or when it returns undefined) an address prints
   * as `0x80000010`, as objdump prints addresses of a file without symbols.
   */
  symbolize?: (addr: bigint) => string | undefined;
  /** Privileged spec whose CSR names are printed (objdump reads it from the ELF; default 1.12). */
  privSpec?: PrivSpec;
  /**
   * The ISA string of the code (an ELF's Tag_RISCV_arch or `$x<isa>` mapping symbol; default
   * `rv64gc`). Instructions of extensions it lacks print as data, as objdump prints them.
   */
  isa?: string;
}

/** Options of a sequence: also the global pointer objdump resolves `gp`-relative accesses with. */
export interface SequenceOptions extends DisasmOptions {
  /** Value of `__global_pointer$`, when the file defines it. */
  gp?: bigint;
}

/** One instruction of a sequence. */
export interface DisasmLine {
  addr: bigint;
  /** Length in bytes: 2 or 4, or 6-22 for the longer encodings (which print as data). */
  len: number;
  /** The instruction's bytes. */
  bytes: Uint8Array;
  text: string;
}

const MASK64 = (1n << 64n) - 1n;

/** The bytes of a decoded instruction, little-endian. */
function bytesOf(d: Decoded): Uint8Array {
  const b = new Uint8Array(d.len);
  for (let i = 0; i < d.len; i++) b[i] = (d.raw >>> (8 * i)) & 0xff;
  return b;
}

/** One decoded instruction as objdump prints it (mnemonic, a tab, operands), without comments. */
export function disassemble(d: Decoded, pc: bigint, o: DisasmOptions = {}): string {
  const isa = parseIsa(o.isa ?? DEFAULT_ISA);
  if (!isaHas(d, isa)) return disassembleUnknown(bytesOf(d), isa);
  return renderInsn(d, pc, { ...o, isa, tracker: null });
}

/**
 * The length objdump gives the instruction whose low 16 bits are `lo16` (Unprivileged spec
 * 1.5, "Base Instruction-Length Encoding"): 2, 4, 6, 8, or 10-22 bytes; the reserved 192-bit
 * and longer encodings count as 2.
 */
export function objdumpLength(lo16: number): number {
  if ((lo16 & 3) !== 3) return 2;
  if ((lo16 & 0x1f) !== 0x1f) return 4;
  if ((lo16 & 0x3f) === 0x1f) return 6;
  if ((lo16 & 0x7f) === 0x3f) return 8;
  if ((lo16 & 0x7f) === 0x7f && (lo16 & 0x7000) !== 0x7000) return 10 + ((lo16 >> 11) & 0xe);
  return 2;
}

/**
 * Instructions outside RV64GC that objdump 2.40 still names, which the table (rightly) does
 * not decode: URET (the withdrawn N extension), HRET and SFENCE.VM (privileged spec 1.9.1),
 * DRET (Debug spec). Keyed by the word with rs1 zero; only SFENCE.VM takes an rs1.
 */
const OBJDUMP_ONLY = new Map<number, string>([
  [0x00200073, 'uret'], [0x20200073, 'hret'], [0x7b200073, 'dret'], [0x10400073, 'sfence.vm'],
]);

/**
 * objdump's view of encodings the table does not decode (`bytes` holds exactly the
 * instruction). Reserved and illegal encodings print as data directives, except the few
 * objdump still names: the all-zero halfword and `csrw cycle, zero` (`unimp`), C.ADDI16SP with
 * a zero immediate, and the instructions of OBJDUMP_ONLY.
 */
export function disassembleUnknown(bytes: Uint8Array, isa: IsaSet = parseIsa(DEFAULT_ISA)): string {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  switch (bytes.length) {
    case 2:
      if (v === 0n && isa.has('c')) return 'unimp';
      if (v === 0x6101n && isa.has('c')) return 'add\tsp,sp,0';
      break;
    case 4: {
      const w = Number(v);
      // CSRRW x0, cycle, x0 is objdump's 32-bit `unimp`, a base ISA alias even without Zicsr.
      if (w === 0xc0001073) return 'unimp';
      const rs1 = (w >>> 15) & 31;
      const name = OBJDUMP_ONLY.get((w & ~(31 << 15)) >>> 0);
      if (name === 'sfence.vm') return rs1 === 0 ? name : `${name}\t${X_NAMES[rs1]}`;
      if (name !== undefined && rs1 === 0) return name;
      break;
    }
    case 8:
      break;
    default:
      return `.byte\t${Array.from(bytes, (b) => `0x${b.toString(16).padStart(2, '0')}`).join(', ')}`;
  }
  return `.${bytes.length}byte\t0x${v.toString(16)}`;
}

/**
 * Disassembles instructions in the order objdump reads them, keeping its state: the value each
 * `lui`/`auipc` left in a register, consumed by the next instruction that uses that register as
 * a base (load, store, `addi`, `jalr`), which then gets a `# address <symbol>` comment. Like
 * objdump, the state lives for the whole file, across functions and sections.
 */
export class Disassembler {
  private readonly hi: (bigint | null)[] = new Array<bigint | null>(32).fill(null);
  private printAddr: bigint | null = null;
  private readonly tracker: AddressTracker;

  /**
   * How addresses and CSRs print. objdump names addresses after symbols of the section being
   * disassembled, so a caller walking several sections may replace this between sections
   * without losing the register state.
   */
  options: SequenceOptions;

  constructor(options: SequenceOptions = {}) {
    this.options = options;
    this.tracker = {
      setHi: (rd, value) => {
        this.hi[rd] = value & MASK64;
      },
      useBase: (base, offset, wide) => this.useBase(base, offset, wide),
    };
  }

  /** Forgets every tracked register value (objdump starts each file afresh). */
  reset(): void {
    this.hi.fill(null);
    this.printAddr = null;
  }

  /**
   * Disassembles the instruction at `bytes[offset]`, loaded at address `pc`. Returns its
   * length and text, or null when the bytes end in the middle of the instruction.
   */
  at(bytes: Uint8Array, offset: number, pc: bigint): { len: number; text: string } | null {
    if (offset + 2 > bytes.length) return null;
    const lo = bytes[offset]! | (bytes[offset + 1]! << 8);
    const len = objdumpLength(lo);
    if (offset + len > bytes.length) return null;
    const d = len === 2 ? decode(lo) : len === 4 ? decode(lo | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) : null;
    const isa = parseIsa(this.options.isa ?? DEFAULT_ISA);
    if (!d || !isaHas(d, isa)) return { len, text: disassembleUnknown(bytes.subarray(offset, offset + len), isa) };
    this.printAddr = null;
    let text = renderInsn(d, pc, { ...this.options, isa, tracker: this.tracker });
    if (this.printAddr !== null) text += ` # ${formatAddress(this.printAddr, this.options)}`;
    this.printAddr = null;
    return { len, text };
  }

  /** Disassembles `bytes` (code loaded at `base`) from start to end, in order. */
  range(bytes: Uint8Array, base: bigint): DisasmLine[] {
    const out: DisasmLine[] = [];
    for (let i = 0; ; ) {
      const addr = base + BigInt(i);
      const r = this.at(bytes, i, addr);
      if (!r) return out;
      out.push({ addr, len: r.len, bytes: bytes.subarray(i, i + r.len), text: r.text });
      i += r.len;
    }
  }

  // objdump's rule for the address an instruction's base register and offset make.
  private useBase(base: number, offset: number, wide: boolean): void {
    const hi = this.hi[base];
    let addr: bigint;
    if (hi !== null && hi !== undefined) {
      addr = (base !== 0 ? hi : 0n) + BigInt(offset);
      this.hi[base] = null;
    } else if (base === 3 && this.options.gp !== undefined) {
      addr = this.options.gp + BigInt(offset);
    } else if (base === 4 || base === 0) {
      addr = BigInt(offset);
    } else {
      return;
    }
    if (wide) addr = BigInt.asIntN(32, addr);
    this.printAddr = addr & MASK64;
  }
}
