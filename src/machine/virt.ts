/**
 * The `virt` board: QEMU's virt memory map, so the same firmware and kernels run on both.
 *
 * The board is one table (VIRT_TABLE): each row is a device window — its id, base address,
 * size, interrupt, how to make the device and its device-tree node. The bus, the device tree
 * and a snapshot's device sections are all derived from the rows, so they cannot disagree.
 * Rows are listed in the order QEMU 7.2's device tree lists the devices (the virtio slots from
 * the highest address down, which is also the order Linux probes them in).
 *
 * The board boots a kernel in one of three ways: under the built-in SBI (virtus is the M-mode
 * firmware), under real firmware (e.g. OpenSBI fw_dynamic, exactly as QEMU starts it), or bare
 * (the kernel itself starts in M-mode; a `tohost` symbol gets HTIF).
 */
import { MIP_MEIP, MIP_SEIP } from '../cpu/csr-numbers.ts';
import { isaExtensions, isaString } from '../cpu/isa-string.ts';
import { addClintNode } from '../devices/clint/fdt.ts';
import { CLINT_SIZE } from '../devices/clint/clint.ts';
import type { Device } from '../devices/device.ts';
import { addPlicNode } from '../devices/plic/fdt.ts';
import { Plic, PLIC_SIZE } from '../devices/plic/plic.ts';
import { Rom } from '../devices/rom/rom.ts';
import { addRtcNode } from '../devices/rtc/fdt.ts';
import { GoldfishRtc, RTC_SIZE } from '../devices/rtc/rtc.ts';
import { addVmGenIdNode } from '../devices/vmgenid/fdt.ts';
import { PrintkFilter } from './printk-filter.ts';
import { randomGenerationId, VMGENID_SIZE, VmGenId } from '../devices/vmgenid/vmgenid.ts';
import { addSysconNodes } from '../devices/syscon/fdt.ts';
import { Syscon, SYSCON_SIZE } from '../devices/syscon/syscon.ts';
import { addUartNode } from '../devices/uart/fdt.ts';
import { Uart, UART_SIZE } from '../devices/uart/uart.ts';
import { addVirtioMmioNode } from '../devices/virtio/fdt.ts';
import { MMIO_SIZE, VirtioMmio } from '../devices/virtio/mmio.ts';
import type { VirtioDevice } from '../devices/virtio/types.ts';
import { encodeFdt, FdtTree, regCells, u64Cells, type FdtNode } from '../fdt/fdt.ts';
import { VirtusError } from '../util/errors.ts';
import { bootBoard, type BootInfo, type BootOptions } from './virt-boot.ts';
import { TIMEBASE_HZ } from './clock.ts';
import { CLINT_BASE, Machine, mipLine, type MachineOptions } from './machine.ts';
import { SbiFirmware } from './sbi/sbi.ts';

export type { BootInfo, BootOptions } from './virt-boot.ts';

/** Virtio-mmio slots on the board. */
export const VIRTIO_SLOTS = 8;
const VIRTIO_BASE = 0x1000_1000;

/** What a row's device-tree node is written with. */
interface NodeContext {
  soc: FdtNode;
  /** The PLIC's phandle (the interrupt parent of every row with an irq). */
  plic: number;
  /** Each hart's interrupt-controller phandle. */
  intc: number[];
}

/** One window of the board's memory map. */
export interface BoardRow {
  /** Stable name: the device's section in a snapshot. */
  readonly id: string;
  readonly base: number;
  readonly size: number;
  /** The PLIC source the device's interrupt line is wired to. */
  readonly irq?: number;
  /** The device in this window, from the board's parts. */
  device(b: VirtBoard): Device;
  /** Adds the device's node (none: the firmware ROM has no node). */
  node?(b: VirtBoard, c: NodeContext): FdtNode | void;
}

const virtioRow = (slot: number): BoardRow => ({
  id: `virtio${slot}`,
  base: VIRTIO_BASE + slot * MMIO_SIZE,
  size: MMIO_SIZE,
  irq: 1 + slot,
  device: (b) => b.virtio[slot]!,
  node(_b, c) {
    addVirtioMmioNode(c.soc, { base: this.base, size: this.size, irq: this.irq!, interruptParent: c.plic });
  },
});

