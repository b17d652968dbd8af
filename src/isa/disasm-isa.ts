/**
 * Which instructions objdump knows for a given ISA string: objdump only decodes the
 * extensions an ELF file declares (its Tag_RISCV_arch attribute, or a `$x<isa>` mapping
 * symbol for a stretch of code), and prints everything else as data. The ISA string syntax and
 * the implied extensions follow the Unprivileged spec ch. 37 ("ISA Extension Naming
 * Conventions") as binutils applies it.
 */
import type { Decoded } from './decode.ts';

/** The extensions an ISA string enables, by lower-case name (`i`, `m`, `zicsr`, ...). */
export type IsaSet = ReadonlySet<string>;

// Extensions that imply others (binutils' list, for the standard extensions of RV64GC).
const IMPLIES: Record<string, string[]> = {
  g: ['i', 'm', 'a', 'f', 'd', 'zicsr', 'zifencei'],
  m: ['zmmul'],
  q: ['d'],
  d: ['f'],
  f: ['zicsr'],
  h: ['zicsr'],
  zdinx: ['zfinx'],
  zfinx: ['zicsr'],
};

const cache = new Map<string, IsaSet>();

/**
 * Parses an ISA string such as `rv64gc` or `rv64i2p1_m2p0_a2p1_c2p0_zicsr2p0`. Before version
 * 2.1 the base ISA included the CSR and FENCE.I instructions, so `i2p0` implies Zicsr and
 * Zifencei; a version-less `i` is 2.1 (the 20191213 spec, objdump's default).
 */
export function parseIsa(isa: string): IsaSet {
  const hit = cache.get(isa);
  if (hit) return hit;
  const out = new Set<string>();
  const add = (e: string): void => {
    if (out.has(e)) return;
    out.add(e);
    for (const i of IMPLIES[e] ?? []) add(i);
  };
  const parts = isa.toLowerCase().replace(/^rv(32|64|128)/, '').split('_');
  const single = parts.shift() ?? '';
  for (const m of single.matchAll(/([a-z])(\d+(?:p\d+)?)?/g)) {
    const [, ext, ver] = m;
    if (ext === 'i' && ver !== undefined && /^2(p0)?$/.test(ver)) {
      add('zicsr');
      add('zifencei');
    }
    add(ext!);
  }
  for (const p of parts) {
    const m = /^([a-z]+?)(\d+(?:p\d+)?)?$/.exec(p);
    if (m) add(m[1]!);
  }
  cache.set(isa, out);
  return out;
}

const MUL = new Set(['mul', 'mulh', 'mulhsu', 'mulhu', 'mulw']);

/** True when objdump decodes `d` for a file whose ISA is `isa`. */
export function isaHas(d: Decoded, isa: IsaSet): boolean {
  if (d.cdef) {
    if (!isa.has('c')) return false;
    return d.cdef.ext !== 'D' || isa.has('d');
  }
  switch (d.def.ext) {
    case 'M':
      return isa.has('m') || (MUL.has(d.def.name) && isa.has('zmmul'));
    case 'A':
      return isa.has('a');
    case 'F':
      return isa.has('f');
    case 'D':
      return isa.has('d');
    case 'Zicsr':
      return isa.has('zicsr');
    case 'Zifencei':
      return isa.has('zifencei');
    default:
      return true;
  }
}

/** The ISA objdump assumes for a file that does not declare one. */
export const DEFAULT_ISA = 'rv64gc';
