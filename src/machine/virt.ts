/**
 * The `virt` board: QEMU's virt memory map, so the same firmware and kernels run on both.
 *
 *   0x0000_1000  MROM (fw_dynamic information)     0x0c00_0000  PLIC
 *   0x0010_0000  sifive,test finisher / syscon     0x1000_0000  NS16550A UART (PLIC source 10)
 *   0x0010_1000  goldfish RTC (PLIC source 11)     0x1000_1000  virtio-mmio slots (sources 1-8)
 *   0x0200_0000  CLINT                             0x8000_0000  RAM
 *
 * The device tree is generated from the devices on the bus and the hart's misa, so it cannot
 * disagree with the machine. The board boots a kernel in one of three ways: under the built-in
 * SBI (virtus is the M-mode firmware), under real firmware (e.g. OpenSBI fw_dynamic, exactly as
 * QEMU starts it), or bare (--bios none: the kernel itself starts in M-mode).
 */
import { MIP_MEIP, MIP_SEIP } from '../cpu/csr-numbers.ts';
import { isaExtensions, isaString } from '../cpu/isa-string.ts';
import { addClintNode } from '../devices/clint/fdt.ts';
import { addPlicNode } from '../devices/plic/fdt.ts';
import { Plic } from '../devices/plic/plic.ts';
import { Rom } from '../devices/rom/rom.ts';
import { addRtcNode } from '../devices/rtc/fdt.ts';
import { GoldfishRtc } from '../devices/rtc/rtc.ts';
import { addSysconNodes } from '../devices/syscon/fdt.ts';
import { Syscon } from '../devices/syscon/syscon.ts';
import { addUartNode } from '../devices/uart/fdt.ts';
import { Uart } from '../devices/uart/uart.ts';
import { addVirtioMmioNode } from '../devices/virtio/fdt.ts';
import { VirtioMmio } from '../devices/virtio/mmio.ts';
import type { VirtioDevice } from '../devices/virtio/types.ts';
import { dtbAddress, fwDynamicInfo, initrdAddress, kernelAddress, loadFirmware, loadKernel } from './boot.ts';
import { TIMEBASE_HZ } from './clock.ts';
import { encodeFdt, FdtTree, regCells, u64Cells } from './fdt.ts';
import { CLINT_BASE, Machine, mipLine, type MachineOptions } from './machine.ts';
import { SbiFirmware } from './sbi/sbi.ts';
import { parseElf } from './elf.ts';
import { VirtusError } from '../util/errors.ts';

export const VIRT = {
  MROM: 0x1000,
  MROM_SIZE: 0xf000,
  TEST: 0x10_0000,
  RTC: 0x10_1000,
  CLINT: CLINT_BASE,
  PLIC: 0x0c00_0000,
  UART0: 0x1000_0000,
  VIRTIO: 0x1000_1000,
  VIRTIO_STRIDE: 0x1000,
  VIRTIO_SLOTS: 8,
  UART0_IRQ: 10,
  RTC_IRQ: 11,
  VIRTIO_IRQ: 1,
} as const;

/** Where fw_dynamic_info sits in the MROM (after QEMU's reset vector code). */
const FW_DYNAMIC_INFO = VIRT.MROM + 0x28;
/** Free space left in the DTB for firmware fixups (OpenSBI edits the tree in place). */
const DTB_PADDING = 64 * 1024;
/** A fixed wall-clock epoch for deterministic runs: 2026-01-01T00:00:00Z. */
const DETERMINISTIC_EPOCH_MS = 1_767_225_600_000;

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
}

