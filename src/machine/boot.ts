/**
 * Boot images and where they go in RAM, as QEMU's virt board places them: firmware at the start
 * of RAM, the kernel at the next 2 MiB boundary after it (0x8020_0000 behind OpenSBI), the
 * initrd at min(RAM/2, 128 MiB) but never inside the kernel's image_size, and the DTB at the
 * highest 2 MiB boundary that fits below the end of RAM (or 3 GiB).
 * Linux's boot image header: Documentation/arch/riscv/boot-image-header.rst.
 */
import { VirtusError } from '../util/errors.ts';
import { isElf, parseElf } from './elf.ts';
import type { GuestRam } from './ram.ts';

const MiB = 1024 * 1024;
/** "RSC\x05" at offset 56 of a RISC-V Linux Image (magic2). */
const IMAGE_MAGIC2 = 0x05435352;

export interface LinuxImageHeader {
  textOffset: number;
  /** Memory the kernel occupies from its load address, bss included. */
  imageSize: number;
  /** True when the image carries an EFI/PE header ("MZ" in code0). */
  efi: boolean;
}

/** Parses the Image header, or returns null when `bytes` is not a RISC-V Linux Image. */
export function parseImageHeader(bytes: Uint8Array): LinuxImageHeader | null {
  if (bytes.length < 64) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(56, true) !== IMAGE_MAGIC2) return null;
  return {
    textOffset: Number(v.getBigUint64(8, true)),
    imageSize: Number(v.getBigUint64(16, true)),
    efi: bytes[0] === 0x4d && bytes[1] === 0x5a,
  };
}

export interface LoadedKernel {
  entry: number;
  /** First byte after everything the kernel will use (image_size for an Image). */
  end: number;
  format: 'image' | 'elf';
}

function outside(name: string, addr: number, len: number, ram: GuestRam): VirtusError {
  return new VirtusError(
    'BOOT_RANGE',
    `${name} does not fit in guest RAM: it needs 0x${addr.toString(16)}-0x${(addr + len - 1).toString(16)}, ` +
      `RAM is 0x${ram.base.toString(16)}-0x${(ram.end - 1).toString(16)} (try a larger --memory)`,
  );
}

/**
 * Loads a kernel: an ELF at its physical addresses (entry from the header), or a Linux Image
 * (with or without its EFI/PE header, which is also valid code) at `addr`.
 */
export function loadKernel(ram: GuestRam, bytes: Uint8Array, name: string, addr: number): LoadedKernel {
  if (isElf(bytes)) {
    const elf = parseElf(bytes, name);
    let end = 0;
    for (const s of elf.segments) {
      if (!ram.contains(s.paddr, s.memsz)) throw outside(name, s.paddr, s.memsz, ram);
      ram.load(s.paddr, s.data);
      ram.zero(s.paddr + s.data.length, s.memsz - s.data.length);
      end = Math.max(end, s.paddr + s.memsz);
    }
    return { entry: elf.entry, end, format: 'elf' };
  }
  const hdr = parseImageHeader(bytes);
  if (!hdr) {
    throw new VirtusError('KERNEL_FORMAT', `${name} is neither an ELF file nor a RISC-V Linux Image`);
  }
  const size = Math.max(hdr.imageSize, bytes.length);
  if (!ram.contains(addr, size)) throw outside(name, addr, size, ram);
  ram.load(addr, bytes);
  return { entry: addr, end: addr + size, format: 'image' };
}

/** Loads raw firmware (e.g. OpenSBI's fw_dynamic.bin) or an ELF firmware; returns its entry and end. */
export function loadFirmware(ram: GuestRam, bytes: Uint8Array, name: string): { entry: number; end: number } {
  if (isElf(bytes)) {
    const k = loadKernel(ram, bytes, name, ram.base);
    return { entry: k.entry, end: k.end };
  }
  if (!ram.contains(ram.base, bytes.length)) throw outside(name, ram.base, bytes.length, ram);
  ram.load(ram.base, bytes);
  return { entry: ram.base, end: ram.base + bytes.length };
}

/** The kernel's load address after firmware ending at `firmwareEnd` (2 MiB aligned on RV64). */
export function kernelAddress(firmwareEnd: number): number {
  return Math.ceil(firmwareEnd / (2 * MiB)) * (2 * MiB);
}

/** Where the initrd goes: QEMU's rule, moved up past the kernel's footprint when needed. */
export function initrdAddress(ram: GuestRam, kernelEnd: number, size: number): number {
  let start = ram.base + Math.min(ram.size / 2, 128 * MiB);
  if (start < kernelEnd) start = Math.ceil(kernelEnd / (2 * MiB)) * (2 * MiB);
  if (!ram.contains(start, size)) throw outside('the initrd', start, size, ram);
  return start;
}

/** Where the DTB goes: the highest 2 MiB boundary below min(end of RAM, 3 GiB) that fits it. */
export function dtbAddress(ram: GuestRam, size: number): number {
  const top = Math.min(ram.end, 3 * 1024 * MiB);
  const addr = Math.floor((top - size) / (2 * MiB)) * (2 * MiB);
  if (addr < ram.base) throw outside('the device tree', addr, size, ram);
  return addr;
}

/** OpenSBI's fw_dynamic_info (include/sbi/fw_dynamic.h, version 2): six 64-bit words. */
export function fwDynamicInfo(nextAddr: number, nextMode: 'S' | 'M' | 'U'): Uint8Array {
  const b = new Uint8Array(48);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 0x4942534fn, true); // magic "OSBI"
  v.setBigUint64(8, 2n, true); // version
  v.setBigUint64(16, BigInt(nextAddr), true);
  v.setBigUint64(24, BigInt(nextMode === 'S' ? 1 : nextMode === 'M' ? 3 : 0), true);
  v.setBigUint64(32, 0n, true); // options
  v.setBigUint64(40, 0xffff_ffff_ffff_ffffn, true); // boot_hart: any (-1)
  return b;
}
