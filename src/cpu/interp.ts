/**
 * The reference interpreter: executes the instruction table's rows one at a time against the
 * hart state in the shared memory. It is the semantic oracle later engines are tested against.
 * This module holds the run loop, the decode cache and the system instructions; the handlers of
 * the other rows are in exec-int.ts (integer, M), exec-mem.ts (loads, stores, atomics) and
 * exec-fp.ts (F, D), and handler.ts says what a handler is.
 *
 * Speed comes from three choices, each measured (bench/): 64-bit registers as pairs of 32-bit
 * halves (2-3x faster than BigInt in V8), a decode cache laid out by RAM page whose entries
 * are checked against the instruction bits fetched (so self-modifying code needs no
 * invalidation), and a software TLB probed inline by loads, stores and fetches. Everything
 * else (misses, devices, faults, CSRs) leaves the fast path.
 */
import { decode } from '../isa/decode.ts';
import { INSNS } from '../isa/table.ts';
import { createFpHandlers } from './exec-fp.ts';
import { bindIntHandlers, INT_HANDLERS } from './exec-int.ts';
import { bindMemHandlers, contextFor, MEM_HANDLERS, setDataMmu } from './exec-mem.ts';
import { packOperands, type Engine, type Handler } from './handler.ts';
import { clearDecoded, decodedPages, decodedSlot, S, type DecodedPages, type Hart } from './hart.ts';
import { RAM_HOST, TLB_ENTRIES, TLB_INVALID, TLB_OFF, TLB_WORDS, TLBW_ADDEND, TLBW_EXEC } from './layout.ts';
import { fetchFill, fetchHigh, memFlags } from './memory.ts';
import { St } from './status.ts';
import {
  CsrOp, execCsr, execEbreak, execEcall, execFenceI, execMret, execSfenceVma, execSret, execWfi, illegal,
} from './system.ts';

export type { Engine } from './handler.ts';

const P32 = 0x1_0000_0000;

// ---- The interpreter's state: the hart it is running, bound at the start of each run() ----
// Handlers are module-level functions over this state rather than closures per hart, so every
// machine in a process shares one set of functions and V8 keeps their call sites monomorphic
// (closures per interpreter made a second machine in the same process run at half speed).

let h: Hart = null as unknown as Hart;
let T: Int32Array = new Int32Array(0);
let M16: Uint16Array = new Uint16Array(0);
let PC: Int32Array = new Int32Array(2);
let SS: Int32Array = new Int32Array(0);
let PD: DecodedPages = decodedPages(0);
const MINSTRET = S.minstret;

/** The fetch MMU index and its TLB base (in 32-bit words) for the current privilege. */
let fMmu = 0;
let fBase = 0;
/** Instructions retired in this run() call, and how many of them minstret already counts. */
let icount = 0;
let synced = 0;

function bind(hart: Hart): void {
  if (h === hart) return;
  h = hart;
  bindIntHandlers(hart.x, hart.pc);
  bindMemHandlers(hart, sync);
  fp = fpFor(hart);
  T = hart.tlb;
  M16 = hart.m16;
  PC = hart.pc;
  SS = hart.s;
  PD = hart.decoded;
}

/** Reads the data and fetch MMU indices again (at each run, and after a CSR write: SUM, MPRV, privilege). */
function refresh(): void {
  const dMmu = h.dataMmu();
  const dBase = dMmu * TLB_ENTRIES * TLB_WORDS;
  setDataMmu(dMmu, dBase);
  SS[S.dtlb] = TLB_OFF + dBase * 4;
  fMmu = h.fetchMmu();
  fBase = fMmu * TLB_ENTRIES * TLB_WORDS;
}

function sync(): void {
  const n = icount - synced;
  synced = icount;
  if (n === 0) return;
  const lo = SS[MINSTRET]! >>> 0;
  const sum = lo + n;
  SS[MINSTRET] = sum | 0;
  if (sum >= P32) SS[MINSTRET + 1] = (SS[MINSTRET + 1]! + Math.floor(sum / P32)) | 0;
}

// ---- the handler table, by mnemonic ----

/** System instructions run on synced state; their fields are unscaled: rd, rs1 (or zimm), rs2. */
const sys = (f: (rd: number, rs1: number, rs2: number, imm: number, raw: number) => St): Handler =>
  (a, imm, raw) => {
    sync();
    return f(a & 0xff, (a >>> 8) & 0xff, (a >>> 16) & 0xff, imm, raw);
  };