/** The virt board, as QEMU 7.2's device tree lists it. */
export const VIRT_TABLE: readonly BoardRow[] = [
  {
    id: 'plic', base: 0x0c00_0000, size: PLIC_SIZE, device: (b) => b.plic,
    node: (b, c) => addPlicNode(c.soc, { base: 0x0c00_0000, plic: b.plic, intc: c.intc }),
  },
  {
    id: 'clint', base: CLINT_BASE, size: CLINT_SIZE, device: (b) => b.machine.clint,
    node: (b, c) => addClintNode(c.soc, { base: CLINT_BASE, clint: b.machine.clint, intc: c.intc }),
  },
  {
    id: 'uart0', base: 0x1000_0000, size: UART_SIZE, irq: 10, device: (b) => b.uart,
    node: (b, c) => addUartNode(c.soc, { base: 0x1000_0000, uart: b.uart, irq: 10, interruptParent: c.plic }),
  },
  {
    id: 'rtc', base: 0x0010_1000, size: RTC_SIZE, irq: 11, device: (b) => b.rtc,
    node: (b, c) => addRtcNode(c.soc, { base: 0x0010_1000, rtc: b.rtc, irq: 11, interruptParent: c.plic }),
  },
  {
    id: 'test', base: 0x0010_0000, size: SYSCON_SIZE, device: (b) => b.syscon,
    node: (b, c) => addSysconNodes(c.soc, { base: 0x0010_0000, syscon: b.syscon }).test,
  },
  ...Array.from({ length: VIRTIO_SLOTS }, (_, i) => virtioRow(VIRTIO_SLOTS - 1 - i)),
  // Not on QEMU's virt (its vmgenid is an x86 ACPI device): where Firecracker has it, always.
  {
    id: 'vmgenid', base: 0x0010_2000, size: VMGENID_SIZE, irq: 12, device: (b) => b.vmgenid,
    node: (_b, c) => addVmGenIdNode(c.soc, { base: 0x0010_2000, irq: 12, interruptParent: c.plic }),
  },
  { id: 'mrom', base: 0x0000_1000, size: 0xf000, device: (b) => b.mrom },
];

/** The row named `id`. */
export function row(id: string): BoardRow {
  const r = VIRT_TABLE.find((x) => x.id === id);
  if (!r) throw new Error(`the virt board has no ${id}`);
  return r;
}

/** A fixed wall-clock epoch for deterministic runs: 2026-01-01T00:00:00Z. */
const DETERMINISTIC_EPOCH_MS = 1_767_225_600_000;
/** The generation ID of a deterministic machine (never renewed: its runs must repeat). */
const DETERMINISTIC_GENERATION_ID = '5eed5eed-0000-4000-8000-000000000001';
/** Free space left in the DTB for firmware fixups (OpenSBI edits the tree in place). */
const DTB_PADDING = 64 * 1024;

export class VirtBoard {
  readonly machine: Machine;
  readonly plic: Plic;
  readonly uart: Uart;
  readonly rtc: GoldfishRtc;
  /** The machine's generation ID (renewed when it becomes a copy: vmm/create.ts). */
  readonly vmgenid: VmGenId;
  readonly syscon: Syscon;
  readonly mrom: Rom;
  /** The built-in SBI firmware (also present when real firmware boots; then unused). */
  readonly sbi: SbiFirmware;
  /** The virtio-mmio transports by slot (slot i at VIRTIO_BASE + i * 0x1000, PLIC source 1 + i). */
  readonly virtio: VirtioMmio[];
  /** Told when a driver breaks the virtio protocol and a device needs a reset (host log). */
  onVirtioError: ((device: string, reason: string) => void) | null = null;
  /** Console input waiting for room in the UART's FIFO (saved in snapshots). */
  readonly inputQueue: number[] = [];
  /** Wall-clock time at power-on, in ms since 1970 (a restore carries it over). */
  epochMs: number;
  /** What the last boot loaded, for a reboot (null: never booted, or restored without them). */
  lastBoot: BootOptions | null = null;
  /** How the machine started: who serves M-mode traps, and HTIF (saved in snapshots). */
  started: Pick<BootInfo, 'mode' | 'htif'> | null = null;
  /**
   * True once the kernel's messages on the UART are not shown (optional): with virtio-console
   * the UART is the boot console, and once the guest drives hvc0 its kernel writes every
   * message to both; one terminal shows one copy, hvc0's (printk-filter.ts). What else the
   * guest writes to the UART is shown; the guest cannot tell (the host takes every byte).
   */
  uartHidden: () => boolean = () => false;
  private readonly printk = new PrintkFilter();