export class VirtBoard {
  readonly machine: Machine;
  readonly plic: Plic;
  readonly uart: Uart;
  readonly rtc: GoldfishRtc;
  readonly syscon: Syscon;
  readonly mrom: Rom;
  /** The built-in SBI firmware (also present when real firmware boots; then unused). */
  readonly sbi: SbiFirmware;
  /** The virtio-mmio transports, slot 0 at VIRT.VIRTIO (PLIC source 1 + slot). */
  readonly virtio: VirtioMmio[];
  /** Told when a driver breaks the virtio protocol and a device needs a reset (host log). */
  onVirtioError: ((device: string, reason: string) => void) | null = null;
  /** Console input waiting for room in the UART's FIFO (saved in snapshots). */
  readonly inputQueue: number[] = [];
  private lastBoot: BootOptions | null = null;
  /** Wall-clock time at power-on, in ms since 1970 (a restore carries it over). */
  epochMs: number;

  constructor(o: MachineOptions) {
    const m = (this.machine = new Machine(o));
    const harts = m.harts;
    this.epochMs = m.clock.deterministic ? DETERMINISTIC_EPOCH_MS : Date.now();
    this.plic = new Plic(harts.flatMap((h) => [mipLine(h, MIP_MEIP), mipLine(h, MIP_SEIP)]));
    this.uart = new Uart(this.plic.input(VIRT.UART0_IRQ), { output: (b) => m.console(b) });
    this.rtc = new GoldfishRtc(this.plic.input(VIRT.RTC_IRQ), () => this.wallClockNs());
    this.syscon = new Syscon({
      poweroff: (code, failed) => m.stop({ code: failed ? code || 1 : 0, reason: 'poweroff' }),
      reboot: () => m.stop({ code: 0, reason: 'reboot' }),
    });
    this.mrom = new Rom('mrom', VIRT.MROM_SIZE);
    m.bus.map(VIRT.MROM, this.mrom);
    m.bus.map(VIRT.TEST, this.syscon);
    m.bus.map(VIRT.RTC, this.rtc);
    m.bus.map(VIRT.PLIC, this.plic);
    m.bus.map(VIRT.UART0, this.uart);
    this.virtio = Array.from({ length: VIRT.VIRTIO_SLOTS }, (_, i) => {
      const t = new VirtioMmio(m.ram, this.plic.input(VIRT.VIRTIO_IRQ + i), { onError: (d, r) => this.onVirtioError?.(d, r) });
      m.bus.map(VIRT.VIRTIO + i * VIRT.VIRTIO_STRIDE, t);
      return t;
    });

    this.sbi = new SbiFirmware({
      harts,
      now: () => m.clock.now(),
      readRam: (pa, len) => (m.ram.contains(pa, len) ? m.ram.read(pa, len) : null),
      writeRam: (pa, data) => {
        if (!m.ram.contains(pa, data.length)) return false;
        m.ram.load(pa, data);
        return true;
      },
      consoleWrite: (b) => m.console(b),
      consoleRead: (max) => new Uint8Array(this.inputQueue.splice(0, max)),
      reset: (kind, reason) =>
        m.stop(kind === 'shutdown' ? { code: reason === 0 ? 0 : 1, reason: 'poweroff' } : { code: 0, reason: 'reboot' }),
      fatal: (message) => m.stop({ code: 1, reason: 'fatal', message }),
    });
    m.addDeadlineSource(() => this.sbi.nextDeadline());
    m.addDeadlineSource(() => {
      const ns = this.rtc.nsUntilAlarm();
      return ns === Infinity ? Infinity : m.clock.now() + Math.ceil(ns / 100);
    });
    m.addSliceHook(() => {
      this.sbi.tick();
      this.rtc.poll();
      this.feedUart();
      for (const t of this.virtio) t.poll();
    });
  }

  /**
   * Plugs a virtio device into the highest free slot, as QEMU fills them: the device tree
   * lists slots from the highest down, so the first device attached is the first the guest
   * probes (the first disk is /dev/vda). Returns the slot.
   */
  attachVirtio(device: VirtioDevice): number {
    for (let i = VIRT.VIRTIO_SLOTS - 1; i >= 0; i--) {
      if (!this.virtio[i]!.device) {
        this.virtio[i]!.attach(device);
        return i;
      }
    }
    throw new VirtusError('VIRTIO_SLOTS', `no free virtio slot for ${device.name}: the virt board has ${VIRT.VIRTIO_SLOTS}`, { exitCode: 2 });
  }

