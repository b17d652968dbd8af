/**
 * CSR reads and writes with their access rules (Privileged spec 2.1, 2.3 and the per-CSR
 * sections of ch. 3 and 10). Each CSR is WARL as the spec describes; unknown numbers and
 * forbidden accesses are illegal instructions, reported to the caller as `false`.
 */
import {
  CSR, MIP_MSIP, MIP_MTIP, MIP_MEIP, MIP_SEIP, MIP_SSIP, MIP_STIP, MSTATUS_FS, MSTATUS_MPP, MSTATUS_MXR,
  MSTATUS_TVM, MSTATUS_WMASK, S_INTERRUPTS, SATP_BARE, SATP_SV39, SATP_SV48,
  SSTATUS_MASK,
} from './csr-numbers.ts';
import { PRIV_M, PRIV_S, S, type Hart } from './hart.ts';
import { rebuildPmp } from './pmp.ts';

/** Result of a CSR read: low and high halves. */
export const csrOut = new Int32Array(2);

/** Exception bits medeleg can delegate: all but ecall from M-mode and the reserved codes (3.1.8). */
const MEDELEG_MASK = 0xb3ff;
const MIE_MASK = MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP;
/** Bits of mip that M-mode software may write (3.1.9): SSIP, STIP, SEIP. */
const MIP_WMASK = MIP_SSIP | MIP_STIP | MIP_SEIP;

function out(lo: number, hi: number): true {
  csrOut[0] = lo;
  csrOut[1] = hi;
  return true;
}

/** Whether counter `bit` (0 cycle, 1 time, 2 instret, n hpmcounter n) is readable at the current privilege. */
function counterEnabled(h: Hart, bit: number): boolean {
  const p = h.priv;
  if (p === PRIV_M) return true;
  if (!((h.s[S.mcounteren]! >>> bit) & 1)) return false;
  return p === PRIV_S || ((h.s[S.scounteren]! >>> bit) & 1) === 1;
}

function fsOn(h: Hart): boolean {
  return (h.s[S.mstatus]! & MSTATUS_FS) !== 0;
}

/** Time as halves. */
function timeOut(h: Hart): true {
  const t = h.hooks.time();
  return out(t % 0x1_0000_0000 | 0, Math.floor(t / 0x1_0000_0000) | 0);
}

// ---- mcycle and minstret (Privileged 3.1.11, 3.1.13; Unprivileged "Zicsr", CSR instructions) ----
//
// The hart's `minstret` slot counts retired instructions for the engines and the machine's
// clock; the guest never writes it. The CSRs are derived from it: each has a slot holding its
// offset from that count while it counts, or its frozen value while its mcountinhibit bit is
// set. This hart runs one instruction per cycle, so mcycle advances with minstret.
// A CSR instruction runs with the slot exact: it holds the count before the instruction, and
// the instruction, once it returns, retires (the slot moves on by one).

const MCOUNTINHIBIT_CY = 1;
const MCOUNTINHIBIT_IR = 4;
const U64 = (1n << 64n) - 1n;

function slotU64(h: Hart, i: number): bigint {
  return (BigInt(h.s[i + 1]! >>> 0) << 32n) | BigInt(h.s[i]! >>> 0);
}

function setSlotU64(h: Hart, i: number, v: bigint): void {
  h.s[i] = Number(v & 0xffff_ffffn) | 0;
  h.s[i + 1] = Number((v >> 32n) & 0xffff_ffffn) | 0;
}

/** The counter whose state is slot `i` and inhibit bit `bit`, as an instruction reads it (its value before the instruction). */
function counterValue(h: Hart, i: number, bit: number): bigint {
  const v = slotU64(h, i);
  return h.s[S.mcountinhibit]! & bit ? v : (slotU64(h, S.minstret) + v) & U64;
}

/**
 * Sets the counter so that the next instruction reads `v`: a value written to a counter by one
 * instruction is the value read by the following one; the write is done instead of the
 * increment (Unprivileged, Zicsr chapter).
 */
function counterSet(h: Hart, i: number, bit: number, v: bigint): void {
  setSlotU64(h, i, h.s[S.mcountinhibit]! & bit ? v : (v - slotU64(h, S.minstret) - 1n) & U64);
}

function counterOut(h: Hart, i: number, bit: number): true {
  const v = counterValue(h, i, bit);
  return out(Number(v & 0xffff_ffffn) | 0, Number(v >> 32n) | 0);
}

/**
 * A write of mcountinhibit takes effect after the writing instruction has otherwise completed
 * (Privileged 3.1.11): that instruction counts under the old bits. A counter being stopped
 * keeps the value it has once the instruction retired; one being started resumes from the value
 * it was frozen at.
 */
