/**
 * Seed streams for the lockstep fuzz target: valid programs that exercise each part of the
 * translator (loops it compiles, loads and stores into the data window, CSR accesses, floating
 * point, AMOs, traps the handlers skip, paging, self-modifying code, a timer interrupt,
 * compressed code with an instruction across the code pages' boundary, calls between pages).
 * Each is an 8-byte header (see Config in lockstep.ts) followed by the stream. The mutator
 * starts from these, so most mutated inputs still run loops and reach the data window.
 */
import { Asm, CSRS, R } from './lockstep-asm.ts';

const CODE = 0x8000_1000;
const DATA = 0x8000_8000;

/** Header fields (lockstep.ts, Config). */
interface Header {
  /** 0 U, 1 S, 2 M. */
  priv: 0 | 1 | 2;
  paging?: boolean;
  fp?: boolean;
  delegate?: boolean;
  clearAD?: boolean;
  timer?: boolean;
  noTailCalls?: boolean;
  frm?: number;
  /** Index into THRESHOLDS: 0 is 4, 1 is 50, 2 is 400. */
  threshold?: number;
  /** Index into BUDGETS (1, 3, 17, 64, 97, 200, 500, 1000). */
  budget?: number;
  seed?: number;
  timerTicks?: number;
  mstatusExtra?: number;
  insns?: number;
  /** Where the stream starts in the code pages (a multiple of 16 below 4096). */
  offset?: number;
  /** The body chooses valid instructions (lockstep-asm.ts, synthesize). */
  synthesize?: boolean;
}

function header(h: Header): number[] {
  const b0 = h.priv | (h.paging ? 4 : 0) | (h.fp ? 8 : 0) | (h.delegate ? 0x10 : 0) | (h.clearAD ? 0x20 : 0) | (h.timer ? 0x40 : 0) |
    (h.noTailCalls ? 0x80 : 0);
  const b1 = (h.frm ?? 0) | ((h.threshold ?? 0) << 3) | ((h.budget ?? 4) << 5);
  const seed = h.seed ?? 1;
  const b5 = (h.mstatusExtra ?? 0) | (h.synthesize ? 0x20 : 0);
  return [b0, b1, seed & 0xff, seed >> 8, h.timerTicks ?? 0, b5, h.insns ?? 64, (h.offset ?? 0) >> 4];
}

function seed(h: Header, body: (a: Asm) => void): Uint8Array {
  const a = new Asm(CODE + (h.offset ?? 0));
  body(a);
  return Uint8Array.from([...header(h), ...a.bytes()]);
}

const { zero, ra, t1, t2, s0, s1, a0, a1, a2, a3, a4, a5, a6, a7 } = R;

/** s0 = the data window (pc-relative, so it is right in every mode). */
function dataBase(a: Asm): Asm {
  return a.la(s0, DATA);
}

/** Integer arithmetic, M extension included, in a counted loop. */
const alu = seed({ priv: 2, threshold: 0, budget: 4, seed: 7 }, (a) => {
  a.li(a0, 40).label('loop');
  a.alu(0, 0, a1, a1, a2).alu(4, 0, a2, a2, a1).alu(1, 0, a3, a1, a0).alu(0, 1, a4, a1, a2); // add, xor, sll, mul
  a.alu(5, 1, a5, a4, a3).alu(6, 1, a6, a4, a0, true).alu(4, 1, a7, a5, a2).alu(3, 1, a3, a3, a4); // divu, remw, div, mulhu
  a.addi(a1, a1, -7).i(0x1b, 5, a2, a2, 0x403).alu(3, 0, a4, a1, a2).alu(5, 0x20, a5, a5, a0); // sraiw, sltu, sra
  a.addi(a0, a0, -1).b(1, a0, zero, 'loop');
});

/** Loads and stores of every width, misaligned and across a page boundary. */
const memory = seed({ priv: 2, threshold: 1, budget: 3, seed: 11 }, (a) => {
  dataBase(a).li(a0, 24).label('loop');
  a.store(3, a0, s0, 0).load(3, a1, s0, 0).store(2, a1, s0, 12).load(2, a2, s0, 12).load(6, a3, s0, 12);
  a.store(1, a2, s0, 22).load(1, a4, s0, 22).load(5, a5, s0, 22).store(0, a4, s0, 31).load(0, a6, s0, 31).load(4, a7, s0, 31);
  a.load(3, a1, s0, 3).store(3, a1, s0, 0x7fd); // misaligned: performed
  a.lui(t1, 1).alu(0, 0, t1, t1, s0).load(3, a2, t1, -3).store(2, a2, t1, -2); // across the window's first page boundary
  a.alu(0, 0, s0, s0, a0).addi(s0, s0, 8).addi(a0, a0, -1).b(1, a0, zero, 'loop');
});

