/** The goldfish RTC's device tree node, as QEMU 7.2's virt board writes it. */
import { regCells, type FdtNode } from '../../fdt/fdt.ts';
import type { GoldfishRtc } from './rtc.ts';

export interface RtcFdtOptions {
  /** Guest physical base address. */
  base: number;
  rtc: GoldfishRtc;
  /** The PLIC source the RTC's line is wired to (11 on virt). */
  irq: number;
  /** Phandle of the interrupt controller (the PLIC node). */
  interruptParent: number;
}

/** Adds `rtc@<base>` under `parent` (the soc node) and returns it. */
export function addRtcNode(parent: FdtNode, o: RtcFdtOptions): FdtNode {
  const n = parent.addNode(`rtc@${o.base.toString(16)}`);
  n.setU32('interrupts', o.irq);
  n.setU32('interrupt-parent', o.interruptParent);
  n.setCells('reg', regCells(o.base, o.rtc.size));
  n.setStrings('compatible', ['google,goldfish-rtc']);
  return n;
}
