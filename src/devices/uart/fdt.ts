/**
 * The UART's device tree node, as QEMU 7.2's virt board writes it: `ns16550a` with its input
 * clock, one PLIC interrupt, and the default reg-shift 0 / reg-io-width 1 left implicit.
 */
import { regCells, type FdtNode } from '../../fdt/fdt.ts';
import { UART_CLOCK_HZ, type Uart } from './uart.ts';

export interface UartFdtOptions {
  /** Guest physical base address. */
  base: number;
  uart: Uart;
  /** The PLIC source the UART's line is wired to (10 on virt). */
  irq: number;
  /** Phandle of the interrupt controller (the PLIC node). */
  interruptParent: number;
}

/** Adds `serial@<base>` under `parent` (the soc node) and returns it; its path() is what `/chosen/stdout-path` names. */
export function addUartNode(parent: FdtNode, o: UartFdtOptions): FdtNode {
  const n = parent.addNode(`serial@${o.base.toString(16)}`);
  n.setU32('interrupts', o.irq);
  n.setU32('interrupt-parent', o.interruptParent);
  n.setU32('clock-frequency', UART_CLOCK_HZ);
  n.setCells('reg', regCells(o.base, o.uart.size));
  n.setStrings('compatible', ['ns16550a']);
  return n;
}