/** CSR reads and writes in M-mode, the counters and mcountinhibit among them. */
const csrs = seed({ priv: 2, threshold: 0, budget: 2, seed: 3, fp: true }, (a) => {
  a.li(a0, 16).label('loop');
  a.csr(1, a1, CSRS.sscratch, a0).csr(2, a2, CSRS.sscratch, zero).csr(2, a3, CSRS.cycle, zero).csr(2, a4, CSRS.instret, zero);
  a.csr(2, a5, CSRS.time, zero).csr(1, zero, CSRS.minstret, a0).csr(2, a6, CSRS.minstret, zero).csr(6, zero, CSRS.mcountinhibit, 5);
  a.csr(2, a7, CSRS.mcycle, zero).csr(7, zero, CSRS.mcountinhibit, 4).csr(1, zero, CSRS.mcycle, a6).csr(7, zero, CSRS.mcountinhibit, 1);
  a.csr(5, a1, CSRS.frm, 3).csr(2, a2, CSRS.fflags, zero).csr(2, a3, CSRS.mstatus, zero).csr(2, a4, CSRS.mip, zero);
  a.csr(2, a5, CSRS.medeleg, zero).csr(1, zero, CSRS.mepc, a5).csr(2, a6, CSRS.mcause, zero);
  a.addi(a0, a0, -1).b(1, a0, zero, 'loop');
});

/** Floating point: the fast paths and the cases they refuse. */
const fp = seed({ priv: 2, fp: true, threshold: 0, budget: 4, seed: 5 }, (a) => {
  dataBase(a).li(a0, 20).label('loop');
  a.fstore(3, 1, s0, 0).fload(3, 2, s0, 0).fstore(2, 3, s0, 12).fload(2, 4, s0, 12);
  a.fp(0x01, 7, 5, 1, 2).fp(0x08, 0, 6, 5, 3).fp(0x0d, 7, 7, 5, 6).fp(0x2d, 7, 8, 7, 0); // fadd.d, fmul.s rne, fdiv.d, fsqrt.d
  a.fma(0x43, 1, 7, 9, 5, 6, 7).fma(0x4f, 0, 1, 10, 3, 4, 1); // fmadd.d dyn, fnmadd.s rtz
  a.fp(0x61, 1, a1, 9, 0).fp(0x69, 7, 11, a1, 2).fp(0x71, 1, a2, 9, 0).fp(0x51, 1, a3, 9, 10); // fcvt.w.d, fcvt.d.l, fclass.d, flt.d
  a.fp(0x15, 1, 12, 9, 5).fp(0x11, 2, 13, 12, 6).fp(0x71, 0, a4, 13, 0).fp(0x79, 0, 14, a4, 0); // fmax.d, fsgnjx.d, fmv.x.d, fmv.d.x
  a.fp(0x20, 7, 15, 9, 1).fp(0x21, 7, 16, 15, 0).csr(2, a5, CSRS.fflags, zero); // fcvt.s.d, fcvt.d.s
  a.addi(s0, s0, 16).addi(a0, a0, -1).b(1, a0, zero, 'loop');
});

/** LR/SC and AMOs on the data window, one misaligned. */
const amo = seed({ priv: 2, threshold: 1, budget: 5, seed: 9 }, (a) => {
  dataBase(a).li(a0, 30).label('loop');
  a.label('retry').amo(2, 8, a1, s0, zero).addi(a1, a1, 1).amo(3, 8, a2, s0, a1).b(1, a2, zero, 'retry');
  a.amo(0, 4, a3, s0, a0).amo(1, 8, a4, s0, a3).amo(0x1c, 8, a5, s0, a0).amo(8, 4, a6, s0, a4, 3).amo(0x10, 4, a7, s0, a1);
  a.addi(t1, s0, 2).amo(0, 4, a3, t1, a0); // misaligned: a trap the handler skips
  a.amo(3, 4, a2, s0, a0); // SC without a reservation fails
  a.addi(a0, a0, -1).b(1, a0, zero, 'loop');
});

/** Exceptions from U-mode under paging, delegated to S: each is skipped by the S handler. */
const traps = seed({ priv: 0, paging: true, delegate: true, threshold: 1, budget: 4, seed: 13 }, (a) => {
  a.li(a0, 10).label('loop');
  a.w32(0).sys(0).sys(1).cNop(); // illegal, ecall, ebreak
  a.load(3, a1, zero, 8); // access fault: no device at address 8
  a.la(t1, 0x8000_0000).store(3, a1, t1, 0); // the handlers' page is not user-accessible
  a.csr(2, a2, CSRS.mstatus, zero).csr(2, a3, CSRS.cycle, zero); // illegal in U; cycle too (mcounteren is 0)
  dataBase(a).load(3, a4, s0, 1).addi(a4, a4, 1).store(3, a4, s0, 1);
  a.addi(a0, a0, -1).b(1, a0, zero, 'loop');
});

