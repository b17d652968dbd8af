/**
 * Generated assembly for the disassembler comparison: instruction words written as `.insn`
 * directives, so gas emits exactly those bits (as instructions, not data) and objdump
 * disassembles them. Covers every 16-bit word, every CSR number, and seeded random words for
 * every row of the 32-bit table with the operand values that select objdump's aliases.
 */
import { INSNS } from '../../src/isa/table.ts';

/** A small deterministic PRNG (xorshift32), so generated files are reproducible. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const hex = (v: number, w: number): string => `0x${(v >>> 0).toString(16).padStart(w, '0')}`;

/** Assembly that emits each word as an instruction of its own length, at `_start`. */
export function insnFile(words: { bits: number; len: 2 | 4 }[], preamble: string[] = []): string {
  const out = [...preamble, '  .text', '  .globl _start', '_start:'];
  for (const w of words) out.push(`  .insn ${w.len}, ${hex(w.bits, w.len * 2)}`);
  return `${out.join('\n')}\n`;
}

/** Every 16-bit word (the low two bits not 11), in order. */
export function allCompressed(): { bits: number; len: 2 }[] {
  const out: { bits: number; len: 2 }[] = [];
  for (let h = 0; h < 0x10000; h++) if ((h & 3) !== 3) out.push({ bits: h, len: 2 });
  return out;
}

const FIELD = { rd: [7, 5], rs1: [15, 5], rs2: [20, 5], rs3: [27, 5], f3: [12, 3], imm12: [20, 12] } as const;

function setField(w: number, f: keyof typeof FIELD, v: number): number {
  const [lo, n] = FIELD[f];
  const m = ((1 << n) - 1) << lo;
  return ((w & ~m) | ((v << lo) & m)) >>> 0;
}

/** Operand values objdump's aliases and special cases depend on. */
const SPECIAL: Partial<Record<keyof typeof FIELD, number[]>> = {
  rd: [0, 1, 2, 3, 4],
  rs1: [0, 1, 2, 3, 4],
  rs2: [0, 1, 2],
  f3: [7, 0, 5, 6],
  imm12: [0, 1, 0xfff, 0x800, 0x7ff, 0xc00, 0xc01, 0xc02, 0x001, 0x002, 0x003, 0x0ff, 0x083, 0x033, 0x8ff, 0x833],
};

/**
 * Random words for every 32-bit row: operand bits random, then each field independently
 * replaced, with some probability, by a value that matters to objdump (x0, ra, sp, rs1 = rs2,
 * imm 0 or -1, the dynamic rounding mode, CSR numbers with aliases, fence sets).
 */
export function randomRows(perRow: number, seed: number): { bits: number; len: 4; row: string }[] {
  const r = rng(seed);
  const out: { bits: number; len: 4; row: string }[] = [];
  for (const d of INSNS) {
    for (let i = 0; i < perRow; i++) {
      let w = r();
      for (const f of Object.keys(FIELD) as (keyof typeof FIELD)[]) {
        const s = SPECIAL[f];
        if (s && r() % 3 === 0) w = setField(w, f, s[r() % s.length]!);
      }
      if (r() % 4 === 0) w = setField(w, 'rs2', (w >>> 15) & 31);
      w = ((w & ~d.mask) | d.match) >>> 0;
      out.push({ bits: w, len: 4, row: d.name });
    }
  }
  return out;
}

/** Random words in every 32-bit major opcode (most of them illegal): objdump's fallbacks. */
export function randomMajors(perMajor: number, seed: number): { bits: number; len: 4 }[] {
  const r = rng(seed);
  const out: { bits: number; len: 4 }[] = [];
  for (let op = 0; op < 32; op++) {
    if ((op & 7) === 7) continue; // 48-bit and longer encodings
    for (let i = 0; i < perMajor; i++) {
      let w = r();
      if (r() % 2 === 0) w = setField(w, 'rd', 0);
      if (r() % 2 === 0) w = setField(w, 'rs1', 0);
      out.push({ bits: ((w & ~0x7f) | (op << 2) | 3) >>> 0, len: 4 });
    }
  }
  return out;
}

/**
 * Every combination of the fields that select an instruction within each 32-bit major opcode
 * (funct3, funct7, and rs2 or the whole immediate where they select too), with fixed operand
 * registers: where the table and objdump disagree on which words are instructions, the
 * comparison shows it.
 */
