/**
 * Random instruction streams, run by the translator and by the interpreter in lockstep
 * (test/support/lockstep.ts): registers, pc, CSRs and RAM must agree at every stop, or run()
 * throws the divergence as a plain Error (a crash for the harness).
 *
 * An input is an 8-byte header and the stream. The header chooses the privilege the stream runs
 * in (U, S or M), Sv39 paging, the FP state and rounding mode, exception delegation to S, a timer
 * interrupt, translation thresholds and tail calls, the budget of each lockstep step, the
 * initial registers, where the stream starts and whether its bytes are instructions or choose
 * valid ones (see Config, synthesize). The stream sits in two code pages
 * and is run again and again (jumps back to its start precede and follow it), so hot code is
 * translated. Trap handlers (in M-mode, and in S-mode for delegated exceptions) skip the
 * faulting instruction; a fetch fault sends the stream back to its start with the original
 * address space. The run ends after a number of instructions or lockstep steps, whichever comes
 * first (a stream may trap forever without retiring anything).
 *
 * The machines are made once and reset for each input (the engines' reset() is part of what is
 * tested): one interpreter, and one translator for each threshold and tail-call choice.
 */
import { csrWrite } from '../../src/cpu/csr.ts';
import { CSR, MIP_MTIP, MSTATUS_FS, MSTATUS_MIE, SATP_SV39 } from '../../src/cpu/csr-numbers.ts';
import { PRIV_M, PRIV_S, PRIV_U, type Hart } from '../../src/cpu/hart.ts';
import { Machine } from '../../src/machine/machine.ts';
import { lockstep } from '../../test/support/lockstep.ts';
import type { FuzzTarget } from '../harness.ts';
import { Asm, CSRS, jalWord, R, synthesize } from './lockstep-asm.ts';
import { lockstepSeeds } from './lockstep-seeds.ts';

/** Guest memory layout (physical = virtual: paging maps RAM one to one). */
export const RAM_BASE = 0x8000_0000;
export const RAM_SIZE = 256 << 10;
/** The trap handlers' page (never user-accessible). */
const RUNTIME = RAM_BASE;
const M_HANDLER = RUNTIME + 0x100;
const S_HANDLER = RUNTIME + 0x400;
/** Two code pages; the stream starts in the first, at an offset the header chooses. */
export const CODE = RAM_BASE + 0x1000;
export const CODE_BYTES = 0x2000;
/** Sv39 tables: the root, one level-1 table, one level-0 table covering the first 2 MiB of RAM. */
const PT_ROOT = RAM_BASE + 0x3000;
const PT_L1 = RAM_BASE + 0x4000;
const PT_L0 = RAM_BASE + 0x5000;
/** Where the initial registers point: 16 KiB of data for loads, stores and AMOs. */
export const DATA = RAM_BASE + 0x8000;
export const DATA_BYTES = 0x4000;
/**
 * The handlers' save areas (M at SAVE, S at SAVE + 0x40: two registers, then the satp to
 * restore and the stream's start). Bit 17 of SAVE is set: the M handler clears mstatus.MPRV with
 * `csrc mstatus, t0` while t0 holds SAVE, before its own stores (bit 31, also set, is a WPRI
 * field that ignores writes).
 */
const SAVE = RAM_BASE + 0x2_0000;
/** An input's header: its first bytes (see config). */
export const HEADER_BYTES = 8;

/** What an input's header selects. */
interface Config {
  priv: number;
  paging: boolean;
  fp: boolean;
  delegate: boolean;
  clearAD: boolean;
  timer: boolean;
  tailCalls: boolean;
  frm: number;
  threshold: number;
  budget: number;
  seed: number;
  timerTicks: number;
  /** mstatus bits for S-mode behaviour: SUM, MXR, TVM, TW, TSR. */
  mstatusExtra: number;
  maxInsns: number;
  /** Where the stream starts (near the end of the first page, it crosses into the second). */
  start: number;
  /** The stream's bytes choose valid instructions rather than being them (see synthesize). */
  synthesize: boolean;
}

