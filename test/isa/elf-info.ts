/**
 * Test support: the parts of an ELF64 file objdump's disassembly depends on — sections,
 * symbols (.symtab, or .dynsym when the file is stripped), the RISC-V attributes (privileged
 * spec version) and mapping symbols ($x code, $d data). Trusted input (files the tests build
 * or the system ships), so checks are minimal.
 */
import { readFileSync } from 'node:fs';

export interface Section {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
}

export interface ElfSymbol {
  name: string;
  value: bigint;
  size: bigint;
  type: number;
  bind: number;
  shndx: number;
}

export interface ElfInfo {
  bytes: Uint8Array;
  sections: Section[];
  symbols: ElfSymbol[];
  /** Tag_RISCV_priv_spec, _minor, _revision, when the file records them. */
  privSpec?: [number, number, number];
  /** Tag_RISCV_arch, when the file records it. */
  arch?: string;
}

export const SHT_NOBITS = 8;
export const SHF_EXECINSTR = 4n;
export const SHN_ABS = 0xfff1;
export const STT_SECTION = 3;
export const STT_FILE = 4;
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_RISCV_ATTRIBUTES = 0x70000003;

function cstr(b: Uint8Array, at: number): string {
  let end = at;
  while (end < b.length && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(at, end));
}

function readSymbols(b: Uint8Array, v: DataView, sec: Section, strtab: Section): ElfSymbol[] {
  const out: ElfSymbol[] = [];
  for (let o = sec.offset + 24; o + 24 <= sec.offset + sec.size; o += 24) {
    const info = b[o + 4]!;
    out.push({
      name: cstr(b, strtab.offset + v.getUint32(o, true)),
      type: info & 15,
      bind: info >> 4,
      shndx: v.getUint16(o + 6, true),
      value: v.getBigUint64(o + 8, true),
      size: v.getBigUint64(o + 16, true),
    });
  }
  return out;
}

function uleb(b: Uint8Array, p: { at: number }): number {
  let v = 0;
  let shift = 0;
  for (;;) {
    const c = b[p.at++]!;
    v += (c & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(c & 0x80)) return v;
  }
}

/**
 * Tag_RISCV_arch (5) and Tag_RISCV_priv_spec (8), _minor (10), _revision (12) from a
 * .riscv.attributes section (RISC-V psABI, "Attributes").
 */
function readAttributes(b: Uint8Array, v: DataView, sec: Section): Pick<ElfInfo, 'privSpec' | 'arch'> {
  const end = sec.offset + sec.size;
  let at = sec.offset + 1; // format version 'A'
  const spec = [0, 0, 0];
  let found = false;
  let arch: string | undefined;
  while (at + 4 <= end) {
    const len = v.getUint32(at, true);
    const vendor = cstr(b, at + 4);
    if (vendor === 'riscv') {
      const p = { at: at + 4 + vendor.length + 1 };
      while (p.at < at + len) {
        const subStart = p.at;
        uleb(b, p); // Tag_File
        const subLen = v.getUint32(p.at, true);
        p.at += 4;
        while (p.at < subStart + subLen) {
          const tag = uleb(b, p);
          if (tag % 2 === 1) {
            const str = cstr(b, p.at); // string-valued (odd tags)
            if (tag === 5) arch = str;
            p.at += new TextEncoder().encode(str).length + 1;
            continue;
          }
          const val = uleb(b, p);
          if (tag === 8 || tag === 10 || tag === 12) {
            spec[(tag - 8) / 2] = val;
            found = true;
          }
        }
      }
    }
    at += len;
  }
  return { privSpec: found ? (spec as [number, number, number]) : undefined, arch };
}

/** Reads the sections, symbols and attributes of the ELF64 file at `path`. */
export function readElfInfo(path: string): ElfInfo {
  const bytes = new Uint8Array(readFileSync(path));
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(40, true));
  const shnum = v.getUint16(60, true);
  const shstrndx = v.getUint16(62, true);
  const strOff = Number(v.getBigUint64(shoff + shstrndx * 64 + 24, true));
  const sections: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * 64;
    sections.push({
      index: i,
      name: cstr(bytes, strOff + v.getUint32(o, true)),
      type: v.getUint32(o + 4, true),
      flags: v.getBigUint64(o + 8, true),
      addr: v.getBigUint64(o + 16, true),
      offset: Number(v.getBigUint64(o + 24, true)),
      size: Number(v.getBigUint64(o + 32, true)),
    });
  }
  const link = (i: number): number => v.getUint32(shoff + i * 64 + 40, true);
  const symtab = sections.find((s) => s.type === SHT_SYMTAB) ?? sections.find((s) => s.type === SHT_DYNSYM);
  const symbols = symtab ? readSymbols(bytes, v, symtab, sections[link(symtab.index)]!) : [];
  const attrs = sections.find((s) => s.type === SHT_RISCV_ATTRIBUTES);
  return { bytes, sections, symbols, ...(attrs ? readAttributes(bytes, v, attrs) : {}) };
}

/** A mapping symbol ($x, $x<isa>, $d, optionally numbered `.n`) marks where code or data starts. */
export function mappingKind(name: string): 'code' | 'data' | null {
  if (name === '$d' || name.startsWith('$d.')) return 'data';
  if (name === '$x' || name.startsWith('$x')) return 'code';
  return null;
}

/** The ISA string a `$x<isa>` mapping symbol sets, if it names one. */
export function mappingIsa(name: string): string | undefined {
  return name.startsWith('$xrv') ? name.slice(2).replace(/\.\d+$/, '') : undefined;
}
