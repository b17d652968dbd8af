/**
 * The program headers of a riscv64 Linux ELF executable or shared object (System V gABI ch. 5,
 * RISC-V psABI): what the loader maps and where. Input is untrusted: every field is checked
 * against the file and the user address space before anything is mapped, and a bad file is a
 * VirtusError naming it.
 */
import { VirtusError } from '../util/errors.ts';
import { TASK_SIZE } from './abi.ts';

export const PT_LOAD = 1;
export const PT_INTERP = 3;
export const PT_PHDR = 6;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;
const ET_EXEC = 2;
const ET_DYN = 3;
const EM_RISCV = 243;
const MAX_PHNUM = 128;

/** A loadable segment: file bytes [offset, offset + filesz) at vaddr, memsz bytes in memory. */
export interface LoadSegment {
  vaddr: number;
  offset: number;
  filesz: number;
  memsz: number;
  /** PROT_* bits from p_flags. */
  prot: number;
}

/** What the loader needs from an ELF file. */
export interface ElfProgram {
  /** ET_DYN: position-independent, loaded at a base the loader chooses. */
  dyn: boolean;
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  /** p_vaddr of PT_PHDR, or -1. */
  phdrVaddr: number;
  segments: LoadSegment[];
  /** The PT_INTERP path, or null for a static program. */
  interp: string | null;
}

/** Reads the program headers of `bytes` (a file named `name` in messages). */
export function parseProgram(bytes: Uint8Array, name: string): ElfProgram {
  const bad = (why: string): VirtusError => new VirtusError('EXEC_BAD_ELF', `${name}: ${why}`);
  if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new VirtusError('EXEC_NOT_ELF', `${name} is not an ELF program`);
  }
  if (bytes[4] !== 2 || bytes[5] !== 1) throw bad('not a 64-bit little-endian ELF file (virtus exec runs riscv64 programs)');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = v.getUint16(16, true);
  if (v.getUint16(18, true) !== EM_RISCV) throw bad(`an ELF file for machine ${v.getUint16(18, true)}, not RISC-V`);
  if (type !== ET_EXEC && type !== ET_DYN) throw bad('not an executable or shared object');
  const u64 = (o: number): number => {
    const x = v.getBigUint64(o, true);
    if (x >= BigInt(TASK_SIZE)) throw bad(`a field at offset ${o} is beyond the user address space`);
    return Number(x);
  };
  const entry = u64(24);
  const phoff = u64(32);
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phnum === 0 || phnum > MAX_PHNUM || phentsize < 56 || phoff + phnum * phentsize > bytes.length) {
    throw bad('truncated or corrupt program headers');
  }
  const segments: LoadSegment[] = [];
  let interp: string | null = null;
  let phdrVaddr = -1;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const ptype = v.getUint32(p, true);
    if (ptype !== PT_LOAD && ptype !== PT_INTERP && ptype !== PT_PHDR) continue;
    const flags = v.getUint32(p + 4, true);
    const offset = u64(p + 8);
    const vaddr = u64(p + 16);
    const filesz = u64(p + 32);
    const memsz = u64(p + 40);
    if (offset + filesz > bytes.length) throw bad(`segment ${i} extends beyond the end of the file`);
    if (ptype === PT_PHDR) {
      phdrVaddr = vaddr;
    } else if (ptype === PT_INTERP) {
      if (filesz < 2 || filesz > 4096 || bytes[offset + filesz - 1] !== 0) throw bad('corrupt PT_INTERP');
      interp = new TextDecoder().decode(bytes.subarray(offset, offset + filesz - 1));
    } else {
      if (memsz < filesz) throw bad(`segment ${i} is smaller in memory than in the file`);
      if (vaddr + memsz > TASK_SIZE) throw bad(`segment ${i} lies beyond the user address space`);
      if (vaddr % 4096 !== offset % 4096) throw bad(`segment ${i}'s address and file offset disagree modulo the page size`);
      if (memsz === 0) continue;
      const prot = (flags & PF_R ? 1 : 0) | (flags & PF_W ? 2 : 0) | (flags & PF_X ? 4 : 0);
      segments.push({ vaddr, offset, filesz, memsz, prot });
    }
  }
  if (segments.length === 0) throw bad('has no loadable segments');
  segments.sort((a, b) => a.vaddr - b.vaddr);
  return { dyn: type === ET_DYN, entry, phoff, phentsize, phnum, phdrVaddr, segments, interp };
}
