/** The project-written bare-metal test programs (test/guest/), shared by the QEMU differential
 * tests and the translator lockstep tests. */

export interface Program {
  name: string;
  sources: string[];
  cflags?: string[];
  /** Extra QEMU options for the differential run. */
  qemu?: string[];
}

export const PROGRAMS: Program[] = [
  { name: 'sieve', sources: ['common/crt.S', 'bench/sieve.c'], cflags: ['-DREPS=1'] },
  { name: 'mpi', sources: ['common/crt.S', 'bench/mpi.c'], cflags: ['-DREPS=1'] },
  { name: 'rv64im', sources: ['common/crt.S', 'cpu/rv64im.c'] },
  { name: 'atomics', sources: ['common/crt.S', 'common/trap.S', 'common/trap.c', 'cpu/atomics.c'] },
  { name: 'traps', sources: ['common/crt.S', 'common/trap.S', 'common/trap.c', 'cpu/traps.c'] },
  { name: 'interrupts', sources: ['common/crt.S', 'common/trap.S', 'common/trap.c', 'cpu/interrupts.c'] },
  { name: 'paging', sources: ['common/crt.S', 'common/trap.S', 'common/trap.c', 'cpu/paging.c'] },
  { name: 'straddle', sources: ['common/crt.S', 'cpu/straddle.c'] },
  // With -icount QEMU's counters count instructions (otherwise they follow the host's clock).
  { name: 'counters', sources: ['common/crt.S', 'cpu/counters.c'], qemu: ['-icount', 'shift=0'] },
];