  constructor(o: MachineOptions) {
    const m = (this.machine = new Machine(o));
    this.epochMs = m.clock.deterministic ? DETERMINISTIC_EPOCH_MS : Date.now();
    const wake = (h: { id: number }) => () => m.wakeHart?.(h.id);
    this.plic = new Plic(m.harts.flatMap((h) => [mipLine(h, MIP_MEIP, wake(h)), mipLine(h, MIP_SEIP, wake(h))]));
    this.uart = new Uart(this.plic.input(row('uart0').irq!), {
      output: (b) => {
        const shown = this.printk.push(b, this.uartHidden());
        if (shown.length) m.console(shown);
      },
      room: () => m.consoleRoom(),
    });
    this.vmgenid = new VmGenId(this.plic.input(row('vmgenid').irq!), m.clock.deterministic ? DETERMINISTIC_GENERATION_ID : randomGenerationId());
    this.rtc = new GoldfishRtc(this.plic.input(row('rtc').irq!), () => this.wallClockNs());
    this.syscon = new Syscon({
      poweroff: (code, failed) => m.stop({ code: failed ? code || 1 : 0, reason: 'poweroff' }),
      reboot: () => m.stop({ code: 0, reason: 'reboot' }),
    });
    this.mrom = new Rom('mrom', row('mrom').size);
    this.virtio = Array.from({ length: VIRTIO_SLOTS }, (_, i) => {
      return new VirtioMmio(m.ram, this.plic.input(row(`virtio${i}`).irq!), { onError: (d, r) => this.onVirtioError?.(d, r) });
    });
    for (const r of VIRT_TABLE) {
      const d = r.device(this);
      if (d.size !== r.size) throw new Error(`the virt table gives ${r.id} 0x${r.size.toString(16)} bytes, the device has 0x${d.size.toString(16)}`);
      // The machine maps its own CLINT (a machine without a board has one too).
      if (r.id === 'clint') {
        if (r.base !== CLINT_BASE) throw new Error('the virt table moves the CLINT');
      } else m.bus.map(r.base, d);
    }

    this.sbi = new SbiFirmware({
      harts: m.harts,
      parked: m.parked,
      remote: () => m.remote,
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
    m.addDeadlineSource(() => (this.virtio.some((t) => t.busy) ? m.clock.now() : Infinity)); // a device with work left for the next turn
    m.addSliceHook(() => {
      this.sbi.tick();
      this.rtc.poll();
      this.uart.poll();
      this.feedUart();
      for (const t of this.virtio) t.poll();
    });
  }

  /** Every row of the table with the device in its window. */
  devices(): Array<{ row: BoardRow; device: Device }> {
    return VIRT_TABLE.map((r) => ({ row: r, device: r.device(this) }));
  }

  /**
   * Plugs a virtio device into the highest free slot, as QEMU fills them: the device tree
   * lists slots from the highest down, so the first device attached is the first the guest
   * probes (the first disk is /dev/vda). Returns the slot.
   */
  attachVirtio(device: VirtioDevice): number {
    for (let i = VIRTIO_SLOTS - 1; i >= 0; i--) {
      if (!this.virtio[i]!.device) {
        this.virtio[i]!.attach(device);
        return i;
      }
    }
    throw new VirtusError('VIRTIO_SLOTS', `no free virtio slot for ${device.name}: the virt board has ${VIRTIO_SLOTS}`, { exitCode: 2 });
  }

  /** The virtio devices plugged in, by slot. */
  virtioDevices(): Array<{ slot: number; device: VirtioDevice }> {
    return this.virtio.flatMap((t, slot) => (t.device ? [{ slot, device: t.device }] : []));
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

  /** Loads the images, builds the device tree and points hart 0 at the entry (virt-boot.ts). */
  boot(o: BootOptions): BootInfo {
    this.lastBoot = o;
    const info = bootBoard(this, o);
    this.started = { mode: info.mode, htif: info.htif };
    return info;
  }

  /** Takes up a restored machine as it had started: M-mode traps to the built-in SBI, HTIF. */
  resume(mode: BootInfo['mode'], htif: BootInfo['htif']): void {
    const m = this.machine;
    m.machineTrap = mode === 'builtin' ? (h, cause, irq) => this.sbi.handleTrap(h, cause, irq) : undefined;
    if (htif) m.attachHtif(htif.tohost, htif.fromhost);
    this.started = { mode, htif };
  }

  /**
   * Restarts the machine after a guest reboot or a system reset: every device and hart back
   * to power-on state, translations dropped, the boot images loaded again. RAM is not cleared
   * (a real reset leaves it too), but everything the boot loads is written again.
   */
  reboot(): BootInfo {
    if (!this.lastBoot) throw new VirtusError('NOT_BOOTED', 'the machine has no boot images to reboot from');
    const m = this.machine;
    m.exit = null;
    m.resetEngines();
    for (const { device } of this.devices()) device.reset?.();
    this.inputQueue.length = 0;
    return this.boot(this.lastBoot);
  }

  /** The flattened device tree describing this machine, derived from the table. */
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
    // The interrupt controller first: every other node names it as its parent.
    const c: NodeContext = { soc, plic: 0, intc };
    const nodes = new Map<string, FdtNode>();
    for (const r of VIRT_TABLE) {
      const n = r.node?.(this, c);
      if (n) nodes.set(r.id, n);
      if (r.id === 'plic') c.plic = (n as FdtNode).phandle();
    }

    const chosen = root.addNode('chosen');
    chosen.setString('stdout-path', nodes.get('uart0')!.path());
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
