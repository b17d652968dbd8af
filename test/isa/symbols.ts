/**
 * Test support: which symbol objdump names an address after (`80000010 <main+0x10>`), as
 * objdump 2.40 chooses it for executables: symbols sorted by value with its tie-breaks (symbols
 * of the section being disassembled first), the last valid one at or below the address (or the
 * first one above it). Mapping symbols and section
 * symbols never name anything.
 */
import { type ElfInfo, type ElfSymbol, mappingKind, STT_FILE, STT_SECTION } from './elf-info.ts';

const STB_LOCAL = 0;
const STB_GLOBAL = 1;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const SHN_COMMON = 0xfff2;

/** objdump's heuristic: file names (and names that look like object files) sort last. */
function fileLike(s: ElfSymbol): boolean {
  return s.type === STT_FILE || (s.name.length > 2 && /\.[oa]$/.test(s.name));
}

/** objdump's order for symbols at the same address, when disassembling section `sec`. */
function compare(a: ElfSymbol, b: ElfSymbol, sec: (s: ElfSymbol) => boolean): number {
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  // Symbols of the section being disassembled first; no other preference between sections.
  if (sec(a) !== sec(b)) return sec(a) ? -1 : 1;
  const gnu = (s: ElfSymbol): boolean => s.name.includes('gnu_compiled') || s.name.includes('gcc2_compiled');
  if (gnu(a) !== gnu(b)) return gnu(a) ? 1 : -1;
  if (fileLike(a) !== fileLike(b)) return fileLike(a) ? 1 : -1;
  const flag = (s: ElfSymbol, t: number): boolean => s.type === t;
  if (flag(a, STT_FUNC) !== flag(b, STT_FUNC)) return flag(a, STT_FUNC) ? -1 : 1;
  if (flag(a, STT_OBJECT) !== flag(b, STT_OBJECT)) return flag(a, STT_OBJECT) ? -1 : 1;
  if ((a.bind === STB_LOCAL) !== (b.bind === STB_LOCAL)) return a.bind === STB_LOCAL ? 1 : -1;
  if ((a.bind === STB_GLOBAL) !== (b.bind === STB_GLOBAL)) return a.bind === STB_GLOBAL ? -1 : 1;
  if (a.size !== b.size) return a.size > b.size ? -1 : 1;
  if (a.name.startsWith('.') !== b.name.startsWith('.')) return a.name.startsWith('.') ? 1 : -1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

const hex = (v: bigint): string => v.toString(16);

/**
 * A `symbolize` function for addresses printed while disassembling section `shndx`, or
 * undefined when the file has no usable symbols (objdump then prints bare `0x...` addresses).
 */
export function objdumpSymbolizer(elf: ElfInfo, shndx: number): ((addr: bigint) => string) | undefined {
  const section = elf.sections[shndx]!;
  // objdump compares section names (several sections of an object file may share one).
  const inSection = (s: ElfSymbol): boolean => s.shndx < elf.sections.length && elf.sections[s.shndx]!.name === section.name;
  const syms = elf.symbols
    .filter((s) => s.name !== '' && s.type !== STT_SECTION && s.type !== STT_FILE && s.shndx !== 0 && s.shndx !== SHN_COMMON)
    .sort((a, b) => compare(a, b, inSection));
  if (syms.length === 0) return undefined;
  const valid = (s: ElfSymbol): boolean => mappingKind(s.name) === null && s.name !== '.L0 ';
  return (addr) => {
    // The last symbol at or below addr (binary search as objdump does), then the first of its
    // value group.
    let lo = 0;
    let hi = syms.length;
    while (lo + 1 < hi) {
      const mid = (lo + hi) >> 1;
      if (syms[mid]!.value > addr) hi = mid;
      else if (syms[mid]!.value < addr) lo = mid;
      else {
        lo = mid;
        break;
      }
    }
    let place = lo;
    while (place > 0 && syms[place]!.value === syms[place - 1]!.value) place--;
    let end = place;
    let found: ElfSymbol | undefined;
    for (; end < syms.length && syms[end]!.value === syms[place]!.value; end++) {
      if (!found && inSection(syms[end]!) && valid(syms[end]!)) found = syms[end];
    }
    if (!found && valid(syms[place]!)) found = syms[place];
    if (!found) {
      for (let i = end - 1; i >= 0; i--) {
        if (!valid(syms[i]!)) continue;
        if (found && syms[i]!.value !== found.value) break;
        found = syms[i];
      }
    }
    if (!found) found = syms.slice(place + 1).find(valid);
    if (!found) {
      const off = addr - section.addr;
      return `${section.name}${off < 0n ? `-0x${hex(-off)}` : off > 0n ? `+0x${hex(off)}` : ''}`;
    }
    const off = addr - found.value;
    return `${found.name}${off < 0n ? `-0x${hex(-off)}` : off > 0n ? `+0x${hex(off)}` : ''}`;
  };
}