function writeMcountinhibit(h: Hart, v: number): void {
  const old = h.s[S.mcountinhibit]!;
  const retired = slotU64(h, S.minstret);
  for (const [i, bit] of [[S.mcycle, MCOUNTINHIBIT_CY], [S.instretOffset, MCOUNTINHIBIT_IR]] as const) {
    if (!((old ^ v) & bit)) continue;
    const cur = counterValue(h, i, bit);
    if (v & bit) setSlotU64(h, i, (cur + 1n) & U64);
    else setSlotU64(h, i, (cur - retired - 1n) & U64);
  }
  h.s[S.mcountinhibit] = v;
}

/**
 * Reads CSR `n` into csrOut. Returns false when the access is illegal at the current privilege.
 * Privilege and read-only checks of the CSR address itself are done by checkAccess.
 */
export function csrRead(h: Hart, n: number): boolean {
  const s = h.s;
  switch (n) {
    case CSR.fflags:
      return fsOn(h) && out(s[S.fcsr]! & 0x1f, 0);
    case CSR.frm:
      return fsOn(h) && out((s[S.fcsr]! >>> 5) & 7, 0);
    case CSR.fcsr:
      return fsOn(h) && out(s[S.fcsr]! & 0xff, 0);
    case CSR.cycle:
      return counterEnabled(h, 0) && counterOut(h, S.mcycle, MCOUNTINHIBIT_CY);
    case CSR.time:
      return counterEnabled(h, 1) && timeOut(h);
    case CSR.instret:
      return counterEnabled(h, 2) && counterOut(h, S.instretOffset, MCOUNTINHIBIT_IR);
    case CSR.sstatus: {
      const [lo, hi] = h.mstatusRead();
      return out(lo & SSTATUS_MASK, hi & (0x8000_0000 | 3));
    }
    case CSR.sie:
      return out(s[S.mie]! & s[S.mideleg]!, 0);
    case CSR.sip:
      return out(h.pending() & s[S.mideleg]!, 0);
    case CSR.stvec:
      return out(s[S.stvec]!, s[S.stvec + 1]!);
    case CSR.scounteren:
      return out(s[S.scounteren]!, 0);
    case CSR.senvcfg:
      return out(s[S.senvcfg]!, 0);
    case CSR.sscratch:
      return out(s[S.sscratch]!, s[S.sscratch + 1]!);
    case CSR.sepc:
      return out(s[S.sepc]!, s[S.sepc + 1]!);
    case CSR.scause:
      return out(s[S.scause]!, s[S.scause + 1]!);
    case CSR.stval:
      return out(s[S.stval]!, s[S.stval + 1]!);
    case CSR.stimecmp:
      return stimecmpAllowed(h) && out(s[S.stimecmp]!, s[S.stimecmp + 1]!);
    case CSR.satp:
      if (h.priv === PRIV_S && s[S.mstatus]! & MSTATUS_TVM) return false;
      return out(s[S.satp]!, s[S.satp + 1]!);
    case CSR.mvendorid:
    case CSR.marchid:
    case CSR.mimpid:
    case CSR.mconfigptr:
      return out(0, 0);
    case CSR.mhartid:
      return out(s[S.mhartid]!, 0);
    case CSR.mstatus: {
      const [lo, hi] = h.mstatusRead();
      return out(lo, hi);
    }
    case CSR.misa:
      return out(s[S.misa]!, s[S.misa + 1]!);
    case CSR.medeleg:
      return out(s[S.medeleg]!, 0);
    case CSR.mideleg:
      return out(s[S.mideleg]!, 0);
    case CSR.mie:
      return out(s[S.mie]!, 0);
    case CSR.mtvec:
      return out(s[S.mtvec]!, s[S.mtvec + 1]!);
    case CSR.mcounteren:
      return out(s[S.mcounteren]!, 0);
    case CSR.menvcfg:
      return out(s[S.menvcfg]!, s[S.menvcfg + 1]!);
    case CSR.mcountinhibit:
      return out(s[S.mcountinhibit]!, 0);
    case CSR.mscratch:
      return out(s[S.mscratch]!, s[S.mscratch + 1]!);
    case CSR.mepc:
      return out(s[S.mepc]!, s[S.mepc + 1]!);
    case CSR.mcause:
      return out(s[S.mcause]!, s[S.mcause + 1]!);
    case CSR.mtval:
      return out(s[S.mtval]!, s[S.mtval + 1]!);
    case CSR.mip:
      return out(h.pending(), 0);
    case CSR.pmpcfg0:
      return out(s[S.pmpcfg0]!, s[S.pmpcfg0 + 1]!);
    case CSR.pmpcfg2:
      return out(s[S.pmpcfg2]!, s[S.pmpcfg2 + 1]!);
    case CSR.mcycle:
      return counterOut(h, S.mcycle, MCOUNTINHIBIT_CY);
    case CSR.minstret:
      return counterOut(h, S.instretOffset, MCOUNTINHIBIT_IR);
    default:
      if (n >= 0x3b0 && n < 0x3c0) {
        const i = S.pmpaddr0 + 2 * (n - 0x3b0);
        return out(s[i]!, s[i + 1]!);
      }
      // Unimplemented PMP entries 16..63 and pmpcfg4..14 read as zero (WARL, 3.7.1).
      if ((n >= 0x3c0 && n < 0x3f0) || (n >= 0x3a4 && n < 0x3b0 && (n & 1) === 0)) return out(0, 0);
      if (n > 0xc02 && n < 0xc20) return counterEnabled(h, n - 0xc00) && out(0, 0);
      if ((n > 0xb02 && n < 0xb20) || (n > 0x322 && n < 0x340)) return out(0, 0);
      return false;
  }
}