  /** Wall-clock time for the RTC: the epoch at power-on plus the machine's virtual time. */
  wallClockNs(): bigint {
    return BigInt(this.epochMs) * 1_000_000n + BigInt(this.machine.clock.now()) * (1_000_000_000n / BigInt(TIMEBASE_HZ));
  }

  /** Console input from the host: queued, and handed to the UART as its FIFO has room. */
  consoleInput(bytes: Uint8Array): void {
    for (const b of bytes) this.inputQueue.push(b);
    this.feedUart();
  }

  private feedUart(): void {
    if (this.inputQueue.length === 0) return;
    const n = this.uart.receive(new Uint8Array(this.inputQueue.slice(0, 64)));
    this.inputQueue.splice(0, n);
  }

  /** Loads the images, builds the device tree and points hart 0 at the entry. */
  boot(o: BootOptions): BootInfo {
    this.lastBoot = o;
    const m = this.machine;
    const ram = m.ram;
    const h = m.harts[0]!;
    let kernelAddr = ram.base;
    let fwEntry = -1;
    if (typeof o.firmware === 'object') {
      const fw = loadFirmware(ram, o.firmware.bytes, o.firmware.name);
      fwEntry = fw.entry;
      kernelAddr = kernelAddress(fw.end);
    } else if (o.firmware === 'builtin') {
      // Where the kernel sits behind OpenSBI, so both boot paths see the same memory map.
      kernelAddr = kernelAddress(ram.base + 1);
    }
    const kernel = loadKernel(ram, o.kernel, o.kernelName, kernelAddr);
    const symbols = kernel.format === 'elf' ? parseElf(o.kernel, o.kernelName).symbols : new Map<string, number>();
    let initrd: [number, number] | null = null;
    if (o.initrd) {
      const at = initrdAddress(ram, kernel.end, o.initrd.length);
      ram.load(at, o.initrd);
      initrd = [at, at + o.initrd.length];
    }
    const dtb = this.deviceTree(o.append ?? '', initrd);
    const dtbAddr = dtbAddress(ram, dtb.length);
    if (initrd && initrd[1] > dtbAddr) {
      throw new VirtusError('BOOT_RANGE', 'the initrd overlaps the device tree at the end of RAM (try a larger --memory)');
    }
    ram.load(dtbAddr, dtb);

    h.reset();
    let mode: BootInfo['mode'];
    let entry: number;
    if (o.firmware === 'builtin') {
      mode = 'builtin';
      entry = kernel.entry;
      m.machineTrap = (hart, cause, irq) => this.sbi.handleTrap(hart, cause, irq);
      this.sbi.enterKernel(h, entry, dtbAddr);
    } else {
      // As QEMU's reset vector leaves it: M-mode, a0 = hartid, a1 = DTB, a2 = fw_dynamic_info.
      mode = o.firmware === 'none' ? 'none' : 'firmware';
      entry = o.firmware === 'none' ? kernel.entry : fwEntry;
      m.machineTrap = undefined;
      this.mrom.program(FW_DYNAMIC_INFO - VIRT.MROM, fwDynamicInfo(kernel.entry, 'S'));
      h.setPcNum(entry);
      h.setX(10, 0n);
      h.setX(11, BigInt(dtbAddr));
      h.setX(12, BigInt(FW_DYNAMIC_INFO));
    }
    return { mode, entry, kernelAddr, kernelEntry: kernel.entry, initrd, dtbAddr, dtbSize: dtb.length, symbols };
  }

