/**
 * Booting the virt board: images where QEMU's virt puts them (boot.ts), the device tree at the
 * top of RAM, and the harts started in one of three ways — under the built-in SBI (the kernel in
 * S-mode, its ecalls served by the monitor; the other harts wait for SBI HSM's hart_start),
 * under real firmware in M-mode exactly as QEMU's
 * reset vector leaves it (fw_dynamic: a0 = hartid, a1 = DTB, a2 = fw_dynamic_info in the MROM),
 * or bare (the kernel itself in M-mode, with HTIF when it has a `tohost` symbol).
 */
import { VirtusError } from '../util/errors.ts';
import { dtbAddress, fwDynamicInfo, initrdAddress, kernelAddress, loadFirmware, loadKernel } from './boot.ts';
import { parseElf } from './elf.ts';
import { row, type VirtBoard } from './virt.ts';

/** Where fw_dynamic_info sits in the MROM: after QEMU's reset vector code. */
const FW_DYNAMIC_INFO_OFFSET = 0x28;

export interface BootOptions {
  kernel: Uint8Array;
  kernelName: string;
  initrd?: Uint8Array;
  /** Kernel command line (/chosen/bootargs). */
  append?: string;
  /**
   * 'builtin': virtus is the SBI firmware; 'none': start the kernel in M-mode (bare metal);
   * otherwise a firmware image started in M-mode with the fw_dynamic protocol.
   */
  firmware: 'builtin' | 'none' | { bytes: Uint8Array; name: string };
}

/** Where everything went, for messages and tests. */
export interface BootInfo {
  mode: 'builtin' | 'none' | 'firmware';
  entry: number;
  kernelAddr: number;
  kernelEntry: number;
  initrd: [number, number] | null;
  dtbAddr: number;
  dtbSize: number;
  /** Symbols of an ELF kernel (tohost, signature markers). */
  symbols: Map<string, number>;
  /** HTIF's locations, when a bare program has a `tohost` symbol. */
  htif: { tohost: number; fromhost: number | null } | null;
}

/** Loads the images into `b`'s RAM, builds the device tree and points the harts at the entry. */
export function bootBoard(b: VirtBoard, o: BootOptions): BootInfo {
  const m = b.machine;
  const ram = m.ram;
  const h = m.harts[0]!;
  let kernelAddr = ram.base;
  let fwEntry = -1;
  // Each image is read once here: a host may read it from its file whenever it is asked for.
  const kernelBytes = o.kernel;
  const initrdBytes = o.initrd;
  if (typeof o.firmware === 'object') {
    const fw = loadFirmware(ram, o.firmware.bytes, o.firmware.name);
    fwEntry = fw.entry;
    kernelAddr = kernelAddress(fw.end);
  } else if (o.firmware === 'builtin') {
    // Where the kernel sits behind OpenSBI, so both boot paths see the same memory map.
    kernelAddr = kernelAddress(ram.base + 1);
  }
  const kernel = loadKernel(ram, kernelBytes, o.kernelName, kernelAddr);
  const symbols = kernel.format === 'elf' ? parseElf(kernelBytes, o.kernelName).symbols : new Map<string, number>();
  let initrd: [number, number] | null = null;
  if (initrdBytes) {
    const at = initrdAddress(ram, kernel.end, initrdBytes.length);
    ram.load(at, initrdBytes);
    initrd = [at, at + initrdBytes.length];
  }
  const dtb = b.deviceTree(o.append ?? '', initrd);
  const dtbAddr = dtbAddress(ram, dtb.length);
  if (initrd && initrd[1] > dtbAddr) {
    throw new VirtusError('BOOT_RANGE', 'the initrd overlaps the device tree at the end of RAM (try a larger --memory)');
  }
  if (kernel.end > dtbAddr) {
    throw new VirtusError('BOOT_RANGE', `the kernel ${o.kernelName} overlaps the device tree at the end of RAM (try a larger --memory)`);
  }
  ram.load(dtbAddr, dtb);

  for (const t of m.harts) t.reset();
  let mode: BootInfo['mode'];
  let entry: number;
  let htif: BootInfo['htif'] = null;
  if (o.firmware === 'builtin') {
    mode = 'builtin';
    entry = kernel.entry;
    m.machineTrap = (hart, cause, irq) => b.sbi.handleTrap(hart, cause, irq);
    // Hart 0 enters the kernel; the others wait STOPPED for the kernel's SBI hart_start.
    for (const t of m.harts) b.sbi.prepareHart(t);
    b.sbi.hsm.boot();
    b.sbi.enterKernel(h, entry, dtbAddr);
  } else {
    mode = o.firmware === 'none' ? 'none' : 'firmware';
    entry = o.firmware === 'none' ? kernel.entry : fwEntry;
    m.machineTrap = undefined;
    b.mrom.program(FW_DYNAMIC_INFO_OFFSET, fwDynamicInfo(kernel.entry, 'S'));
    // Every hart starts at the entry, as QEMU's reset vector sends them: a0 = mhartid, a1 =
    // the DTB, a2 = fw_dynamic_info. The firmware (or program) picks its boot hart itself.
    b.sbi.hsm.releaseAll();
    for (const t of m.harts) {
      t.setPcNum(entry);
      t.setX(10, BigInt(t.id));
      t.setX(11, BigInt(dtbAddr));
      t.setX(12, BigInt(row('mrom').base + FW_DYNAMIC_INFO_OFFSET));
    }
    const tohost = symbols.get('tohost');
    if (mode === 'none' && tohost !== undefined) {
      htif = { tohost, fromhost: symbols.get('fromhost') ?? null };
      m.attachHtif(htif.tohost, htif.fromhost);
    }
  }
  return { mode, entry, kernelAddr, kernelEntry: kernel.entry, initrd, dtbAddr, dtbSize: dtb.length, symbols, htif };
}
