/** SBI extension IDs, function names and error codes (RISC-V SBI specification v2.0, ch. 3-12). */

export const EID = {
  BASE: 0x10,
  TIME: 0x54494d45,
  IPI: 0x735049,
  RFENCE: 0x52464e43,
  HSM: 0x48534d,
  SRST: 0x53525354,
  PMU: 0x504d55,
  DBCN: 0x4442434e,
  SUSP: 0x53555350,
} as const;

export const ERR = {
  SUCCESS: 0,
  FAILED: -1,
  NOT_SUPPORTED: -2,
  INVALID_PARAM: -3,
  DENIED: -4,
  INVALID_ADDRESS: -5,
  ALREADY_AVAILABLE: -6,
} as const;

/** sbi_get_spec_version: 2.0 (major in bits 30:24). */
export const SPEC_VERSION = 2 << 24;
/** sbi_get_impl_id: not a registered implementation; the ASCII of "vrts". */
export const IMPL_ID = 0x76727473;
export const IMPL_VERSION = 0x00_01_00;

const EXT_NAMES: Record<number, string> = {
  [EID.BASE]: 'base', [EID.TIME]: 'time', [EID.IPI]: 'ipi', [EID.RFENCE]: 'rfence', [EID.HSM]: 'hsm',
  [EID.SRST]: 'srst', [EID.PMU]: 'pmu', [EID.DBCN]: 'dbcn', [EID.SUSP]: 'susp',
};

const LEGACY = ['set_timer', 'console_putchar', 'console_getchar', 'clear_ipi', 'send_ipi', 'remote_fence_i',
  'remote_sfence_vma', 'remote_sfence_vma_asid', 'shutdown'];

const FN_NAMES: Record<number, string[]> = {
  [EID.BASE]: ['get_spec_version', 'get_impl_id', 'get_impl_version', 'probe_extension', 'get_mvendorid', 'get_marchid', 'get_mimpid'],
  [EID.TIME]: ['set_timer'],
  [EID.IPI]: ['send_ipi'],
  [EID.RFENCE]: ['remote_fence_i', 'remote_sfence_vma', 'remote_sfence_vma_asid', 'remote_hfence_gvma_vmid',
    'remote_hfence_gvma', 'remote_hfence_vvma_asid', 'remote_hfence_vvma'],
  [EID.HSM]: ['hart_start', 'hart_stop', 'hart_get_status', 'hart_suspend'],
  [EID.SRST]: ['system_reset'],
  [EID.DBCN]: ['console_write', 'console_read', 'console_write_byte'],
};

export function extensionName(eid: number): string {
  if (eid <= 8) return 'legacy';
  return EXT_NAMES[eid] ?? `0x${eid.toString(16)}`;
}

/** The function's name, or undefined for one the extension does not define. */
export function functionName(eid: number, fid: number): string | undefined {
  if (eid <= 8) return LEGACY[eid]!;
  return FN_NAMES[eid]?.[fid];
}