/** A CSR instruction. One that lets the slice go on may have changed the data MMU (SUM, MPRV). */
const csrOp = (op: CsrOp, imm: boolean): Handler =>
  sys((rd, src, _rs2, csr, raw) => {
    const st = execCsr(h, op, rd, src, imm, csr, raw);
    if (st === St.Next) refresh();
    return st;
  });

const H: Record<string, Handler> = {
  ...INT_HANDLERS,
  ...MEM_HANDLERS,
  // FENCE.I: decode cache entries are checked against the bits fetched, and a store into
  // translated code drops the translation; harts in threads serve other harts' drops here.
  'fence.i': sys(() => execFenceI(h)),
  ecall: sys(() => execEcall(h)),
  ebreak: sys(() => execEbreak(h)),
  mret: sys((_rd, _rs1, _rs2, _imm, raw) => execMret(h, raw)),
  sret: sys((_rd, _rs1, _rs2, _imm, raw) => execSret(h, raw)),
  wfi: sys((_rd, _rs1, _rs2, _imm, raw) => execWfi(h, raw)),
  'sfence.vma': sys((_rd, rs1, _rs2, _imm, raw) => execSfenceVma(h, rs1, raw)),
  csrrw: csrOp(CsrOp.Rw, false),
  csrrs: csrOp(CsrOp.Rs, false),
  csrrc: csrOp(CsrOp.Rc, false),
  csrrwi: csrOp(CsrOp.Rw, true),
  csrrsi: csrOp(CsrOp.Rs, true),
  csrrci: csrOp(CsrOp.Rc, true),
};
// F and D: the FPU's handlers hold their hart's registers, so each hart gets its own set (built
// on first use); the shared table dispatches through the set of the hart being run.
const FP_IDS = INSNS.filter((d) => d.ext === 'F' || d.ext === 'D');
const fpSets = new WeakMap<Hart, Handler[]>();
let fp: Handler[] = [];
function fpFor(hart: Hart): Handler[] {
  let set = fpSets.get(hart);
  if (!set) {
    const made = createFpHandlers(contextFor(hart));
    set = [];
    for (const d of FP_IDS) set[d.id] = made[d.name]!;
    fpSets.set(hart, set);
  }
  return set;
}
for (const d of FP_IDS) H[d.name] = (a, imm, raw) => fp[d.id]!(a, imm, raw);

const illegalH: Handler = (_a, _imm, raw) => {
  sync();
  return illegal(h, raw);
};

/** Handlers indexed by table id; a row without a handler is an error at start-up. */
const byId: Handler[] = INSNS.map((d) => {
  const f = H[d.name];
  if (!f) throw new Error(`interpreter: no handler for ${d.name}`);
  return f;
});

// ---- decode cache (see DecodedPages) ----

/** Handlers by the index a decode cache entry holds: 0 is an illegal instruction, k + 1 table id k. */
const byIndex: Handler[] = [illegalH, ...byId];

/** The decode cache page of a RAM page, made on first use. */
function decodedPage(ramPage: number): Int32Array {
  return PD.pages[ramPage] ?? decodedSlot(PD, ramPage);
}

/** Fills the entry at word i of decode cache page d with the instruction `raw`. */
function decodeInto(d: Int32Array, i: number, raw: number): void {
  d[i] = raw;
  const x = decode(raw);
  if (!x) {
    d[i + 1] = 0;
    d[i + 2] = 0;
    d[i + 3] = 0;
    return;
  }
  d[i + 1] = x.def.id + 1;
  const [a, imm] = packOperands(x);
  d[i + 2] = a;
  d[i + 3] = imm;
}

/**
 * True when the last run() stopped for a trap, a system instruction or a device access (the
 * caller must leave its slice there), false when it used up its budget or reached a page change.
 * Read it through interpreterHelper.stoppedAtExit(): an exported `let` is not reliably live
 * once transpiled.
 */
let lastExit = false;

const NO_PAGE = new Int32Array(0);

