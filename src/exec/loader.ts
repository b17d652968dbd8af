/**
 * Putting a program into a fresh address space as Linux's binfmt_elf does: each PT_LOAD
 * segment mapped at its address (plus a load base for position-independent code), the bss
 * zeroed, the break after the highest segment, the interpreter beside it, and the initial
 * stack (argc, argv, envp, the auxiliary vector and the strings they point at; RISC-V psABI
 * "Process Initialization" and the System V ABI's auxiliary vector).
 */
import { AT, TASK_SIZE } from './abi.ts';
import { AddressSpace, pageUp, STACK_SIZE, STACK_TOP } from './address-space.ts';
import type { ElfProgram } from './elf.ts';
import { VirtusError } from '../util/errors.ts';

const PAGE = 4096;
/** Where a position-independent executable is placed (two thirds of the user space, as Linux). */
export const PIE_BASE = Math.floor((TASK_SIZE / 3) * 2 / PAGE) * PAGE;
/** AT_HWCAP: one bit per single-letter extension, 'a' at bit 0 (arch/riscv/kernel/cpufeature.c): RV64IMAFDC. */
export const HWCAP_RV64GC = ['i', 'm', 'a', 'f', 'd', 'c'].reduce((m, c) => m | (1 << (c.charCodeAt(0) - 97)), 0);

/** Where a loaded image ended up. */
export interface LoadedImage {
  /** Load bias (0 for ET_EXEC). */
  bias: number;
  entry: number;
  /** Address of the program headers in memory (AT_PHDR), or 0 when no segment holds them. */
  phdr: number;
  /** First address after the highest segment. */
  end: number;
}

/** Maps `elf` (the bytes of `file`) into `as`; `base` is the load address of an ET_DYN image. */
export function loadImage(as: AddressSpace, elf: ElfProgram, file: Uint8Array, base: number | null): LoadedImage {
  const first = Math.floor(elf.segments[0]!.vaddr / PAGE) * PAGE;
  const last = pageUp(Math.max(...elf.segments.map((s) => s.vaddr + s.memsz)));
  let bias = 0;
  if (elf.dyn) {
    const at = base ?? as.findFree(last - first);
    if (at < 0) throw new VirtusError('EXEC_NO_MEMORY', 'no room in the address space for the program');
    bias = at - first;
  }
  if (bias + last > TASK_SIZE) throw new VirtusError('EXEC_BAD_ELF', 'the program does not fit in the user address space');
  for (const s of elf.segments) {
    let start = Math.floor((s.vaddr + bias) / PAGE) * PAGE;
    const end = pageUp(s.vaddr + bias + s.memsz);
    // Segments may share a page (its first page is the previous segment's last): it gets both protections.
    const shared = as.find(start);
    if (shared) {
      as.protect(start, start + PAGE, shared.prot | s.prot);
      start += PAGE;
    }
    if (start < end) {
      if (!as.isFree(start, end)) throw new VirtusError('EXEC_BAD_ELF', 'the program\'s segments overlap');
      as.insert(start, end, s.prot);
    }
    const va = s.vaddr + bias;
    if (!as.write(va, file.subarray(s.offset, s.offset + s.filesz), true)) throw outOfMemory();
    // The rest of the last file page is bss: zero it (later bss pages are populated as zeros).
    const tail = Math.min(pageUp(va + s.filesz), va + s.memsz) - (va + s.filesz);
    if (tail > 0 && !as.write(va + s.filesz, new Uint8Array(tail), true)) throw outOfMemory();
  }
  let phdr = 0;
  if (elf.phdrVaddr >= 0) phdr = elf.phdrVaddr + bias;
  else {
    const s = elf.segments.find((g) => g.offset <= elf.phoff && elf.phoff + elf.phnum * elf.phentsize <= g.offset + g.filesz);
    if (s) phdr = s.vaddr + (elf.phoff - s.offset) + bias;
  }
  return { bias, entry: elf.entry + bias, phdr, end: last + bias };
}

/** The guest ran out of the RAM given to it. */
export function outOfMemory(): VirtusError {
  return new VirtusError('EXEC_NO_MEMORY', 'the program needs more memory than the guest has (raise --memory)');
}

/** What goes on the initial stack. */
export interface StackContents {
  argv: string[];
  envp: string[];
  /** AT_EXECFN: the path the program was run as. */
  execfn: string;
  /** The auxiliary vector without AT_RANDOM, AT_EXECFN and AT_NULL (added here). */
  auxv: Array<[tag: number, value: number]>;
  /** 16 random bytes for AT_RANDOM. */
  random: Uint8Array;
}

/** Maps the stack and writes the initial process stack; returns the stack pointer. */
export function buildStack(as: AddressSpace, c: StackContents): number {
  as.insert(STACK_TOP - STACK_SIZE, STACK_TOP, 3);
  const enc = new TextEncoder();
  let top = STACK_TOP;
  const put = (bytes: Uint8Array): number => {
    top -= bytes.length;
    if (!as.write(top, bytes)) throw outOfMemory();
    return top;
  };
  const str = (s: string): number => put(enc.encode(`${s}\0`));
  const execfn = str(c.execfn);
  const envs = c.envp.map(str);
  const args = c.argv.map(str);
  top = Math.floor(top / 16) * 16;
  const random = put(c.random.subarray(0, 16));
  const auxv: Array<[number, number]> = [...c.auxv, [AT.RANDOM, random], [AT.EXECFN, execfn], [AT.NULL, 0]];
  const words = [args.length, ...args, 0, ...envs, 0, ...auxv.flat()];
  if (words.length * 8 + (STACK_TOP - top) > STACK_SIZE / 4) {
    throw new VirtusError('EXEC_ARGS', 'the arguments and environment are too large (E2BIG)');
  }
  top = Math.floor((top - words.length * 8) / 16) * 16;
  const block = new Uint8Array(words.length * 8);
  const dv = new DataView(block.buffer);
  words.forEach((w, i) => dv.setBigUint64(i * 8, BigInt(w), true));
  if (!as.write(top, block)) throw outOfMemory();
  return top;
}
