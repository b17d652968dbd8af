/**
 * A small RV64GC assembler for the lockstep fuzz target: the trap handlers it installs and the
 * seed streams it starts from are written with it. Encodings follow the Unprivileged
 * specification's base formats (ch. 2.3, 2.5: R, I, S, B, U, J; R4 for the fused multiply-adds,
 * ch. 20) and the compressed formats (ch. 26) for the few RVC forms used. src/isa/table.ts is
 * the reference the decoder checks them against (every word here is decoded by both engines).
 */

import { CSR as CSR_NUMBERS } from '../../src/cpu/csr-numbers.ts';
import { CINSNS } from '../../src/isa/rvc.ts';
import { INSNS } from '../../src/isa/table.ts';

/** Integer register numbers by ABI name. */
export const R = {
  zero: 0, ra: 1, sp: 2, gp: 3, tp: 4, t0: 5, t1: 6, t2: 7, s0: 8, s1: 9,
  a0: 10, a1: 11, a2: 12, a3: 13, a4: 14, a5: 15, a6: 16, a7: 17,
  s2: 18, s3: 19, s4: 20, s5: 21, s6: 22, s7: 23, s8: 24, s9: 25, s10: 26, s11: 27,
  t3: 28, t4: 29, t5: 30, t6: 31,
} as const;

/** CSR numbers the handlers and seeds use (Privileged spec, tables 2.2-2.6). */
export const CSRS = {
  fflags: 0x001, frm: 0x002, fcsr: 0x003, cycle: 0xc00, time: 0xc01, instret: 0xc02,
  sstatus: 0x100, sie: 0x104, stvec: 0x105, sscratch: 0x140, sepc: 0x141, scause: 0x142, stval: 0x143, satp: 0x180,
  mstatus: 0x300, medeleg: 0x302, mie: 0x304, mtvec: 0x305, mcountinhibit: 0x320, mscratch: 0x340,
  mepc: 0x341, mcause: 0x342, mtval: 0x343, mip: 0x344, mcycle: 0xb00, minstret: 0xb02,
} as const;

type Target = string | number;

/** Emits instructions at a known guest address; labels may be used before they are defined. */
export class Asm {
  private readonly out: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: Array<{ at: number; label: string; kind: 'b' | 'j' | 'cj' }> = [];

  /** `base` is the guest address of the first byte emitted. */
  constructor(readonly base: number) {}

  /** The guest address of the next instruction. */
  get pc(): number {
    return this.base + this.out.length;
  }

  /** Defines a label at the next instruction. */
  label(name: string): this {
    this.labels.set(name, this.pc);
    return this;
  }

  /** Emits a 32-bit word (little-endian). */
  w32(w: number): this {
    for (let i = 0; i < 4; i++) this.out.push((w >>> (8 * i)) & 0xff);
    return this;
  }

  /** Emits a 16-bit halfword. */
  w16(h: number): this {
    this.out.push(h & 0xff, (h >>> 8) & 0xff);
    return this;
  }

