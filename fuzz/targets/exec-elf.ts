/**
 * riscv64 Linux programs as `virtus exec` loads them (src/exec/elf.ts, loader.ts): program
 * headers parsed, then PT_LOAD segments mapped into a small address space.
 */
import { memoryBytes } from '../../src/cpu/layout.ts';
import { AddressSpace } from '../../src/exec/address-space.ts';
import { parseProgram } from '../../src/exec/elf.ts';
import { loadImage } from '../../src/exec/loader.ts';
import { GuestRam } from '../../src/machine/ram.ts';
import type { FuzzTarget } from '../harness.ts';

const RAM = 2 << 20;
const memory = new WebAssembly.Memory({ initial: Math.ceil(memoryBytes(RAM) / 65536) });
const ram = new GuestRam(memory, RAM);

/** A small riscv64 program: PT_PHDR, PT_INTERP, a text and a data segment sharing a page. */
export function tinyProgram(dyn: boolean): Uint8Array {
  const b = new Uint8Array(0x1800);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, dyn ? 3 : 2, true);
  v.setUint16(18, 243, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, 0x10100n, true);
  v.setBigUint64(32, 64n, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 4, true);
  const ph = (i: number, type: number, flags: number, off: number, va: number, filesz: number, memsz: number): void => {
    const p = 64 + i * 56;
    v.setUint32(p, type, true);
    v.setUint32(p + 4, flags, true);
    v.setBigUint64(p + 8, BigInt(off), true);
    v.setBigUint64(p + 16, BigInt(va), true);
    v.setBigUint64(p + 24, BigInt(va), true);
    v.setBigUint64(p + 32, BigInt(filesz), true);
    v.setBigUint64(p + 40, BigInt(memsz), true);
    v.setBigUint64(p + 48, 0x1000n, true);
  };
  ph(0, 6, 4, 64, 0x10040, 4 * 56, 4 * 56);
  ph(1, 3, 4, 0x200, 0x10200, 12, 12);
  ph(2, 1, 5, 0, 0x10000, 0x1000, 0x1000);
  ph(3, 1, 6, 0xf00, 0x10f00, 0x800, 0x3000);
  b.set(new TextEncoder().encode('/lib/ld.so\0'), 0x200);
  b.fill(0x13, 0x300, 0x380);
  return b;
}

export const target: FuzzTarget = {
  name: 'exec-elf',
  seeds: () => [tinyProgram(false), tinyProgram(true)],
  run(input) {
    const elf = parseProgram(input, 'fuzz.elf');
    const as = new AddressSpace(ram, () => {});
    loadImage(as, elf, input, elf.dyn ? 0x2000_0000 : null);
  },
};