function run(budget: number, stopAtPageChange = false, seen: Uint8Array | null = null): number {
  refresh();
  icount = 0;
  synced = 0;
  lastExit = false;
  let fTagLo = TLB_INVALID;
  let fTagHi = 0;
  let fAdd = 0;
  let D: Int32Array = NO_PAGE;
  const pageLo = PC[0]! & ~0xfff;
  const pageHi = PC[1]!;
  while (icount < budget) {
    const pcLo = PC[0]!;
    const pcHi = PC[1]!;
    if ((pcLo & ~0xfff) !== fTagLo || pcHi !== fTagHi) {
      if (stopAtPageChange && ((pcLo & ~0xfff) !== pageLo || pcHi !== pageHi)) break;
      const e = fBase + ((pcLo >>> 12) & (TLB_ENTRIES - 1)) * TLB_WORDS;
      if (T[e + TLBW_EXEC] === (pcLo & ~0xfff) && T[e + TLBW_EXEC + 1] === pcHi) {
        fTagLo = pcLo & ~0xfff;
        fTagHi = pcHi;
        fAdd = T[e + TLBW_ADDEND]!;
        D = decodedPage(((((pcLo & ~0xfff) + fAdd) >>> 0) - RAM_HOST) >>> 12);
      } else {
        sync();
        if (!fetchFill(h, fMmu, pcLo, pcHi)) {
          lastExit = true;
          break;
        }
        continue;
      }
    }
    const off = (pcLo + fAdd) >>> 1;
    let raw = M16[off]!;
    if ((raw & 3) === 3) {
      if ((pcLo & 0xfff) === 0xffe) {
        sync();
        const hi = fetchHigh(h, fMmu, pcLo, pcHi);
        if (hi < 0) {
          lastExit = true;
          break;
        }
        raw |= hi << 16;
      } else {
        raw |= M16[off + 1]! << 16;
      }
    }
    if (seen !== null) seen[(pcLo & 0xfff) >>> 1] = 1;
    // An empty entry (index 0) is decoded again each time: only an illegal instruction keeps it.
    const i = (pcLo & 0xffe) << 1;
    if (D[i] !== raw || D[i + 1] === 0) decodeInto(D, i, raw);
    const st = byIndex[D[i + 1]!]!(D[i + 2]!, D[i + 3]!, raw);
    if (st === St.Next) {
      const n = (pcLo + ((raw & 3) === 3 ? 4 : 2)) | 0;
      PC[0] = n;
      if ((n >>> 0) < (pcLo >>> 0)) PC[1] = (pcHi + 1) | 0;
      icount++;
      continue;
    }
    if (st === St.Jump) {
      icount++;
      continue;
    }
    if (st === St.Refetch) {
      // SFENCE.VMA: the cached fetch translation may be gone.
      const n = (pcLo + ((raw & 3) === 3 ? 4 : 2)) | 0;
      PC[0] = n;
      if ((n >>> 0) < (pcLo >>> 0)) PC[1] = (pcHi + 1) | 0;
      icount++;
      fTagLo = TLB_INVALID;
      continue;
    }
    lastExit = true;
    if (st === St.Trap) break;
    if (st === St.Exit) {
      const n = (pcLo + ((raw & 3) === 3 ? 4 : 2)) | 0;
      PC[0] = n;
      if ((n >>> 0) < (pcLo >>> 0)) PC[1] = (pcHi + 1) | 0;
    }
    icount++;
    break;
  }
  sync();
  return icount;
}

/** Creates the reference interpreter for one hart. */
export function createInterpreter(hart: Hart): Engine {
  return {
    run(budget: number): number {
      bind(hart);
      return run(budget);
    },
    reset(): void {
      clearDecoded(hart.decoded);
    },
  };
}

/**
 * The interpreter as another engine's helper (the translator's cold code and slow paths). All
 * calls assume the hart's state in memory is exact (pc, minstret).
 */
export const interpreterHelper = {
  /** Binds the interpreter to `hart` and refreshes its view of the MMU state. */
  prepare(hart: Hart): void {
    bind(hart);
    refresh();
    icount = synced = 0;
  },
  /**
   * Runs up to `budget` instructions, stopping early at a page change when asked; then, when
   * `seen` is given, marks in it each instruction run (by halfword offset in the page).
   */
  run(budget: number, stopAtPageChange: boolean, seen: Uint8Array | null = null): number {
    return run(budget, stopAtPageChange, stopAtPageChange ? seen : null);
  },
  /** Whether the last run stopped for a trap, a system instruction or a device access. */
  stoppedAtExit(): boolean {
    return lastExit;
  },
  /**
   * Executes one instruction's handler (by table id) with the pc already pointing at it and
   * without moving the pc afterwards (the caller does that). memFlags tell what it touched.
   */
  exec(id: number, a: number, imm: number, raw: number): St {
    icount = synced = 0;
    memFlags.codeWrite = false;
    return byId[id]!(a, imm, raw);
  },
};
