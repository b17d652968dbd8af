/**
 * ELF64 parsing for loading guest programs and firmware (System V gABI, RISC-V psABI). Input
 * is untrusted: every offset is bounds-checked and every failure is a VirtusError naming the
 * file and what is wrong with it.
 */
import { VirtusError } from '../util/errors.ts';

export interface ElfSegment {
  /** Physical load address. */
  paddr: number;
  /** File contents of the segment (filesz bytes). */
  data: Uint8Array;
  /** Size in memory (>= data.length; the rest is zero). */
  memsz: number;
}

export interface ElfImage {
  entry: number;
  segments: ElfSegment[];
  /** Symbol values by name (from .symtab, when present). */
  symbols: Map<string, number>;
}

const EM_RISCV = 243;
const MACHINES: Record<number, string> = {
  3: 'x86', 8: 'MIPS', 20: 'PowerPC', 21: 'PowerPC64', 22: 'S390', 40: 'ARM', 62: 'x86-64', 183: 'AArch64',
  243: 'RISC-V', 258: 'LoongArch',
};
const PT_LOAD = 1;
const SHT_SYMTAB = 2;

/** True when `bytes` starts with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** Parses a RISC-V ELF64 executable. `name` is used in error messages. */
export function parseElf(bytes: Uint8Array, name: string): ElfImage {
  const bad = (why: string): VirtusError => new VirtusError('ELF_BAD', `${name}: ${why}`);
  if (!isElf(bytes)) throw new VirtusError('ELF_NOT_ELF', `${name} is not an ELF file`);
  if (bytes.length < 64) throw bad('truncated ELF header');
  if (bytes[4] !== 2) {
    throw new VirtusError('ELF_CLASS', `${name} is a 32-bit ELF file; virtus runs 64-bit RISC-V (RV64) programs`);
  }
  if (bytes[5] !== 1) throw bad('big-endian ELF files are not RISC-V programs');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const machine = v.getUint16(18, true);
  if (machine !== EM_RISCV) {
    const m = MACHINES[machine] ?? `machine ${machine}`;
    throw new VirtusError('ELF_MACHINE', `${name} is an ELF file for ${m}, not RISC-V`);
  }
  const u64 = (o: number): number => {
    if (o + 8 > bytes.length) throw bad('truncated or corrupt (offset beyond end of file)');
    const x = v.getBigUint64(o, true);
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
    return Number(x);
  };
  const entry = u64(24);
  const phoff = u64(32);
  const shoff = u64(40);
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  const shentsize = v.getUint16(58, true);
  const shnum = v.getUint16(60, true);
  if (phnum > 0 && (phentsize < 56 || phoff + phnum * phentsize > bytes.length)) {
    throw bad('truncated or corrupt program headers');
  }
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (v.getUint32(p, true) !== PT_LOAD) continue;
    const offset = u64(p + 8);
    const paddr = u64(p + 24);
    const filesz = u64(p + 32);
    const memsz = u64(p + 40);
    if (offset + filesz > bytes.length) throw bad(`segment ${i} extends beyond the end of the file`);
    if (memsz < filesz) throw bad(`segment ${i} is smaller in memory than in the file`);
    if (memsz === 0) continue;
    segments.push({ paddr, data: bytes.subarray(offset, offset + filesz), memsz });
  }
  if (segments.length === 0) throw bad('has no loadable segments');
  return { entry, segments, symbols: readSymbols(bytes, v, shoff, shentsize, shnum) };
}

function readSymbols(bytes: Uint8Array, v: DataView, shoff: number, shentsize: number, shnum: number): Map<string, number> {
  const syms = new Map<string, number>();
  if (shoff === 0 || shnum === 0 || shentsize < 64 || shoff + shnum * shentsize > bytes.length) return syms;
  const sh = (i: number) => shoff + i * shentsize;
  for (let i = 0; i < shnum; i++) {
    if (v.getUint32(sh(i) + 4, true) !== SHT_SYMTAB) continue;
    const off = Number(v.getBigUint64(sh(i) + 24, true));
    const size = Number(v.getBigUint64(sh(i) + 32, true));
    const link = v.getUint32(sh(i) + 40, true);
    if (link >= shnum || off + size > bytes.length) continue;
    const strOff = Number(v.getBigUint64(sh(link) + 24, true));
    const strSize = Number(v.getBigUint64(sh(link) + 32, true));
    if (strOff + strSize > bytes.length) continue;
    for (let s = off; s + 24 <= off + size; s += 24) {
      const nameOff = v.getUint32(s, true);
      if (nameOff === 0 || nameOff >= strSize) continue;
      let end = strOff + nameOff;
      while (end < strOff + strSize && bytes[end] !== 0) end++;
      const name = new TextDecoder().decode(bytes.subarray(strOff + nameOff, end));
      const value = v.getBigUint64(s + 8, true);
      if (!syms.has(name)) syms.set(name, Number(value));
    }
  }
  return syms;
}
