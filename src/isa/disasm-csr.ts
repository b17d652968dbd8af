/**
 * CSR names as GNU objdump 2.40 prints them. objdump names every CSR it knows, whatever the
 * ISA string says (vector, hypervisor, AIA, debug CSRs too), but which names exist depends on
 * the privileged spec version recorded in the ELF's attributes (1.12 when there is none).
 * Names are those of the RISC-V specifications: Privileged Architecture 1.9.1-1.12 (ch. 2
 * CSR listing), the V, H, AIA, Smstateen, Sstc, Zkr and Debug specifications.
 */

/** A privileged spec version, as objdump's `priv-spec` option and ELF attributes name them. */
export type PrivSpec = '1.9.1' | '1.10' | '1.11' | '1.12';

const VERSIONS: readonly PrivSpec[] = ['1.9.1', '1.10', '1.11', '1.12'];

/** A name valid from version `from` up to but excluding `until` (indices into VERSIONS). */
type Entry = [num: number, name: string, from?: PrivSpec, until?: PrivSpec];

/** `count` numbered CSRs: `prefix` + (start + i) + `suffix` at `base` + i. */
function series(base: number, prefix: string, start: number, count: number, suffix = '', from?: PrivSpec): Entry[] {
  return Array.from({ length: count }, (_, i): Entry => [base + i, `${prefix}${start + i}${suffix}`, from]);
}