function stimecmpAllowed(h: Hart): boolean {
  if (h.priv === PRIV_M) return true;
  // Sstc 1.1: S-mode access needs menvcfg.STCE and mcounteren.TM.
  return h.s[S.menvcfg + 1]! < 0 && (h.s[S.mcounteren]! & 2) !== 0;
}

/**
 * Writes CSR `n`. Returns false when the write is illegal. A write that changes translation
 * (satp, MXR) flushes the hart's TLB itself.
 */
export function csrWrite(h: Hart, n: number, lo: number, hi: number): boolean {
  const s = h.s;
  switch (n) {
    case CSR.fflags:
      if (!fsOn(h)) return false;
      s[S.fcsr] = (s[S.fcsr]! & ~0x1f) | (lo & 0x1f);
      h.fsDirty();
      return true;
    case CSR.frm:
      if (!fsOn(h)) return false;
      s[S.fcsr] = (s[S.fcsr]! & ~0xe0) | ((lo & 7) << 5);
      h.fsDirty();
      return true;
    case CSR.fcsr:
      if (!fsOn(h)) return false;
      s[S.fcsr] = lo & 0xff;
      h.fsDirty();
      return true;
    case CSR.sstatus:
      return writeMstatus(h, (s[S.mstatus]! & ~SSTATUS_MASK) | (lo & SSTATUS_MASK));
    case CSR.sie: {
      const d = s[S.mideleg]!;
      s[S.mie] = (s[S.mie]! & ~d) | (lo & d);
      return true;
    }
    case CSR.sip: {
      // Only SSIP is writable through sip, and only when delegated (4.1.3).
      const m = s[S.mideleg]! & MIP_SSIP;
      s[S.mip] = (s[S.mip]! & ~m) | (lo & m);
      return true;
    }
    case CSR.stvec:
      return writeTvec(h, 'stvec', lo, hi);
    case CSR.scounteren:
      s[S.scounteren] = lo;
      return true;
    case CSR.senvcfg:
      s[S.senvcfg] = lo & 1;
      return true;
    case CSR.sscratch:
      h.set('sscratch', lo, hi);
      return true;
    case CSR.sepc:
      h.set('sepc', lo & ~1, hi);
      return true;
    case CSR.scause:
      h.set('scause', lo, hi);
      return true;
    case CSR.stval:
      h.set('stval', lo, hi);
      return true;
    case CSR.stimecmp:
      if (!stimecmpAllowed(h)) return false;
      h.set('stimecmp', lo, hi);
      return true;
    case CSR.satp:
      if (h.priv === PRIV_S && s[S.mstatus]! & MSTATUS_TVM) return false;
      return writeSatp(h, lo, hi);
    case CSR.mstatus:
      return writeMstatus(h, lo);
    case CSR.misa:
      return true; // WARL: the extensions cannot be turned off.
    case CSR.medeleg:
      s[S.medeleg] = lo & MEDELEG_MASK;
      return true;
    case CSR.mideleg:
      s[S.mideleg] = lo & S_INTERRUPTS;
      return true;
    case CSR.mie:
      s[S.mie] = lo & MIE_MASK;
      return true;
    case CSR.mtvec:
      return writeTvec(h, 'mtvec', lo, hi);
    case CSR.mcounteren:
      s[S.mcounteren] = lo;
      return true;
    case CSR.menvcfg:
      // FIOM (bit 0) and STCE (bit 63) are implemented; PBMTE/ADUE/CBIE read as zero.
      s[S.menvcfg] = lo & 1;
      s[S.menvcfg + 1] = hi & (0x8000_0000 | 0);
      return true;
    case CSR.mcountinhibit:
      // CY and IR; TM (bit 1) is read-only zero, and so are the bits of the hpmcounters, which are read-only zero.
      writeMcountinhibit(h, lo & (MCOUNTINHIBIT_CY | MCOUNTINHIBIT_IR));
      return true;
    case CSR.mscratch:
      h.set('mscratch', lo, hi);
      return true;
    case CSR.mepc:
      h.set('mepc', lo & ~1, hi);
      return true;
    case CSR.mcause:
      h.set('mcause', lo, hi);
      return true;
    case CSR.mtval:
      h.set('mtval', lo, hi);
      return true;
    case CSR.mip: {
      // With Sstc enabled, STIP is the comparator's output and not writable (Sstc 1.1).
      const m = s[S.menvcfg + 1]! < 0 ? MIP_WMASK & ~MIP_STIP : MIP_WMASK;
      s[S.mip] = (s[S.mip]! & ~m) | (lo & m);
      return true;
    }
    case CSR.pmpcfg0:
    case CSR.pmpcfg2:
      writePmpcfg(h, n === CSR.pmpcfg0 ? S.pmpcfg0 : S.pmpcfg2, lo, hi);
      pmpChanged(h);
      return true;
    case CSR.mcycle:
      counterSet(h, S.mcycle, MCOUNTINHIBIT_CY, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
      return true;
    case CSR.minstret:
      counterSet(h, S.instretOffset, MCOUNTINHIBIT_IR, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
      return true;
    default:
      if (n >= 0x3b0 && n < 0x3c0) {
        const e = n - 0x3b0;
        if (pmpLocked(h, e)) return true;
        const i = S.pmpaddr0 + 2 * e;
        s[i] = lo;
        s[i + 1] = hi & 0x3fffff; // pmpaddr holds bits 55:2 of the address (54 bits).
        pmpChanged(h);
        return true;
      }
      if ((n >= 0x3c0 && n < 0x3f0) || (n >= 0x3a4 && n < 0x3b0 && (n & 1) === 0)) return true;
      if ((n > 0xb02 && n < 0xb20) || (n > 0x322 && n < 0x340)) return true;
      return false;
  }
}

function writeTvec(h: Hart, slot: 'mtvec' | 'stvec', lo: number, hi: number): true {
  // MODE 0 (direct) and 1 (vectored); reserved modes leave the mode direct (WARL).
  const mode = lo & 3;
  h.set(slot, (lo & ~3) | (mode === 1 ? 1 : 0), hi);
  return true;
}

function writeMstatus(h: Hart, v: number): true {
  const s = h.s;
  const old = s[S.mstatus]!;
  let n = (old & ~MSTATUS_WMASK) | (v & MSTATUS_WMASK);
  // MPP is WARL over the implemented modes U, S, M; the reserved value 2 keeps the old mode.
  if ((n & MSTATUS_MPP) === 2 << 11) n = (n & ~MSTATUS_MPP) | (old & MSTATUS_MPP);
  s[S.mstatus] = n;
  // MXR changes which pages are readable: cached read permissions are stale. (SUM and MPRV
  // select a different MMU index instead, so they need no flush.)
  if ((old ^ n) & MSTATUS_MXR) h.flushTlb();
  return true;
}

function writeSatp(h: Hart, lo: number, hi: number): true {
  const mode = hi >>> 28;
  // Writes with an unsupported MODE have no effect at all (Privileged 10.1.11).
  if (mode !== SATP_BARE && mode !== SATP_SV39 && mode !== SATP_SV48) return true;
  h.set('satp', lo, hi);
  h.flushTlb();
  return true;
}

/** PMP changes which accesses are allowed: rebuild the decoded table, drop cached translations. */
function pmpChanged(h: Hart): void {
  rebuildPmp(h);
  h.flushTlb();
}

function pmpLocked(h: Hart, e: number): boolean {
  const slot = e < 8 ? S.pmpcfg0 : S.pmpcfg2;
  const i = e & 7;
  const word = h.s[slot + (i >> 2)]!;
  return ((word >>> ((i & 3) * 8)) & 0x80) !== 0;
}

function writePmpcfg(h: Hart, slot: number, lo: number, hi: number): void {
  const s = h.s;
  const words = [lo, hi];
  for (let w = 0; w < 2; w++) {
    let cur = s[slot + w]!;
    for (let b = 0; b < 4; b++) {
      const sh = b * 8;
      if ((cur >>> sh) & 0x80) continue; // locked entries ignore writes (3.7.1.2)
      let cfg = (words[w]! >>> sh) & 0x9f;
      if ((cfg & 3) === 2) cfg &= ~3; // R=0, W=1 is reserved: keep neither.
      cur = (cur & ~(0xff << sh)) | (cfg << sh);
    }
    s[slot + w] = cur;
  }
}

/** Whether the current privilege may access CSR `n` at all, and write it when `write` (2.1). */
export function csrAccessAllowed(h: Hart, n: number, write: boolean): boolean {
  if (h.priv < ((n >>> 8) & 3)) return false;
  if (write && (n >>> 10) === 3) return false;
  return true;
}