const THRESHOLDS = [4, 50, 400, 50];
const BUDGETS = [1, 3, 17, 64, 97, 200, 500, 1000];

function config(h: Uint8Array): Config {
  const b = (i: number): number => h[i] ?? 0;
  return {
    priv: [PRIV_U, PRIV_S, PRIV_M, PRIV_M][b(0) & 3]!,
    paging: (b(0) & 4) !== 0,
    fp: (b(0) & 8) !== 0,
    delegate: (b(0) & 0x10) !== 0,
    clearAD: (b(0) & 0x20) !== 0,
    timer: (b(0) & 0x40) !== 0,
    tailCalls: (b(0) & 0x80) === 0,
    frm: b(1) & 7,
    threshold: THRESHOLDS[(b(1) >> 3) & 3]!,
    budget: BUDGETS[b(1) >> 5]!,
    seed: b(2) | (b(3) << 8),
    timerTicks: 20 + b(4) * 16,
    // SUM 18, MXR 19, TVM 20, TW 21, TSR 22 (Privileged 3.1.6).
    mstatusExtra: (b(5) & 0x1f) << 18,
    synthesize: (b(5) & 0x20) !== 0,
    maxInsns: 4000 + b(6) * 64,
    start: CODE + b(7) * 16,
  };
}

/**
 * A trap handler: skips the trapping instruction (its length read at xepc), or after a fetch
 * fault, or an xepc outside RAM, restores satp and restarts the stream; an interrupt disables
 * all interrupts at this level. Only t0-t2 are used, and restored.
 */
function handler(at: number, o: { scratch: number; epc: number; cause: number; ie: number; ret: number; m: boolean }): Uint8Array {
  const a = new Asm(at);
  const { t0, t1, t2, zero } = R;
  a.csr(1, t0, o.scratch, t0); // t0 = the save area
  if (o.m) a.csr(3, zero, CSRS.mstatus, t0); // clear MPRV: the handler's accesses are physical
  a.store(3, t1, t0, 0).store(3, t2, t0, 8);
  a.csr(2, t1, o.cause, zero);
  a.b(4, t1, zero, 'irq'); // blt: an interrupt
  a.li(t2, 1).b(7, t2, t1, 'fetch'); // bgeu 1, cause: misaligned or faulting fetch
  a.li(t2, 12).b(0, t1, t2, 'fetch'); // fetch page fault
  a.csr(2, t1, o.epc, zero);
  a.la(t2, RAM_BASE).b(6, t1, t2, 'fetch'); // bltu: outside RAM (the stream changed the mapping)
  a.la(t2, RAM_BASE + RAM_SIZE).b(7, t1, t2, 'fetch');
  a.load(5, t2, t1, 0).i(0x13, 7, t2, t2, 3); // lhu, andi: the instruction's length bits
  a.addi(t1, t1, 2).addi(t2, t2, -3).b(1, t2, zero, 'short').addi(t1, t1, 2);
  a.label('short').csr(1, zero, o.epc, t1).jal(zero, 'out');
  a.label('fetch').load(3, t1, t0, 16).csr(1, zero, CSRS.satp, t1).sfenceVma();
  a.load(3, t1, t0, 24).csr(1, zero, o.epc, t1).jal(zero, 'out');
  a.label('irq').csr(1, zero, o.ie, zero);
  a.label('out').load(3, t1, t0, 0).load(3, t2, t0, 8);
  a.csr(1, t0, o.scratch, t0);
  a.sys(o.ret);
  return a.bytes();
}

const M_CODE = handler(M_HANDLER, { scratch: CSRS.mscratch, epc: CSRS.mepc, cause: CSRS.mcause, ie: CSRS.mie, ret: 0x302, m: true });
const S_CODE = handler(S_HANDLER, { scratch: CSRS.sscratch, epc: CSRS.sepc, cause: CSRS.scause, ie: CSRS.sie, ret: 0x102, m: false });

