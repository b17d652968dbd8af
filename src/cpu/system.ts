/**
 * Instructions that change privileged state: CSR access (Zicsr), ECALL, EBREAK, MRET, SRET, WFI,
 * SFENCE.VMA, FENCE.I. They run with the hart's state fully written back (pc and instret exact),
 * so every engine can call them; each returns a status (status.ts). CSR accesses end the
 * engine's slice only when they must: an interrupt became deliverable, or the whole address
 * space changed (a satp, MXR or PMP write flushed the TLB); SFENCE.VMA never does. Everything
 * else runs on within the slice, so a kernel's frequent CSR traffic (SUM toggles, interrupt
 * masking, reading time) costs no trip through the machine loop. Each of these decisions
 * depends on architectural state only, so every engine ends its slices at the same instructions.
 * The trap-and-emulate hooks of a monitor live here: TVM, TW and TSR (Privileged 3.1.6.5).
 */
import { csrAccessAllowed, csrOut, csrRead, csrWrite } from './csr.ts';
import { CSR, MIP_SEIP, MSTATUS_TSR, MSTATUS_TVM, MSTATUS_TW } from './csr-numbers.ts';
import { PRIV_M, PRIV_S, PRIV_U, S, type Hart } from './hart.ts';
import { St } from './status.ts';
import { Cause } from './trap.ts';

/** Raises an illegal-instruction exception whose mtval/stval is the instruction's bits (3.1.16). */
export function illegal(h: Hart, raw: number): St.Trap {
  h.trap(Cause.IllegalInsn, false, raw, 0);
  return St.Trap;
}

export const enum CsrOp {
  Rw = 1,
  Rs = 2,
  Rc = 3,
}

/**
 * CSRRW/CSRRS/CSRRC and their immediate forms. `src` is rs1's register number, or the zimm
 * value when `imm` is set. Unprivileged 7.1: CSRRW with rd = x0 does not read; CSRRS/CSRRC with
 * rs1 = x0 (or zimm = 0) do not write.
 */
export function execCsr(h: Hart, op: CsrOp, rd: number, src: number, imm: boolean, csr: number, raw: number): St {
  const writes = op === CsrOp.Rw || src !== 0;
  const reads = op !== CsrOp.Rw || rd !== 0;
  if (!csrAccessAllowed(h, csr, writes)) return illegal(h, raw);
  const gen = h.s[S.tlbGen]!;
  let oldLo = 0;
  let oldHi = 0;
  if (reads) {
    if (!csrRead(h, csr)) return illegal(h, raw);
    oldLo = csrOut[0]!;
    oldHi = csrOut[1]!;
  }
  if (writes) {
    const vLo = imm ? src : h.x[2 * src]!;
    const vHi = imm ? 0 : h.x[2 * src + 1]!;
    let nLo = vLo;
    let nHi = vHi;
    // CSRRS/CSRRC on mip modify the software-writable SEIP bit, not the OR with the external
    // interrupt controller's signal that a read returns (Privileged 3.1.9).
    const rmwLo = csr === CSR.mip ? (oldLo & ~MIP_SEIP) | (h.s[S.mip]! & MIP_SEIP) : oldLo;
    if (op === CsrOp.Rs) {
      nLo = rmwLo | vLo;
      nHi = oldHi | vHi;
    } else if (op === CsrOp.Rc) {
      nLo = rmwLo & ~vLo;
      nHi = oldHi & ~vHi;
    }
    if (!csrWrite(h, csr, nLo, nHi)) return illegal(h, raw);
  }
  if (rd !== 0) {
    h.x[2 * rd] = oldLo;
    h.x[2 * rd + 1] = oldHi;
  }
  if (!writes) return St.Next;
  if (h.s[S.tlbGen] !== gen) return St.Exit;
  return INTERRUPT_CSRS.has(csr) && h.pendingInterrupt() >= 0 ? St.Exit : St.Next;
}

/** CSRs whose writes can make an interrupt deliverable (enables, pending bits, delegation, the Sstc timer). */
const INTERRUPT_CSRS = new Set<number>([
  CSR.sstatus, CSR.sie, CSR.sip, CSR.stimecmp, CSR.mstatus, CSR.mie, CSR.mip, CSR.mideleg, CSR.menvcfg,
]);

export function execEcall(h: Hart): St {
  const p = h.priv;
  h.trap(p === PRIV_U ? Cause.EcallU : p === PRIV_S ? Cause.EcallS : Cause.EcallM, false, 0, 0);
  // The monitor may have handled the call itself (built-in SBI): then the pc already moved on.
  return St.Trap;
}

/** EBREAK: mtval may be zero or the pc (Privileged 3.1.16); zero, as QEMU writes it. */
export function execEbreak(h: Hart): St {
  h.trap(Cause.Breakpoint, false, 0, 0);
  return St.Trap;
}

export function execMret(h: Hart, raw: number): St {
  if (h.priv < PRIV_M) return illegal(h, raw);
  h.mret();
  return St.ExitJump;
}

export function execSret(h: Hart, raw: number): St {
  const p = h.priv;
  if (p === PRIV_U || (p === PRIV_S && h.s[S.mstatus]! & MSTATUS_TSR)) return illegal(h, raw);
  h.sret();
  return St.ExitJump;
}

/** WFI (3.3.3): illegal in U-mode, and in S-mode when TW is set; otherwise the hart waits. */
export function execWfi(h: Hart, raw: number): St {
  const p = h.priv;
  if (p === PRIV_U || (p === PRIV_S && h.s[S.mstatus]! & MSTATUS_TW)) return illegal(h, raw);
  h.s[S.wfi] = 1;
  return St.Exit;
}

/**
 * SFENCE.VMA (10.2.1): illegal in U-mode, and in S-mode when TVM is set. It never ends the slice:
 * whether an address-specific flush moves the hart's tlbGen depends on what the translator has
 * chained to, which the interpreter does not have, so ending the slice on it made the engines
 * stop at different instructions. Engines see St.Refetch instead and look the pc up again.
 */
export function execSfenceVma(h: Hart, rs1: number, raw: number): St {
  const p = h.priv;
  if (p === PRIV_U || (p === PRIV_S && h.s[S.mstatus]! & MSTATUS_TVM)) return illegal(h, raw);
  if (rs1 === 0) h.flushTlb();
  else h.flushTlbPage(h.x[2 * rs1]!, h.x[2 * rs1 + 1]!);
  return St.Refetch;
}

/**
 * FENCE.I (Unprivileged 5.1). One thread: nothing to do (decode caches check the bits fetched,
 * and a store into translated code has dropped it everywhere). Harts in threads: another
 * hart's store into code this hart translated is a request in this hart's ring, served here
 * (the hook says whether it dropped anything); code may then be gone under the engine, which
 * looks its pc up again (St.Refetch, with the TLB generation moved for the translator).
 */
export function execFenceI(h: Hart): St {
  if (!h.hooks.fenceI?.()) return St.Next;
  h.codeGone();
  return St.Refetch;
}
