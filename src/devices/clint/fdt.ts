/**
 * The CLINT's device tree node, as QEMU 7.2's virt board writes it (binding sifive,clint0):
 * per hart, the machine software (3) and machine timer (7) interrupts of its interrupt
 * controller (Priv. spec 3.1.9).
 */
import { regCells, type FdtNode } from '../../fdt/fdt.ts';
import { VirtusError } from '../../util/errors.ts';
import type { Clint } from './clint.ts';

const IRQ_M_SOFT = 3;
const IRQ_M_TIMER = 7;

export interface ClintFdtOptions {
  /** Guest physical base address. */
  base: number;
  clint: Clint;
  /** Phandle of each hart's `interrupt-controller` node, in hart order. */
  intc: readonly number[];
}

/** Adds `clint@<base>` under `parent` (the soc node) and returns it. */
export function addClintNode(parent: FdtNode, o: ClintFdtOptions): FdtNode {
  if (o.clint.harts !== o.intc.length) {
    throw new VirtusError('FDT_MISMATCH', `the CLINT serves ${o.clint.harts} harts but ${o.intc.length} were given`);
  }
  const n = parent.addNode(`clint@${o.base.toString(16)}`);
  n.setCells('interrupts-extended', o.intc.flatMap((ph) => [ph, IRQ_M_SOFT, ph, IRQ_M_TIMER]));
  n.setCells('reg', regCells(o.base, o.clint.size));
  n.setStrings('compatible', ['sifive,clint0', 'riscv,clint0']);
  return n;
}