/** The code pages: jumps to the stream's start, the stream, then jumps back to its start. */
function codePages(stream: Uint8Array, start: number): Uint8Array {
  const code = new Uint8Array(CODE_BYTES);
  const v = new DataView(code.buffer);
  const jumps = (from: number, to: number): void => {
    for (let at = from; at + 4 <= to; at += 4) v.setUint32(at, jalWord(R.zero, start - (CODE + at)), true);
  };
  const first = start - CODE;
  jumps(0, first);
  const n = Math.min(stream.length, CODE_BYTES - 8 - first) & ~1;
  code.set(stream.subarray(0, n), first);
  let at = first + n;
  if (at & 2) {
    code[at] = 0x01; // c.nop
    at += 2;
  }
  jumps(at, CODE_BYTES);
  return code;
}

/** Sv39 tables mapping RAM one to one (and the devices' gigapage for loads and stores). */
function pageTables(c: Config): Uint8Array {
  const t = new Uint8Array(0x3000);
  const v = new DataView(t.buffer);
  const pte = (table: number, i: number, pa: number, flags: number): void =>
    v.setBigUint64(table * 0x1000 + i * 8, (BigInt(Math.floor(pa / 4096)) << 10n) | BigInt(flags), true);
  // V 1, R 2, W 4, X 8, U 16, A 64, D 128 (Privileged 12.3.1).
  const user = c.priv === PRIV_U ? 16 : 0;
  const ad = c.clearAD ? 0 : 0xc0;
  pte(0, 0, 0, 0x7 | user | ad);
  pte(0, 2, PT_L1, 0x1);
  pte(1, 0, PT_L0, 0x1);
  for (let p = 0; p < RAM_SIZE / 4096; p++) {
    const pa = RAM_BASE + p * 4096;
    const system = pa === RUNTIME || (pa >= PT_ROOT && pa <= PT_L0) || pa === SAVE;
    pte(2, p, pa, 0xf | (system ? 0xc0 : user | ad));
  }
  return t;
}

