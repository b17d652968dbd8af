/**
 * The ISA as the device tree describes it, derived from what the hart implements (misa) so the
 * tree cannot claim an extension the hart lacks.
 */
import type { Hart } from './hart.ts';

/** Single-letter extensions in canonical order (Unprivileged 29.x ISA naming conventions). */
const ORDER = 'imafdc';
/** Multi-letter extensions every hart here implements. */
const ALWAYS = ['zicntr', 'zicsr', 'zifencei', 'sstc'];

function letters(h: Hart): string[] {
  const misa = h.get('misa');
  return [...ORDER].filter((c) => (misa >>> (c.charCodeAt(0) - 97)) & 1);
}

/** The `riscv,isa` string, e.g. `rv64imafdc_zicntr_zicsr_zifencei_sstc`. */
export function isaString(h: Hart): string {
  return `rv64${letters(h).join('')}_${ALWAYS.join('_')}`;
}

/** The `riscv,isa-extensions` list (devicetree bindings for riscv cpus). */
export function isaExtensions(h: Hart): string[] {
  return [...letters(h), ...ALWAYS];
}