/** S-mode under paging with the A and D bits clear: the walker sets them; SFENCE.VMA; SUM toggles. */
const supervisor = seed({ priv: 1, paging: true, clearAD: true, threshold: 1, budget: 3, seed: 17, mstatusExtra: 1 }, (a) => {
  dataBase(a).li(a0, 12).label('loop');
  a.load(3, a1, s0, 0).store(3, a0, s0, 0x800).lui(t1, 2).alu(0, 0, t1, t1, s0).store(2, a0, t1, 0);
  a.sfenceVma(s0, zero).csr(2, a2, CSRS.satp, zero).csr(2, a3, CSRS.sstatus, zero);
  a.lui(t2, 0x40).csr(3, zero, CSRS.sstatus, t2).csr(2, zero, CSRS.sstatus, t2); // SUM off, on
  a.sfenceVma().csr(2, a4, CSRS.stval, zero).csr(1, zero, CSRS.sepc, a4);
  a.addi(a0, a0, -1).b(1, a0, zero, 'loop');
});

/** A loop that rewrites an instruction of its own page, with FENCE.I. */
const selfModifying = seed({ priv: 2, threshold: 0, budget: 4, seed: 19 }, (a) => {
  a.li(a0, 30).la(s1, a.base + 0x80).label('loop');
  a.load(2, t1, s1, 0).i(0x13, 4, t1, t1, 0x300).store(2, t1, s1, 0); // xori: rd of the addi below flips a1 <-> a3
  a.i(0x0f, 1, zero, zero, 0); // fence.i
  a.jal(ra, 'rewritten');
  a.addi(a0, a0, -1).b(1, a0, zero, 'loop').jal(zero, 'end');
  while (a.pc < a.base + 0x80) a.cNop();
  a.label('rewritten').addi(a1, a1, 1).jalr(zero, ra, 0);
  a.label('end');
});

/** A timer interrupt in M-mode while a loop runs; WFI. */
const timer = seed({ priv: 2, timer: true, timerTicks: 6, threshold: 0, budget: 4, seed: 23 }, (a) => {
  a.li(a0, 100).label('loop').alu(0, 0, a1, a1, a0).addi(a0, a0, -1).b(1, a0, zero, 'loop');
  a.csr(2, a2, CSRS.mip, zero).sys(0x105); // wfi (no interrupt left enabled: the run ends)
});

/** Compressed code, and a 32-bit instruction whose halves are on the two code pages. */
const straddle = seed({ priv: 2, threshold: 0, budget: 5, seed: 29, noTailCalls: true, offset: 0xfc0 }, (a) => {
  a.cLi(a0, 20).label('loop');
  while (a.pc < CODE + 0xffe - 6) a.cAddi(a1, 1).cMv(a2, a1, true);
  while (a.pc < CODE + 0xffe) a.cNop();
  a.alu(0, 0, a3, a3, a2); // across the boundary
  a.cAddi(a0, -1).b(1, a0, zero, 'loop');
});

/** Calls from the end of the first code page to functions on the second (jal, jalr, ret). */
const calls = seed({ priv: 2, threshold: 1, budget: 4, seed: 31, offset: 0xf80 }, (a) => {
  a.li(a0, 25).label('loop').jal(ra, 'f').la(t1, CODE + 0x1040).jalr(ra, t1, 0);
  a.addi(a0, a0, -1).b(1, a0, zero, 'loop').jal(zero, 'end');
  while (a.pc < CODE + 0x1000) a.cNop();
  a.label('f').alu(0, 0, a1, a1, a0).jalr(zero, ra, 0);
  while (a.pc < CODE + 0x1040) a.cNop();
  a.alu(4, 0, a2, a2, a1).jalr(zero, ra, 0);
  a.label('end');
});

/** Bodies for the synthesis mode: any bytes make valid instructions; these are fixed pseudo-random ones. */
function synthesized(h: Header, n: number, salt: number): Uint8Array {
  const body: number[] = [];
  let x = salt;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    body.push(x >>> 24);
  }
  return Uint8Array.from([...header({ ...h, synthesize: true }), ...body]);
}

/** The seeds. */
export function lockstepSeeds(): Uint8Array[] {
  return [
    alu, memory, csrs, fp, amo, traps, supervisor, selfModifying, timer, straddle, calls,
    synthesized({ priv: 2, fp: true, threshold: 0, budget: 4, seed: 37 }, 256, 1),
    synthesized({ priv: 1, paging: true, fp: true, threshold: 1, budget: 3, seed: 41 }, 256, 2),
    synthesized({ priv: 0, paging: true, delegate: true, fp: true, threshold: 0, budget: 5, seed: 43 }, 256, 3),
  ];
}
