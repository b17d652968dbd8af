/**
 * Boot images: ELF programs and firmware (elf.ts) and Linux Image headers (boot.ts), loaded
 * into a small guest RAM as `virtus run --kernel` loads them.
 */
import { GuestRam } from '../../src/machine/ram.ts';
import { loadKernel } from '../../src/machine/boot.ts';
import { memoryBytes } from '../../src/cpu/layout.ts';
import type { FuzzTarget } from '../harness.ts';

const RAM = 4 << 20;
const memory = new WebAssembly.Memory({ initial: Math.ceil(memoryBytes(RAM) / 65536) });
const ram = new GuestRam(memory, RAM);

/** A minimal RISC-V ELF64 executable: one PT_LOAD segment and a symbol table with tohost. */
export function tinyElf(): Uint8Array {
  const code = new Uint8Array([0x13, 0, 0, 0, 0x6f, 0, 0, 0]); // nop; j .
  const strtab = new TextEncoder().encode('\0tohost\0fromhost\0');
  const shstr = new TextEncoder().encode('\0.text\0.symtab\0.strtab\0.shstrtab\0');
  const symCount = 3;
  const at = { code: 0x1000, sym: 0x1100, str: 0x1100 + symCount * 24, shstr: 0x1200, sh: 0x1300 };
  const b = new Uint8Array(at.sh + 5 * 64);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 243, true); // EM_RISCV
  v.setUint32(20, 1, true);
  v.setBigUint64(24, 0x8000_0000n, true);
  v.setBigUint64(32, 64n, true); // phoff
  v.setBigUint64(40, BigInt(at.sh), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, 5, true);
  v.setUint16(62, 4, true);
  // PT_LOAD
  v.setUint32(64, 1, true);
  v.setUint32(68, 5, true);
  v.setBigUint64(72, BigInt(at.code), true);
  v.setBigUint64(80, 0x8000_0000n, true);
  v.setBigUint64(88, 0x8000_0000n, true);
  v.setBigUint64(96, BigInt(code.length), true);
  v.setBigUint64(104, 0x2000n, true);
  b.set(code, at.code);
  // symbols: null, tohost, fromhost
  v.setUint32(at.sym + 24, 1, true);
  v.setBigUint64(at.sym + 24 + 8, 0x8000_1000n, true);
  v.setUint32(at.sym + 48, 8, true);
  v.setBigUint64(at.sym + 48 + 8, 0x8000_1040n, true);
  b.set(strtab, at.str);
  b.set(shstr, at.shstr);
  const section = (i: number, name: number, type: number, off: number, size: number, link: number): void => {
    const s = at.sh + i * 64;
    v.setUint32(s, name, true);
    v.setUint32(s + 4, type, true);
    v.setBigUint64(s + 24, BigInt(off), true);
    v.setBigUint64(s + 32, BigInt(size), true);
    v.setUint32(s + 40, link, true);
  };
  section(1, 1, 1, at.code, code.length, 0);
  section(2, 7, 2, at.sym, symCount * 24, 3);
  section(3, 15, 3, at.str, strtab.length, 0);
  section(4, 23, 3, at.shstr, shstr.length, 0);
  return b;
}

/** A RISC-V Linux Image header (boot-image-header.rst) followed by a little code. */
export function tinyImage(efi: boolean): Uint8Array {
  const b = new Uint8Array(256);
  const v = new DataView(b.buffer);
  if (efi) b.set([0x4d, 0x5a], 0);
  v.setBigUint64(8, 0x200000n, true); // text_offset
  v.setBigUint64(16, 0x10000n, true); // image_size
  v.setUint32(56, 0x05435352, true); // "RSC\x05"
  return b;
}

export const target: FuzzTarget = {
  name: 'kernel',
  seeds: () => [tinyElf(), tinyImage(false), tinyImage(true)],
  run(input) {
    loadKernel(ram, input, 'fuzz', ram.base);
  },
};
