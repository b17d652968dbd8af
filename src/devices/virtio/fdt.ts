/**
 * A virtio-mmio slot's device tree node, as QEMU 7.2's virt board writes it (and as virtio
 * 1.2 §4.2.1 suggests): `virtio,mmio`, the slot's window and one PLIC interrupt. Every slot
 * gets a node whether or not a device sits in it; an empty slot reads DeviceID 0.
 */
import { regCells, type FdtNode } from '../../fdt/fdt.ts';

export interface VirtioFdtOptions {
  /** Guest physical base address of the slot. */
  base: number;
  /** Size of the slot's window (0x1000 on virt). */
  size: number;
  /** The PLIC source the slot's line is wired to. */
  irq: number;
  /** Phandle of the interrupt controller (the PLIC node). */
  interruptParent: number;
}

/** Adds `virtio_mmio@<base>` under `parent` (the soc node) and returns it. */
export function addVirtioMmioNode(parent: FdtNode, o: VirtioFdtOptions): FdtNode {
  const n = parent.addNode(`virtio_mmio@${o.base.toString(16)}`);
  n.setU32('interrupts', o.irq);
  n.setU32('interrupt-parent', o.interruptParent);
  n.setCells('reg', regCells(o.base, o.size));
  n.setStrings('compatible', ['virtio,mmio']);
  return n;
}