/** A small generator for the initial registers (xorshift32). */
function generator(seed: number): () => number {
  let s = (seed * 0x9e37 + 0x1234567) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

/** Values as (low, high) halves: zero, one, all ones, sign bits, and FP patterns (NaN-boxed 1.0f, NaNs, 1.0, infinities). */
const INTERESTING: Array<[number, number]> = [
  [0, 0], [1, 0], [-1, -1], [0, 0x8000_0000 | 0], [-1, 0x7fff_ffff], [0x8000_0000 | 0, 0], [0x7fff_ffff, 0], [-1, 0],
  [0x3f80_0000, -1], [0x7fc0_0000, -1], [0, 0x3ff0_0000], [0, 0x7ff8_0000], [1, 0], [0, 0x7ff0_0000 | 0], [0x0080_0000, -1], [0, 0xfff0_0000 | 0],
];

function setRegisters(h: Hart, seed: number): void {
  const r = generator(seed);
  for (let i = 1; i < 32; i++) {
    const v = r();
    let lo: number;
    let hi = 0;
    switch (v & 3) {
      case 0: // an aligned address in the data window
        lo = DATA + ((v >>> 4) & (DATA_BYTES - 8));
        break;
      case 1: // any address in it
        lo = DATA + ((v >>> 4) & (DATA_BYTES - 1));
        break;
      case 2:
        [lo, hi] = INTERESTING[(v >>> 4) & 15]!;
        break;
      default:
        lo = r();
        hi = r();
    }
    h.x[2 * i] = lo | 0;
    h.x[2 * i + 1] = hi | 0;
  }
  for (let i = 0; i < 32; i++) {
    const [lo, hi] = INTERESTING[r() & 15]!;
    h.f[2 * i] = (lo ^ (r() & 0xff)) | 0;
    h.f[2 * i + 1] = hi;
  }
}

/** Puts machine `m` in the state the input describes. */
function prepare(m: Machine, c: Config, code: Uint8Array): void {
  const h = m.harts[0]!;
  m.exit = null;
  for (const e of m.engines) e.reset();
  m.ram.zero(RAM_BASE, RAM_SIZE);
  m.ram.load(M_HANDLER, M_CODE);
  m.ram.load(S_HANDLER, S_CODE);
  m.ram.load(CODE, code);
  if (c.paging) m.ram.load(PT_ROOT, pageTables(c));
  const satp = c.paging ? [(PT_ROOT / 4096) | 0, SATP_SV39 << 28] : [0, 0];
  const saved = new Uint8Array(new Int32Array([satp[0]!, satp[1]!, c.start | 0, 0]).buffer);
  m.ram.load(SAVE + 16, saved);
  m.ram.load(SAVE + 0x40 + 16, saved);
  h.reset(); // M-mode, and a TLB flush
  m.clock.set(0);
  m.clint.reset();
  if (c.timer) {
    m.clint.write(0x4000, 4, c.timerTicks);
    m.clint.write(0x4004, 4, 0);
  }
  const w = (csr: number, lo: number, hi = 0): void => {
    if (!csrWrite(h, csr, lo, hi)) throw new Error(`lockstep fuzz: cannot write CSR 0x${csr.toString(16)}`);
  };
  // PMP entry 0 covers everything (NAPOT, RWX), so S and U may access memory (Privileged
  // 3.7.1); set as slots, as satp, with one TLB flush for all (stateChanged, below).
  h.set('pmpaddr0', -1, 0x3fffff);
  h.set('pmpcfg0', 0x1f, 0);
  h.set('satp', satp[0]!, satp[1]!);
  w(CSR.mtvec, M_HANDLER);
  w(CSR.stvec, S_HANDLER);
  w(CSR.mscratch, SAVE);
  w(CSR.sscratch, SAVE + 0x40);
  w(CSR.medeleg, c.delegate ? 0xb1ff : 0);
  w(CSR.mie, c.timer ? MIP_MTIP : 0);
  w(CSR.mstatus, (c.fp ? 1 << 13 : 0) | (c.priv << 11) | c.mstatusExtra | (c.timer && c.priv === PRIV_M ? MSTATUS_MIE : 0));
  h.set('fcsr', c.fp ? c.frm << 5 : 0, 0);
  if (!c.fp && h.get('mstatus') & MSTATUS_FS) throw new Error('lockstep fuzz: FS should be off');
  setRegisters(h, c.seed);
  h.set('priv', c.priv, 0);
  h.setPcNum(c.start);
  h.stateChanged();
}

let interp: Machine | null = null;
const jits = new Map<string, Machine>();

function machine(engine: 'jit' | 'interp', c: Config): Machine {
  const make = (): Machine =>
    new Machine({ ramSize: RAM_SIZE, deterministic: true, engine, jit: { threshold: c.threshold, tailCalls: c.tailCalls }, console: () => {} });
  if (engine === 'interp') return (interp ??= make());
  const key = `${c.threshold}/${c.tailCalls}`;
  let m = jits.get(key);
  if (!m) jits.set(key, (m = make()));
  return m;
}

/** Runs one input in lockstep; throws the first divergence. `budget` overrides the header's (to narrow one down). */
export function runStream(input: Uint8Array, budget?: number): void {
  const c = config(input.subarray(0, HEADER_BYTES));
  if (budget !== undefined) c.budget = budget;
  const body = input.subarray(HEADER_BYTES);
  const code = codePages(c.synthesize ? synthesize(body) : body, c.start);
  const a = machine('jit', c);
  const b = machine('interp', c);
  prepare(a, c, code);
  prepare(b, c, code);
  lockstep(a, b, c.maxInsns, { budget: c.budget, ramEvery: 1000, maxSteps: 3000 });
}

/** The fuzz target (fuzz/harness.ts). */
export const target: FuzzTarget = {
  name: 'lockstep',
  seeds: lockstepSeeds,
  run: runStream,
  maxLength: 1024,
  iterations: 3000,
  // A run is bounded by construction (instructions and steps); typical inputs take about 10 ms
  // of CPU and the heaviest a few hundred. The limit only has to survive a loaded machine.
  timeLimitMs: 20_000,
};