export function functSweep(): { bits: number; len: 4 }[] {
  const out: { bits: number; len: 4 }[] = [];
  const ops = (7 << 15) | (9 << 7); // rs1 = t2, rd = s1
  const push = (w: number): void => {
    out.push({ bits: w >>> 0, len: 4 });
  };
  for (let op = 0; op < 32; op++) {
    if ((op & 7) === 7) continue;
    const opcode = (op << 2) | 3;
    for (let f3 = 0; f3 < 8; f3++) {
      const base = opcode | (f3 << 12) | ops;
      switch (opcode) {
        case 0x33: case 0x3b: case 0x13: case 0x1b: case 0x2f: case 0x43: case 0x47: case 0x4b: case 0x4f:
          // funct7 (with aq/rl, fmt, or a shift's high bits) selects.
          for (let f7 = 0; f7 < 128; f7++) push(base | (f7 << 25) | (11 << 20));
          break;
        case 0x53:
          for (let f7 = 0; f7 < 128; f7++) for (let rs2 = 0; rs2 < 32; rs2++) push(base | (f7 << 25) | (rs2 << 20));
          break;
        case 0x73:
          if (f3 === 0) {
            for (let imm = 0; imm < 4096; imm++) push((opcode | (imm << 20)) >>> 0);
            push(opcode | ops);
            push(opcode | (0x120 << 20) | (5 << 15) | (6 << 20)); // sfence.vma t0,t1
          } else {
            push(base | (0x300 << 20));
          }
          break;
        case 0x0f:
          for (let fm = 0; fm < 16; fm++) push((opcode | (f3 << 12) | (fm << 28) | (0x33 << 20)) >>> 0);
          push(opcode | (f3 << 12));
          break;
        default:
          push(base | (0x5a5 << 20));
      }
    }
  }
  return out;
}

/**
 * A random stream of 16- and 32-bit instructions whose registers come from a small set (zero,
 * ra, sp, gp, tp, a0, a1), so `lui`/`auipc`/`c.lui` values meet the loads, stores, `addi`,
 * `addiw`, `jalr` and their compressed forms that consume them, as in objdump's state machine.
 */
export function randomStream(n: number, seed: number): { bits: number; len: 2 | 4 }[] {
  const r = rng(seed);
  const regs = [0, 1, 2, 3, 4, 10, 11];
  const out: { bits: number; len: 2 | 4 }[] = [];
  const writers = INSNS.filter((d) => d.name === 'lui' || d.name === 'auipc');
  const users = INSNS.filter((d) => ['I', 'S'].includes(d.format) || d.name === 'addiw' || d.name === 'jalr');
  for (let i = 0; i < n; i++) {
    const k = r() % 10;
    if (k < 4) {
      // Compressed: c.lui, c.addi, c.addiw, c.li, c.mv and loads/stores with a small register set.
      let h = r() & 0xffff;
      if ((h & 3) === 3) h ^= 1;
      if ((h & 3) === 1 && (h >>> 13) <= 3) h = (h & ~(31 << 7)) | (regs[r() % regs.length]! << 7);
      out.push({ bits: h, len: 2 });
      continue;
    }
    const d = k < 6 ? writers[r() % 2]! : users[r() % users.length]!;
    let w = r();
    w = setField(w, 'rd', regs[r() % regs.length]!);
    w = setField(w, 'rs1', regs[r() % regs.length]!);
    if (r() % 3 === 0) w = setField(w, 'imm12', 0);
    out.push({ bits: ((w & ~d.mask) | d.match) >>> 0, len: 4 });
  }
  return out;
}

/** `csrrs a0, csr, zero` etc. for every CSR number, so every name (and alias) is checked. */
export function allCsrs(): { bits: number; len: 4 }[] {
  const out: { bits: number; len: 4 }[] = [];
  for (let c = 0; c < 4096; c++) out.push({ bits: ((c << 20) | (2 << 12) | (10 << 7) | 0x73) >>> 0, len: 4 });
  return out;
}

/** `.attribute` lines that set the privileged spec version objdump names CSRs by. */
export function privSpecAttributes([major, minor, revision]: readonly [number, number, number]): string[] {
  return [
    `  .attribute priv_spec, ${major}`,
    `  .attribute priv_spec_minor, ${minor}`,
    `  .attribute priv_spec_revision, ${revision}`,
  ];
}
