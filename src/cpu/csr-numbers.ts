/** CSR numbers (Privileged spec ch. 2, table 2.x), with the names GNU objdump prints. */

export const CSR = {
  fflags: 0x001, frm: 0x002, fcsr: 0x003,
  cycle: 0xc00, time: 0xc01, instret: 0xc02,
  sstatus: 0x100, sie: 0x104, stvec: 0x105, scounteren: 0x106, senvcfg: 0x10a,
  sscratch: 0x140, sepc: 0x141, scause: 0x142, stval: 0x143, sip: 0x144,
  stimecmp: 0x14d, satp: 0x180,
  mvendorid: 0xf11, marchid: 0xf12, mimpid: 0xf13, mhartid: 0xf14, mconfigptr: 0xf15,
  mstatus: 0x300, misa: 0x301, medeleg: 0x302, mideleg: 0x303, mie: 0x304, mtvec: 0x305,
  mcounteren: 0x306, menvcfg: 0x30a, mcountinhibit: 0x320,
  mscratch: 0x340, mepc: 0x341, mcause: 0x342, mtval: 0x343, mip: 0x344,
  pmpcfg0: 0x3a0, pmpcfg2: 0x3a2, pmpaddr0: 0x3b0,
  mcycle: 0xb00, minstret: 0xb02,
  tselect: 0x7a0, tdata1: 0x7a1, tdata2: 0x7a2, tdata3: 0x7a3,
  dcsr: 0x7b0, dpc: 0x7b1, dscratch0: 0x7b2, dscratch1: 0x7b3,
} as const;

const names = new Map<number, string>();
for (const [k, v] of Object.entries(CSR)) names.set(v, k);
for (let i = 0; i < 16; i++) names.set(0x3a0 + i, `pmpcfg${i}`);
for (let i = 0; i < 64; i++) names.set(0x3b0 + i, `pmpaddr${i}`);
for (let i = 3; i < 32; i++) {
  names.set(0xc00 + i, `hpmcounter${i}`);
  names.set(0xb00 + i, `mhpmcounter${i}`);
  names.set(0x320 + i, `mhpmevent${i}`);
}
names.set(0x14d, 'stimecmp');

/** The name of a CSR as objdump prints it, or its number in hex when it has none. */
export function csrName(n: number): string {
  return names.get(n) ?? `0x${n.toString(16)}`;
}

// mstatus fields (Privileged spec 3.1.6), as bits of the low/high 32-bit halves.
export const MSTATUS_SIE = 1 << 1;
export const MSTATUS_MIE = 1 << 3;
export const MSTATUS_SPIE = 1 << 5;
export const MSTATUS_MPIE = 1 << 7;
export const MSTATUS_SPP = 1 << 8;
export const MSTATUS_VS = 3 << 9;
export const MSTATUS_MPP = 3 << 11;
export const MSTATUS_FS = 3 << 13;
export const MSTATUS_XS = 3 << 15;
export const MSTATUS_MPRV = 1 << 17;
export const MSTATUS_SUM = 1 << 18;
export const MSTATUS_MXR = 1 << 19;
export const MSTATUS_TVM = 1 << 20;
export const MSTATUS_TW = 1 << 21;
export const MSTATUS_TSR = 1 << 22;
/** High half: UXL = SXL = 2 (XLEN 64), read-only. */
export const MSTATUS_HI_XL = 0xa;
/** High half: SD (bit 63). */
export const MSTATUS_HI_SD = 1 << 31;

/** Bits of mstatus visible through sstatus (low half). */
export const SSTATUS_MASK =
  MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_VS | MSTATUS_FS | MSTATUS_XS | MSTATUS_SUM | MSTATUS_MXR;
/** Bits of mstatus M-mode can write (low half). */
export const MSTATUS_WMASK =
  MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP | MSTATUS_FS |
  MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR;

// Interrupt bits of mip/mie (Privileged spec 3.1.9).
export const IRQ_SSI = 1;
export const IRQ_MSI = 3;
export const IRQ_STI = 5;
export const IRQ_MTI = 7;
export const IRQ_SEI = 9;
export const IRQ_MEI = 11;
export const MIP_SSIP = 1 << IRQ_SSI;
export const MIP_MSIP = 1 << IRQ_MSI;
export const MIP_STIP = 1 << IRQ_STI;
export const MIP_MTIP = 1 << IRQ_MTI;
export const MIP_SEIP = 1 << IRQ_SEI;
export const MIP_MEIP = 1 << IRQ_MEI;
/** Supervisor-level interrupts, the only ones mideleg can delegate. */
export const S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP;
/** Interrupt priority, highest first (Privileged spec 3.1.9). */
export const IRQ_PRIORITY = [IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI] as const;

/** misa extension bits present: A, C, D, F, I, M, S, U. */
export const MISA_EXTENSIONS =
  (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);

/** satp MODE values (high nibble of the high half). */
export const SATP_BARE = 0;
export const SATP_SV39 = 8;
export const SATP_SV48 = 9;
