/**
 * Exception causes (Privileged spec table 3.6). A guest exception is data: the cause and the
 * value for mtval/stval, handed to Hart.trap(); it is never a host exception.
 */
export const enum Cause {
  InsnMisaligned = 0,
  InsnAccessFault = 1,
  IllegalInsn = 2,
  Breakpoint = 3,
  LoadMisaligned = 4,
  LoadAccessFault = 5,
  StoreMisaligned = 6,
  StoreAccessFault = 7,
  EcallU = 8,
  EcallS = 9,
  EcallM = 11,
  InsnPageFault = 12,
  LoadPageFault = 13,
  StorePageFault = 15,
}

/** Memory access types, as the MMU and the fault causes distinguish them. */
export const enum Access {
  Load = 0,
  Store = 1,
  Fetch = 2,
}

/** Page-fault cause for an access type. */
export function pageFaultCause(a: Access): Cause {
  return a === Access.Fetch ? Cause.InsnPageFault : a === Access.Load ? Cause.LoadPageFault : Cause.StorePageFault;
}

/** Access-fault cause for an access type. */
export function accessFaultCause(a: Access): Cause {
  return a === Access.Fetch ? Cause.InsnAccessFault : a === Access.Load ? Cause.LoadAccessFault : Cause.StoreAccessFault;
}

const NAMES: Record<number, string> = {
  0: 'instruction address misaligned', 1: 'instruction access fault', 2: 'illegal instruction',
  3: 'breakpoint', 4: 'load address misaligned', 5: 'load access fault', 6: 'store address misaligned',
  7: 'store access fault', 8: 'ecall from U-mode', 9: 'ecall from S-mode', 11: 'ecall from M-mode',
  12: 'instruction page fault', 13: 'load page fault', 15: 'store page fault',
};
const IRQ_NAMES: Record<number, string> = {
  1: 'supervisor software', 3: 'machine software', 5: 'supervisor timer', 7: 'machine timer',
  9: 'supervisor external', 11: 'machine external',
};

/** Human-readable name of an exception cause, or of an interrupt when `interrupt` is set. */
export function causeName(cause: number, interrupt = false): string {
  return (interrupt ? IRQ_NAMES[cause] : NAMES[cause]) ?? `cause ${cause}`;
}