const ENTRIES: Entry[] = [
  // User level: floating point, vector, entropy source; the N extension's CSRs until 1.12.
  [0x000, 'ustatus', '1.9.1', '1.12'], [0x004, 'uie', '1.9.1', '1.12'], [0x005, 'utvec', '1.9.1', '1.12'],
  [0x040, 'uscratch', '1.9.1', '1.12'], [0x041, 'uepc', '1.9.1', '1.12'], [0x042, 'ucause', '1.9.1', '1.12'],
  [0x043, 'ubadaddr', '1.9.1', '1.10'], [0x043, 'utval', '1.10', '1.12'], [0x044, 'uip', '1.9.1', '1.12'],
  [0x001, 'fflags'], [0x002, 'frm'], [0x003, 'fcsr'],
  [0x008, 'vstart'], [0x009, 'vxsat'], [0x00a, 'vxrm'], [0x00f, 'vcsr'], [0x015, 'seed'],
  [0xc00, 'cycle'], [0xc01, 'time'], [0xc02, 'instret'], ...series(0xc03, 'hpmcounter', 3, 29),
  [0xc20, 'vl'], [0xc21, 'vtype'], [0xc22, 'vlenb'],
  [0xc80, 'cycleh'], [0xc81, 'timeh'], [0xc82, 'instreth'], ...series(0xc83, 'hpmcounter', 3, 29, 'h'),

  // Supervisor level.
  [0x100, 'sstatus'], [0x102, 'sedeleg', '1.9.1', '1.12'], [0x103, 'sideleg', '1.9.1', '1.12'],
  [0x104, 'sie'], [0x105, 'stvec'], [0x106, 'scounteren', '1.10'], [0x10a, 'senvcfg', '1.12'],
  ...series(0x10c, 'sstateen', 0, 4), [0x114, 'sieh'],
  [0x140, 'sscratch'], [0x141, 'sepc'], [0x142, 'scause'],
  [0x143, 'sbadaddr', '1.9.1', '1.10'], [0x143, 'stval', '1.10'], [0x144, 'sip'],
  [0x14d, 'stimecmp'], [0x150, 'siselect'], [0x151, 'sireg'], [0x154, 'siph'], [0x15c, 'stopei'],
  [0x15d, 'stimecmph'], [0x180, 'sptbr', '1.9.1', '1.10'], [0x180, 'satp', '1.10'],
  [0x5a8, 'scontext'], [0xda0, 'scountovf'], [0xdb0, 'stopi'],

  // Hypervisor and virtual supervisor level.
  [0x600, 'hstatus'], [0x602, 'hedeleg'], [0x603, 'hideleg'], [0x604, 'hie'], [0x605, 'htimedelta'],
  [0x606, 'hcounteren'], [0x607, 'hgeie'], [0x608, 'hvien'], [0x609, 'hvictl'], [0x60a, 'henvcfg'],
  ...series(0x60c, 'hstateen', 0, 4), [0x613, 'hidelegh'], [0x615, 'htimedeltah'], [0x618, 'hvienh'],
  [0x61a, 'henvcfgh'], ...series(0x61c, 'hstateen', 0, 4, 'h'),
  [0x643, 'htval'], [0x644, 'hip'], [0x645, 'hvip'], [0x646, 'hviprio1'], [0x647, 'hviprio2'],
  [0x64a, 'htinst'], [0x655, 'hviph'], [0x656, 'hviprio1h'], [0x657, 'hviprio2h'], [0x680, 'hgatp'],
  [0x6a8, 'hcontext'], [0xe12, 'hgeip'], [0xeb0, 'vstopi'],
  [0x200, 'vsstatus'], [0x204, 'vsie'], [0x205, 'vstvec'], [0x214, 'vsieh'], [0x240, 'vsscratch'],
  [0x241, 'vsepc'], [0x242, 'vscause'], [0x243, 'vstval'], [0x244, 'vsip'], [0x24d, 'vstimecmp'],
  [0x250, 'vsiselect'], [0x251, 'vsireg'], [0x254, 'vsiph'], [0x25c, 'vstopei'], [0x25d, 'vstimecmph'],
  [0x280, 'vsatp'],

  // Machine level.
  [0xf11, 'mvendorid'], [0xf12, 'marchid'], [0xf13, 'mimpid'], [0xf14, 'mhartid'],
  [0xf15, 'mconfigptr', '1.12'],
  [0x300, 'mstatus'], [0x301, 'misa'], [0x302, 'medeleg'], [0x303, 'mideleg'], [0x304, 'mie'],
  [0x305, 'mtvec'], [0x306, 'mcounteren', '1.10'], [0x308, 'mvien'], [0x309, 'mvip'],
  [0x30a, 'menvcfg', '1.12'], ...series(0x30c, 'mstateen', 0, 4), [0x310, 'mstatush', '1.12'],
  [0x313, 'midelegh'], [0x314, 'mieh'], [0x318, 'mvienh'], [0x319, 'mviph'], [0x31a, 'menvcfgh', '1.12'],
  ...series(0x31c, 'mstateen', 0, 4, 'h'),
  [0x320, 'mucounteren', '1.9.1', '1.10'], [0x320, 'mcountinhibit', '1.11'],
  [0x321, 'mscounteren', '1.9.1', '1.10'], [0x322, 'mhcounteren', '1.9.1', '1.10'],
  ...series(0x323, 'mhpmevent', 3, 29),
  [0x340, 'mscratch'], [0x341, 'mepc'], [0x342, 'mcause'],
  [0x343, 'mbadaddr', '1.9.1', '1.10'], [0x343, 'mtval', '1.10'], [0x344, 'mip'],
  [0x34a, 'mtinst', '1.12'], [0x34b, 'mtval2', '1.12'],
  [0x350, 'miselect'], [0x351, 'mireg'], [0x354, 'miph'], [0x35c, 'mtopei'],
  [0x380, 'mbase', '1.9.1', '1.10'], [0x381, 'mbound', '1.9.1', '1.10'], [0x382, 'mibase', '1.9.1', '1.10'],
  [0x383, 'mibound', '1.9.1', '1.10'], [0x384, 'mdbase', '1.9.1', '1.10'], [0x385, 'mdbound', '1.9.1', '1.10'],
  ...series(0x3a0, 'pmpcfg', 0, 4, '', '1.10'), ...series(0x3a4, 'pmpcfg', 4, 12, '', '1.12'),
  ...series(0x3b0, 'pmpaddr', 0, 16, '', '1.10'), ...series(0x3c0, 'pmpaddr', 16, 48, '', '1.12'),
  ...series(0x723, 'mhpmevent', 3, 29, 'h'),
  [0x747, 'mseccfg', '1.12'], [0x757, 'mseccfgh', '1.12'],
  [0xb00, 'mcycle'], [0xb02, 'minstret'], ...series(0xb03, 'mhpmcounter', 3, 29),
  [0xb80, 'mcycleh'], [0xb82, 'minstreth'], ...series(0xb83, 'mhpmcounter', 3, 29, 'h'),
  [0xfb0, 'mtopi'],

  // Debug and trigger modules (Debug spec 0.13).
  [0x7a0, 'tselect'], [0x7a1, 'tdata1'], [0x7a2, 'tdata2'], [0x7a3, 'tdata3'], [0x7a4, 'tinfo'],
  [0x7a5, 'tcontrol'], [0x7a8, 'mcontext'], [0x7aa, 'mscontext'],
  [0x7b0, 'dcsr'], [0x7b1, 'dpc'], [0x7b2, 'dscratch0'], [0x7b3, 'dscratch1'],
];

const tables = new Map<PrivSpec, Map<number, string>>();
for (let v = 0; v < VERSIONS.length; v++) {
  const t = new Map<number, string>();
  for (const [num, name, from, until] of ENTRIES) {
    const lo = from ? VERSIONS.indexOf(from) : 0;
    const hi = until ? VERSIONS.indexOf(until) : VERSIONS.length;
    if (v >= lo && v < hi) t.set(num, name);
  }
  tables.set(VERSIONS[v]!, t);
}

/** The name objdump prints for CSR `num` under `spec`, or its number in hex when it has none. */
export function csrDisasmName(num: number, spec: PrivSpec = '1.12'): string {
  return tables.get(spec)!.get(num) ?? `0x${num.toString(16)}`;
}

/**
 * The privileged spec version objdump uses for the ELF attributes Tag_RISCV_priv_spec,
 * _minor and _revision, or undefined when it would not recognise them (it then uses 1.12).
 */
export function privSpecFromAttributes([major, minor, revision]: readonly [number, number, number]): PrivSpec | undefined {
  const s = `${major}.${minor}${revision ? `.${revision}` : ''}`;
  return (VERSIONS as readonly string[]).includes(s) ? (s as PrivSpec) : undefined;
}