  /** An R-type instruction. */
  r(op: number, f3: number, f7: number, rd: number, rs1: number, rs2: number): this {
    return this.w32((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op);
  }

  /** An I-type instruction (imm: 12 bits, signed). */
  i(op: number, f3: number, rd: number, rs1: number, imm: number): this {
    return this.w32(((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op);
  }

  /** An S-type instruction (imm: 12 bits, signed). */
  s(op: number, f3: number, rs1: number, rs2: number, imm: number): this {
    return this.w32((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op);
  }

  private offset(t: Target, kind: 'b' | 'j' | 'cj'): number {
    if (typeof t === 'number') return t;
    this.fixups.push({ at: this.out.length, label: t, kind });
    return 0;
  }

  /** A conditional branch (f3: 0 beq, 1 bne, 4 blt, 5 bge, 6 bltu, 7 bgeu) to a label or byte offset. */
  b(f3: number, rs1: number, rs2: number, t: Target): this {
    return this.w32((immB(this.offset(t, 'b')) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | 0x63) >>> 0);
  }

  /** JAL to a label or byte offset. */
  jal(rd: number, t: Target): this {
    return this.w32(jalWord(rd, this.offset(t, 'j')));
  }

  /** JALR. */
  jalr(rd: number, rs1: number, imm: number): this {
    return this.i(0x67, 0, rd, rs1, imm);
  }

  /** LUI with the upper 20 bits. */
  lui(rd: number, imm20: number): this {
    return this.w32(((imm20 & 0xfffff) << 12) | (rd << 7) | 0x37);
  }

  /** AUIPC with the upper 20 bits. */
  auipc(rd: number, imm20: number): this {
    return this.w32(((imm20 & 0xfffff) << 12) | (rd << 7) | 0x17);
  }

  /** rd = the guest address `addr` (pc-relative: auipc, addi). */
  la(rd: number, addr: number): this {
    const d = addr - this.pc;
    const lo = ((d & 0xfff) << 20) >> 20;
    return this.auipc(rd, (d - lo) >> 12).addi(rd, rd, lo);
  }

  /** rd = a 12-bit signed constant. */
  li(rd: number, v: number): this {
    return this.addi(rd, R.zero, v);
  }

  /** ADDI. */
  addi(rd: number, rs1: number, imm: number): this {
    return this.i(0x13, 0, rd, rs1, imm);
  }

  /** An integer register-register operation (op 0x33, or 0x3b for the W forms). */
  alu(f3: number, f7: number, rd: number, rs1: number, rs2: number, word = false): this {
    return this.r(word ? 0x3b : 0x33, f3, f7, rd, rs1, rs2);
  }

  /** A load (f3: 0 lb, 1 lh, 2 lw, 3 ld, 4 lbu, 5 lhu, 6 lwu). */
  load(f3: number, rd: number, rs1: number, imm: number): this {
    return this.i(0x03, f3, rd, rs1, imm);
  }

  /** A store (f3: 0 sb, 1 sh, 2 sw, 3 sd). */
  store(f3: number, rs2: number, rs1: number, imm: number): this {
    return this.s(0x23, f3, rs1, rs2, imm);
  }

  /** A CSR instruction (f3: 1 csrrw, 2 csrrs, 3 csrrc; 5-7 their immediate forms with `src` the zimm). */
  csr(f3: number, rd: number, csr: number, src: number): this {
    return this.i(0x73, f3, rd, src, csr);
  }

  /** A system instruction with no operands (funct12: 0 ecall, 1 ebreak, 0x302 mret, 0x102 sret, 0x105 wfi). */
  sys(funct12: number): this {
    return this.i(0x73, 0, 0, 0, funct12);
  }

  /** SFENCE.VMA rs1, rs2. */
  sfenceVma(rs1 = 0, rs2 = 0): this {
    return this.r(0x73, 0, 0x09, 0, rs1, rs2);
  }

  /** An AMO (funct5: 0 add, 1 swap, 2 lr, 3 sc, 4 xor, 8 or, 0xc and, 0x10 min, 0x14 max, 0x18 minu, 0x1c maxu). */
  amo(funct5: number, width: 4 | 8, rd: number, rs1: number, rs2: number, aqrl = 0): this {
    return this.r(0x2f, width === 4 ? 2 : 3, (funct5 << 2) | aqrl, rd, rs1, rs2);
  }

  /** An FP operation (op 0x53): funct7 selects it, rm the rounding mode (7 = dynamic). */
  fp(funct7: number, rm: number, rd: number, rs1: number, rs2: number): this {
    return this.r(0x53, rm, funct7, rd, rs1, rs2);
  }

  /** A fused multiply-add (op 0x43 fmadd, 0x47 fmsub, 0x4b fnmsub, 0x4f fnmadd; fmt 0 S, 1 D). */
  fma(op: number, fmt: number, rm: number, rd: number, rs1: number, rs2: number, rs3: number): this {
    return this.w32((rs3 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | op);
  }

  /** FLW/FLD (f3 2, 3). */
  fload(f3: number, rd: number, rs1: number, imm: number): this {
    return this.i(0x07, f3, rd, rs1, imm);
  }

  /** FSW/FSD (f3 2, 3). */
  fstore(f3: number, rs2: number, rs1: number, imm: number): this {
    return this.s(0x27, f3, rs1, rs2, imm);
  }

  /** c.addi rd, imm (imm in -32..31, nonzero for rd != 0). */
  cAddi(rd: number, imm: number): this {
    return this.w16((0 << 13) | (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 0x1f) << 2) | 1);
  }

  /** c.li rd, imm. */
  cLi(rd: number, imm: number): this {
    return this.w16((2 << 13) | (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 0x1f) << 2) | 1);
  }

  /** c.mv rd, rs2 / c.add rd, rs2. */
  cMv(rd: number, rs2: number, add = false): this {
    return this.w16((4 << 13) | ((add ? 1 : 0) << 12) | (rd << 7) | (rs2 << 2) | 2);
  }

  /** c.j to a label or byte offset (within +-2 KiB). */
  cJ(t: Target): this {
    return this.w16((5 << 13) | immCJ(this.offset(t, 'cj')) | 1);
  }

  /** C.NOP. */
  cNop(): this {
    return this.w16(0x0001);
  }

  /** The bytes, with every label resolved. */
  bytes(): Uint8Array {
    const b = Uint8Array.from(this.out);
    const v = new DataView(b.buffer);
    for (const f of this.fixups) {
      const target = this.labels.get(f.label);
      if (target === undefined) throw new Error(`lockstep-asm: no label ${f.label}`);
      const off = target - (this.base + f.at);
      if (f.kind === 'cj') v.setUint16(f.at, v.getUint16(f.at, true) | immCJ(off), true);
      else v.setUint32(f.at, (v.getUint32(f.at, true) | (f.kind === 'b' ? immB(off) : immJ(off))) >>> 0, true);
    }
    return b;
  }
}

/** `jal rd, off`: the word for a jump of `off` bytes. */
export function jalWord(rd: number, off: number): number {
  return (immJ(off) | (rd << 7) | 0x6f) >>> 0;
}

/** The immediate bits of a B-type instruction for a byte offset. */
function immB(off: number): number {
  return ((((off >> 12) & 1) << 31) | (((off >> 5) & 0x3f) << 25) | (((off >> 1) & 0xf) << 8) | (((off >> 11) & 1) << 7)) >>> 0;
}

/** The immediate bits of a J-type instruction for a byte offset. */
function immJ(off: number): number {
  return ((((off >> 20) & 1) << 31) | (((off >> 1) & 0x3ff) << 21) | (((off >> 11) & 1) << 20) | (((off >> 12) & 0xff) << 12)) >>> 0;
}

/** The immediate bits of c.j: imm[11|4|9:8|10|6|7|3:1|5] in bits 12:2 (Unprivileged 26.5). */
function immCJ(off: number): number {
  const bit = (n: number): number => (off >> n) & 1;
  const imm = (bit(11) << 10) | (bit(4) << 9) | (bit(9) << 8) | (bit(8) << 7) | (bit(10) << 6) | (bit(6) << 5) |
    (bit(7) << 4) | (bit(3) << 3) | (bit(2) << 2) | (bit(1) << 1) | bit(5);
  return imm << 2;
}

/**
 * A stream of valid instructions made from arbitrary bytes (the lockstep target's synthesis
 * mode): each 4-byte chunk picks a 32-bit table row, or two compressed rows, and fills the
 * operand bits from a hash of the chunk. Jumps stay within ±1 KiB (the code pages), and half of
 * the CSR accesses name a CSR that exists, so the stream mostly runs instead of faulting.
 */
export function synthesize(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    const c = v.getUint32(i, true);
    let r = mix(c);
    const next = (): number => (r = mix(r));
    if (c >>> 28 === 0xf) {
      for (let k = 0; k < 2; k++) {
        const d = CINSNS[next() % CINSNS.length]!;
        const h = ((next() & ~d.mask) | d.match) & 0xffff;
        out.push(h & 0xff, h >>> 8);
      }
      continue;
    }
    const d = INSNS[c % INSNS.length]!;
    let w = ((next() & ~d.mask) | d.match) >>> 0;
    if (d.format === 'J') w = ((w & 0xfff) | immJ(((next() % 1024) - 512) * 2)) >>> 0;
    if ((d.format === 'CSR' || d.format === 'CSRI') && next() & 1) {
      const names = Object.values(CSR_NUMBERS);
      w = ((w & 0xfffff) | (names[next() % names.length]! << 20)) >>> 0;
    }
    out.push(w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24);
  }
  return Uint8Array.from(out);
}

/** A 32-bit mixing function (a step of a xorshift-multiply hash). */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}