  /** Restarts the machine after a guest reboot: devices reset, images reloaded, hart at its entry. */
  reboot(): BootInfo {
    if (!this.lastBoot) throw new VirtusError('NOT_BOOTED', 'the machine was never booted');
    const m = this.machine;
    m.exit = null;
    for (const e of m.engines) e.reset();
    for (const { device } of m.bus.mappings()) device.reset?.();
    this.inputQueue.length = 0;
    return this.boot(this.lastBoot);
  }

  /** The flattened device tree describing this machine, as QEMU 7.2's virt board lays it out. */
  deviceTree(bootargs: string, initrd: [number, number] | null): Uint8Array {
    const m = this.machine;
    const t = new FdtTree();
    const root = t.root;
    root.setCells('#address-cells', [2]).setCells('#size-cells', [2]);
    root.setStrings('compatible', ['riscv-virtio']).setString('model', 'riscv-virtio,qemu');

    const cpus = root.addNode('cpus');
    cpus.setCells('#address-cells', [1]).setCells('#size-cells', [0]).setU32('timebase-frequency', TIMEBASE_HZ);
    const intc: number[] = [];
    for (const h of m.harts) {
      const cpu = cpus.addNode(`cpu@${h.id}`);
      cpu.setString('device_type', 'cpu').setU32('reg', h.id).setString('status', 'okay').setString('compatible', 'riscv');
      cpu.setString('riscv,isa', isaString(h));
      cpu.setString('riscv,isa-base', 'rv64i').setStrings('riscv,isa-extensions', isaExtensions(h));
      cpu.setString('mmu-type', 'riscv,sv48');
      const ic = cpu.addNode('interrupt-controller');
      ic.setCells('#interrupt-cells', [1]).setCells('#address-cells', [0]).setEmpty('interrupt-controller');
      ic.setString('compatible', 'riscv,cpu-intc');
      intc.push(ic.phandle());
      cpu.phandle();
    }
    root.addNode(`memory@${m.ram.base.toString(16)}`).setString('device_type', 'memory').setCells('reg', regCells(m.ram.base, m.ram.size));

    const soc = root.addNode('soc');
    soc.setCells('#address-cells', [2]).setCells('#size-cells', [2]).setString('compatible', 'simple-bus').setEmpty('ranges');
    const plicNode = addPlicNode(soc, { base: VIRT.PLIC, plic: this.plic, intc });
    addClintNode(soc, { base: VIRT.CLINT, clint: m.clint, intc });
    const serial = addUartNode(soc, { base: VIRT.UART0, uart: this.uart, irq: VIRT.UART0_IRQ, interruptParent: plicNode.phandle() });
    addRtcNode(soc, { base: VIRT.RTC, rtc: this.rtc, irq: VIRT.RTC_IRQ, interruptParent: plicNode.phandle() });
    addSysconNodes(soc, { base: VIRT.TEST, syscon: this.syscon });
    for (let i = VIRT.VIRTIO_SLOTS - 1; i >= 0; i--) {
      const base = VIRT.VIRTIO + i * VIRT.VIRTIO_STRIDE;
      addVirtioMmioNode(soc, { base, size: VIRT.VIRTIO_STRIDE, irq: VIRT.VIRTIO_IRQ + i, interruptParent: plicNode.phandle() });
    }

    const chosen = root.addNode('chosen');
    chosen.setString('stdout-path', serial.path());
    if (bootargs) chosen.setString('bootargs', bootargs);
    if (initrd) {
      chosen.setCells('linux,initrd-start', u64Cells(initrd[0]));
      chosen.setCells('linux,initrd-end', u64Cells(initrd[1]));
    }
    chosen.setBytes('rng-seed', this.rngSeed());
    return encodeFdt(t, { padding: DTB_PADDING });
  }

  /** 32 bytes of boot entropy for the kernel; fixed in deterministic mode. */
  private rngSeed(): Uint8Array {
    const seed = new Uint8Array(32);
    if (this.machine.clock.deterministic) seed.forEach((_, i) => (seed[i] = (i * 73 + 41) & 0xff));
    else crypto.getRandomValues(seed);
    return seed;
  }
}
